"""srd's readings of the ncnn layers Real-CUGAN, Real-ESRGAN and RealSR use, each against ncnn itself on
a tiny hand-written net."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from support.ncnn_layers import run_ncnn, run_ours

from srd.errors import ModelError
from srd.models import load_ncnn

_FP16_TAG = struct.pack("<I", 0x01306B47)


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


_BINARY_CASES = [(code, False) for code in range(6)] + [(code, True) for code in (0, 1, 2, 3, 4, 5)]


@pytest.mark.parametrize(("code", "vector"), _BINARY_CASES)
def test_binaryop_of_two_blobs(tmp_path: Path, code: int, vector: bool) -> None:
    """BinaryOp ADD..MIN of two equal CHW blobs, or of a CHW blob and a per-channel vector."""
    a = _rand(4, 7, 9)
    b = _rand(4, seed=1) if vector else _rand(4, 7, 9, seed=1)
    if code == 3:
        b = np.abs(b) + 0.5
    lines = ["Input a 0 1 a", "Input b 0 1 b", f"BinaryOp op 2 1 a b out 0={code}"]
    feeds = {"a": a, "b": b}
    _close(run_ours(lines, b"", feeds, "out"), run_ncnn(tmp_path, lines, b"", feeds, "out"))


@pytest.mark.parametrize("code", range(6))
def test_binaryop_with_a_scalar(tmp_path: Path, code: int) -> None:
    """BinaryOp with_scalar applies its param-2 scalar to every element."""
    lines = ["Input a 0 1 a", f"BinaryOp op 1 1 a out 0={code} 1=1 2=0.750000"]
    feeds = {"a": _rand(3, 5, 6)}
    _close(run_ours(lines, b"", feeds, "out"), run_ncnn(tmp_path, lines, b"", feeds, "out"))


@pytest.mark.parametrize(
    "params",
    [
        "-23309=2,4,4 -23310=2,-4,-4 -23311=2,-2,-1",
        "-23309=2,1,2 -23310=2,-1,-3 -23311=2,1,2",
        "-23309=1,1 -23310=1,3 -23311=1,0",
        "-23309=1,2 -23310=1,-233 -23311=1,-1",
    ],
)
def test_crop_by_slices(tmp_path: Path, params: str) -> None:
    """Crop with starts, ends and axes (negative ends from the end, -233 to the end) cuts as ncnn does."""
    lines = ["Input a 0 1 a", f"Crop crop 1 1 a out {params}"]
    feeds = {"a": _rand(5, 13, 11)}
    _close(run_ours(lines, b"", feeds, "out"), run_ncnn(tmp_path, lines, b"", feeds, "out"))


@pytest.mark.parametrize("factor", [2, 4])
def test_pixel_shuffle(tmp_path: Path, factor: int) -> None:
    """PixelShuffle moves channel p*r*r + sh*r + sw to pixel (i*r + sh, j*r + sw) of channel p."""
    lines = ["Input a 0 1 a", f"PixelShuffle ps 1 1 a out 0={factor}"]
    feeds = {"a": _rand(3 * factor * factor, 5, 7)}
    _close(run_ours(lines, b"", feeds, "out"), run_ncnn(tmp_path, lines, b"", feeds, "out"))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_nearest_interp(tmp_path: Path, scale: int) -> None:
    """Nearest Interp by an integer factor repeats pixels."""
    lines = ["Input a 0 1 a", f"Interp up 1 1 a out 0=1 1={scale}.0 2={scale}.0"]
    feeds = {"a": _rand(3, 5, 7)}
    _close(run_ours(lines, b"", feeds, "out"), run_ncnn(tmp_path, lines, b"", feeds, "out"))


@pytest.mark.parametrize("scale", ["0.5", "0.75", "2.0", "3.0", "4.0"])
@pytest.mark.parametrize(("h", "w"), [(9, 13), (12, 16), (7, 5)])
def test_bicubic_interp(tmp_path: Path, scale: str, h: int, w: int) -> None:
    """Bicubic Interp (ncnn's kernel, edge taps folded, no antialiasing) up and down, on odd sizes."""
    lines = ["Input a 0 1 a", f"Interp bic 1 1 a out 0=3 1={scale} 2={scale}"]
    feeds = {"a": np.random.default_rng(2).random((3, h, w), dtype=np.float32)}
    _close(run_ours(lines, b"", feeds, "out"), run_ncnn(tmp_path, lines, b"", feeds, "out"))


@pytest.mark.parametrize("count", [1, 6])
def test_prelu(tmp_path: Path, count: int) -> None:
    """PReLU reads its slopes untagged from the .bin, per channel or one shared."""
    slopes = np.linspace(-0.5, 0.7, count, dtype=np.float32)
    lines = ["Input a 0 1 a", f"PReLU pr 1 1 a out 0={count}"]
    feeds = {"a": _rand(6, 5, 7)}
    data = slopes.tobytes()
    _close(run_ours(lines, data, feeds, "out"), run_ncnn(tmp_path, lines, data, feeds, "out"))


def test_concat_along_channels(tmp_path: Path) -> None:
    """Concat without params stacks its bottoms' channels in order."""
    lines = ["Input a 0 1 a", "Input b 0 1 b", "Input c 0 1 c", "Concat cat 3 1 a b c out"]
    feeds = {"a": _rand(2, 5, 7), "b": _rand(3, 5, 7, seed=1), "c": _rand(1, 5, 7, seed=2)}
    _close(run_ours(lines, b"", feeds, "out"), run_ncnn(tmp_path, lines, b"", feeds, "out"))


def test_zero_padded_convolution(tmp_path: Path) -> None:
    """A pad-1 3x3 convolution with fp16 weights keeps the size, as ncnn computes it."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float16)
    b = rng.standard_normal(5).astype(np.float32)
    data = _FP16_TAG + w.tobytes() + b"\0\0" + b.tobytes()  # fp16 blobs are padded to 4 bytes
    lines = ["Input a 0 1 a", "Convolution c 1 1 a out 0=5 1=3 4=1 5=1 6=135"]
    feeds = {"a": _rand(3, 9, 11)}
    _close(run_ours(lines, data, feeds, "out"), run_ncnn(tmp_path, lines, data, feeds, "out"))


def test_input_without_shape_takes_the_first_convolutions_channels() -> None:
    """A bare Input line gets its channel count from the first convolution's weights."""
    data = _FP16_TAG + np.zeros((4, 3, 3, 3), np.float16).tobytes() + np.zeros(4, np.float32).tobytes()
    text = "7767517\n2 2\nInput in0 0 1 in0\nConvolution c 1 1 in0 out0 0=4 1=3 5=1 6=108\n"
    assert load_ncnn(text, data).in_channels == 3


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("BinaryOp op 2 1 a b out 0=14", "op_type 14"),
        ("Interp up 1 1 a out 0=2 1=2.0 2=2.0", "resize_type 2"),
        ("Interp up 1 1 a out 0=1 1=1.5 2=1.5", "not integers"),
        ("Concat cat 2 1 a b out 0=1", "channels"),
    ],
)
def test_unsupported_forms_are_named(line: str, match: str) -> None:
    """Forms of the new layers srd does not run are model errors saying which."""
    from support.ncnn_layers import read_ops

    with pytest.raises(ModelError, match=match):
        read_ops(["Input a 0 1 a", "Input b 0 1 b", line], b"")
