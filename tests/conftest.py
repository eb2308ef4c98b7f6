"""Shared fixtures: where ../shared lives, srd's runtime tuning as its entry points apply it, reaping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from srd.runtime import configure_runtime

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
WAIFU2X_JSON = SHARED / "models" / "waifu2x"

# The tests run networks as `srd upscale` and the worker do: with srd's XLA flags and malloc settings.
configure_runtime()


@pytest.fixture(scope="session")
def waifu2x_json() -> Path:
    """The folder of waifu2x JSON models in ../shared, or skip when it is absent."""
    if not WAIFU2X_JSON.is_dir():
        pytest.skip("../shared/models/waifu2x is not present beside the repo")
    return WAIFU2X_JSON


@pytest.fixture(scope="session")
def sample_images() -> Path:
    """../shared/images/waifu2x (tone.png), or skip."""
    folder = SHARED / "images" / "waifu2x"
    if not folder.is_dir():
        pytest.skip("../shared/images is not present beside the repo")
    return folder


@pytest.fixture
def reap_daemons() -> Iterator[None]:
    """Kill any `srd run` a test started and left running (used by the end-to-end daemon tests)."""
    from support.daemon import DaemonProcess

    yield
    DaemonProcess.reap_all()


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One JAX compilation cache shared by the daemons of a test session, so each compiles once."""
    return tmp_path_factory.getbasetemp() / "jax-cache"
