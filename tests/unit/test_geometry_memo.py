"""The geometry srd infers by probing a network is kept on disk beside the compile cache and reused
only for the same network: same ops, weight shapes and op code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import srd.nn.geometry as geometry_module
from srd.nn import Activation, Conv, Weights, infer_geometry
from srd.nn.ops.base import Op


def _net(widths: tuple[int, ...], kernel: int = 3) -> tuple[tuple[Op, ...], Weights]:
    ops: list[Op] = []
    weights: Weights = {}
    for i in range(len(widths) - 1):
        name = f"l{i}"
        ops.append(
            Conv(name, "in" if i == 0 else f"b{i - 1}", f"b{i}", (kernel, kernel), activation=Activation.RELU)
        )
        weights[name] = {
            "w": np.zeros((kernel, kernel, widths[i], widths[i + 1]), np.float32),
            "b": np.zeros(widths[i + 1], np.float32),
        }
    return tuple(ops), weights


@pytest.fixture
def memo(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "srd-geometry"
    geometry_module.remember_geometry_in(folder)
    yield folder
    geometry_module.remember_geometry_in(None)


def _probes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the sizes traced (each probe is a whole trace of the network)."""
    traced: list[int] = []
    real = geometry_module._output_shape

    def counting(spec: object, weights: Weights, size: int) -> tuple[int, int] | None:
        traced.append(size)
        return real(spec, weights, size)  # type: ignore[arg-type]

    monkeypatch.setattr(geometry_module, "_output_shape", counting)
    return traced


def test_a_second_inference_reads_the_first_ones_answer(memo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ops, weights = _net((3, 8, 3))
    traced = _probes(monkeypatch)
    first = infer_geometry("tiny", ops, weights, "in", "b1", 3)
    assert traced and (first.scale, first.context, first.align, first.out_channels) == (1, 2, 1, 3)
    assert len(list(memo.glob("*.json"))) == 1
    traced.clear()
    again = infer_geometry("tiny", ops, weights, "in", "b1", 3)
    assert traced == [] and again == first


def test_another_network_is_probed_not_recalled(memo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other widths or another kernel size (so another context) are other digests."""
    ops, weights = _net((3, 8, 3))
    infer_geometry("tiny", ops, weights, "in", "b1", 3)
    traced = _probes(monkeypatch)
    wide = infer_geometry("tiny", *_net((3, 16, 3)), "in", "b1", 3)
    assert traced
    traced.clear()
    five = infer_geometry("tiny", *_net((3, 8, 3), kernel=5), "in", "b1", 3)
    assert traced and five.context == 4 and wide.context == 2
    assert len(list(memo.glob("*.json"))) == 3


def test_a_damaged_or_foreign_file_is_probed_again_and_replaced(
    memo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops, weights = _net((3, 8, 3))
    first = infer_geometry("tiny", ops, weights, "in", "b1", 3)
    (kept,) = memo.glob("*.json")
    traced = _probes(monkeypatch)
    for damage in (
        '{"scale": 1',
        json.dumps({"scale": -1, "context": 2, "align": 1, "out_channels": 3}),
        "[]",
    ):
        kept.write_text(damage)
        traced.clear()
        assert infer_geometry("tiny", ops, weights, "in", "b1", 3) == first
        assert traced
        assert json.loads(kept.read_text()) == {"out_channels": 3, "scale": 1, "context": 2, "align": 1}


def test_an_unwritable_folder_only_costs_the_probing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    geometry_module.remember_geometry_in(blocker / "srd-geometry")
    try:
        spec = infer_geometry("tiny", *_net((3, 8, 3)), "in", "b1", 3)
    finally:
        geometry_module.remember_geometry_in(None)
    assert spec.context == 2
