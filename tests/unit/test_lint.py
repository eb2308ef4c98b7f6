"""The codebase stays ruff- and mypy-clean (both are test dependencies, so CI enforces it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return path


def test_ruff_clean() -> None:
    """`ruff check srd tests bench setup.py` reports nothing."""
    proc = subprocess.run(
        [_tool("ruff"), "check", "srd", "tests", "bench", "setup.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_clean() -> None:
    """`mypy` (strict, configured in pyproject.toml) reports nothing on srd/."""
    proc = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
