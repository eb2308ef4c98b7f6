"""Parse ncnn `.param` (text) and `.bin` files of super-resolution models into ops and weights.

Each supported layer type has one reader in `LAYER_READERS`, turning its line (and its weights from the
.bin) into an op; any other type is a ModelError naming it. Input and Split only shape the graph.
Weight blobs may be stored as fp32 or fp16 (ncnn's tagged format); they are returned as float32.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError
from srd.nn.graph import Weights
from srd.nn.ops import (
    Activation,
    BinaryKind,
    BinaryOp,
    ChannelScale,
    Concat,
    Conv,
    Crop,
    CropLike,
    Dense,
    Eltwise,
    EltwiseOp,
    GlobalAvgPool,
    Interp,
    Op,
    PixelShuffle,
    PReLU,
    ResizeKind,
)

_MAGIC = 7767517
_TAG_FP16 = 0x01306B47
_TAG_FP32_SCALED = 0x0002C056
_TAG_INT8 = 0x000D4B38
_ARRAY_KEY_BASE = -23300

ParamValue = int | float | tuple[float, ...]


@dataclass(frozen=True)
class Layer:
    """One line of a .param file."""

    type: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict[int, ParamValue]

    def get_int(self, key: int, default: int) -> int:
        value = self.params.get(key, default)
        if not isinstance(value, int):
            raise ModelError(f"layer {self.name!r}: param {key} must be an integer, got {value!r}")
        return value

    def get_float(self, key: int, default: float) -> float:
        value = self.params.get(key, default)
        if isinstance(value, tuple):
            raise ModelError(f"layer {self.name!r}: param {key} must be a number, got {value!r}")
        return float(value)

    def array(self, key: int) -> tuple[float, ...]:
        value = self.params.get(key, ())
        return value if isinstance(value, tuple) else (float(value),)


@dataclass(frozen=True)
class ParsedGraph:
    """The result of parsing: ops in order plus names of the input and output blobs."""

    ops: tuple[Op, ...]
    weights: Weights
    input: str
    output: str
    in_channels: int


def _parse_value(text: str) -> int | float:
    if any(ch in text for ch in ".eE") and not text.lstrip("-").isdigit():
        return float(text)
    return int(text)


def parse_param(text: str) -> list[Layer]:
    """Parse the text form of an ncnn .param file."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != str(_MAGIC):
        raise ModelError("not an ncnn text .param file (bad magic number)")
    try:
        layer_count = int(lines[1].split()[0])
    except (IndexError, ValueError) as exc:
        raise ModelError("ncnn .param: missing layer and blob counts") from exc
    layers = []
    for line in lines[2 : 2 + layer_count]:
        fields = line.split()
        try:
            ltype, name, nb, nt = fields[0], fields[1], int(fields[2]), int(fields[3])
        except (IndexError, ValueError) as exc:
            raise ModelError(f"ncnn .param: malformed layer line {line!r}") from exc
        bottoms = tuple(fields[4 : 4 + nb])
        tops = tuple(fields[4 + nb : 4 + nb + nt])
        params: dict[int, ParamValue] = {}
        for item in fields[4 + nb + nt :]:
            key_text, _, value_text = item.partition("=")
            key = int(key_text)
            if key <= _ARRAY_KEY_BASE:
                count, *values = value_text.split(",")
                params[_ARRAY_KEY_BASE - key] = tuple(float(v) for v in values[: int(count)])
            else:
                params[key] = _parse_value(value_text)
        layers.append(Layer(ltype, name, bottoms, tops, params))
    if len(layers) != layer_count:
        raise ModelError(f"ncnn .param: expected {layer_count} layers, found {len(layers)}")
    return layers


class _BinReader:
    """Sequential reader of an ncnn .bin file in the order the layers load their weights."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise ModelError("ncnn .bin is shorter than its .param requires")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def raw_fp32(self, count: int) -> npt.NDArray[np.float32]:
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int) -> npt.NDArray[np.float32]:
        (tag,) = struct.unpack("<I", self._take(4))
        if tag == _TAG_FP16:
            size = (2 * count + 3) // 4 * 4
            return np.frombuffer(self._take(size)[: 2 * count], dtype="<f2").astype(np.float32)
        if tag in (0, _TAG_FP32_SCALED):
            return self.raw_fp32(count)
        if tag == _TAG_INT8:
            raise ModelError("int8-quantised ncnn weights are not supported")
        raise ModelError(f"ncnn .bin: unsupported weight storage tag 0x{tag:08x} (quantised tables?)")

    def check_consumed(self) -> None:
        if self._pos != len(self._data):
            raise ModelError(f"ncnn .bin has {len(self._data) - self._pos} bytes more than the .param uses")


def _activation(layer: Layer) -> tuple[Activation, float]:
    kind = layer.get_int(9, 0)
    params = layer.array(10)
    if kind == 0:
        return Activation.NONE, 0.0
    if kind == 1:
        return Activation.RELU, 0.0
    if kind == 2:
        return Activation.LEAKY_RELU, params[0] if params else 0.0
    if kind == 4:
        return Activation.SIGMOID, 0.0
    raise ModelError(f"layer {layer.name!r}: unsupported fused activation type {kind}")


def _conv(layer: Layer, reader: _BinReader, weights: Weights, *, transposed: bool) -> Conv:
    out_ch = layer.get_int(0, 0)
    kw = layer.get_int(1, 0)
    kh = layer.get_int(11, kw)
    if layer.get_int(2, 1) != 1 or layer.get_int(12, layer.get_int(2, 1)) != 1:
        raise ModelError(f"layer {layer.name!r}: dilated convolution is not supported")
    sw = layer.get_int(3, 1)
    sh = layer.get_int(13, sw)
    left = layer.get_int(4, 0)
    if left < 0:
        raise ModelError(f"layer {layer.name!r}: automatic ('same') padding {left} is not supported")
    right = layer.get_int(15, left)
    top = layer.get_int(14, left)
    bottom = layer.get_int(16, top)
    if transposed and any(layer.get_int(k, 0) for k in (18, 19, 20, 21)):
        raise ModelError(f"layer {layer.name!r}: deconvolution output padding is not supported")
    if not transposed and layer.get_int(8, 0):
        raise ModelError(f"layer {layer.name!r}: int8 convolution is not supported")
    size = layer.get_int(6, 0)
    in_ch = size // (out_ch * kh * kw) if out_ch and kh and kw else 0
    if in_ch * out_ch * kh * kw != size or size == 0:
        raise ModelError(
            f"layer {layer.name!r}: weight size {size} does not factor as out x in x {kh} x {kw}"
        )
    # ncnn stores both convolution and deconvolution kernels as [out][in][kh][kw].
    w = reader.tagged(size).reshape(out_ch, in_ch, kh, kw)
    if transposed:
        w = w[:, :, ::-1, ::-1]
    entry = {"w": np.ascontiguousarray(w.transpose(2, 3, 1, 0))}
    if layer.get_int(5, 0):
        entry["b"] = reader.raw_fp32(out_ch)
    weights[layer.name] = entry
    activation, slope = _activation(layer)
    return Conv(
        layer.name,
        layer.bottoms[0],
        layer.tops[0],
        (kh, kw),
        (sh, sw),
        (top, bottom, left, right),
        activation,
        slope,
        transposed,
    )


def _dense(layer: Layer, reader: _BinReader, weights: Weights) -> Dense:
    out_ch = layer.get_int(0, 0)
    size = layer.get_int(2, 0)
    if layer.get_int(8, 0):
        raise ModelError(f"layer {layer.name!r}: int8 InnerProduct is not supported")
    if out_ch <= 0 or size % out_ch:
        raise ModelError(f"layer {layer.name!r}: weight size {size} is not a multiple of {out_ch}")
    entry = {"w": np.ascontiguousarray(reader.tagged(size).reshape(out_ch, size // out_ch).T)}
    if layer.get_int(1, 0):
        entry["b"] = reader.raw_fp32(out_ch)
    weights[layer.name] = entry
    activation, slope = _activation(layer)
    return Dense(layer.name, layer.bottoms[0], layer.tops[0], activation, slope)


def _pooling(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    if layer.get_int(4, 0) != 1 or layer.get_int(0, 0) != 1:
        raise ModelError(f"layer {layer.name!r}: only global average Pooling is supported")
    return GlobalAvgPool(layer.bottoms[0], layer.tops[0])


def _scale(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    if layer.get_int(0, 0) != -233 or len(layer.bottoms) != 2 or layer.get_int(1, 0):
        raise ModelError(f"layer {layer.name!r}: only Scale by a second blob, without bias, is supported")
    return ChannelScale(layer.bottoms[0], layer.bottoms[1], layer.tops[0])


_NCNN_UNSET = -233  # ncnn's "not given" for a Crop start or end
_CHW_TO_NHWC = {0: 3, 1: 1, 2: 2}


def _slice_crop(layer: Layer) -> Op:
    starts, ends = layer.array(9), layer.array(10)
    axes = layer.array(11) or tuple(float(a) for a in range(len(starts)))
    if not len(starts) == len(ends) == len(axes):
        raise ModelError(f"layer {layer.name!r}: Crop starts, ends and axes differ in length")
    slices = []
    for start_f, end_f, axis_f in zip(starts, ends, axes, strict=True):
        start, end, axis = int(start_f), int(end_f), int(axis_f)
        axis = axis + 3 if axis < 0 else axis  # CHW blobs
        if axis not in _CHW_TO_NHWC:
            raise ModelError(f"layer {layer.name!r}: Crop axis {int(axis_f)} of a CHW blob")
        start = 0 if start == _NCNN_UNSET else start
        end = 0 if end == _NCNN_UNSET else end
        if start < 0:
            raise ModelError(f"layer {layer.name!r}: Crop from the end (start {start}) is not supported")
        slices.append((_CHW_TO_NHWC[axis], start, end))
    return Crop(layer.bottoms[0], layer.tops[0], tuple(slices))


def _crop(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    if len(layer.bottoms) == 1 and layer.array(9):
        return _slice_crop(layer)
    if len(layer.bottoms) != 2 or layer.get_int(2, 0):
        raise ModelError(f"layer {layer.name!r}: only spatial Crop to a reference blob is supported")
    return CropLike(
        layer.bottoms[0], layer.bottoms[1], layer.tops[0], layer.get_int(1, 0), layer.get_int(0, 0)
    )


def _eltwise(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    return Eltwise(layer.bottoms, layer.tops[0], EltwiseOp(layer.get_int(0, 1)), layer.array(1))


def _binary(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    code = layer.get_int(0, 0)
    try:
        kind = BinaryKind(code)
    except ValueError:
        raise ModelError(f"layer {layer.name!r}: unsupported BinaryOp op_type {code}") from None
    if layer.get_int(1, 0):
        return BinaryOp(layer.bottoms[:1], layer.tops[0], kind, layer.get_float(2, 0.0))
    if len(layer.bottoms) != 2:
        raise ModelError(f"layer {layer.name!r}: BinaryOp needs two bottoms or with_scalar")
    return BinaryOp(layer.bottoms, layer.tops[0], kind)


def _concat(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    if layer.get_int(0, 0) not in (0, -3):
        raise ModelError(f"layer {layer.name!r}: only Concat along channels (axis 0) is supported")
    return Concat(layer.bottoms, layer.tops[0])


def _prelu(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    count = layer.get_int(0, 0)
    if count <= 0:
        raise ModelError(f"layer {layer.name!r}: PReLU with {count} slopes")
    weights[layer.name] = {"slope": reader.raw_fp32(count)}  # ncnn loads slopes untagged
    return PReLU(layer.name, layer.bottoms[0], layer.tops[0])


def _pixel_shuffle(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    factor = layer.get_int(0, 1)
    if layer.get_int(1, 0) or factor < 1:
        raise ModelError(f"layer {layer.name!r}: only PixelShuffle mode 0 by a positive factor is supported")
    return PixelShuffle(layer.bottoms[0], layer.tops[0], factor)


def _interp(layer: Layer, reader: _BinReader, weights: Weights) -> Op:
    code = layer.get_int(0, 0)
    if code not in (1, 3):
        raise ModelError(f"layer {layer.name!r}: Interp resize_type {code} is not supported")
    if any(layer.get_int(k, 0) for k in (3, 4, 5, 6)) or 9 in layer.params:
        raise ModelError(f"layer {layer.name!r}: Interp to a set size or align_corner is unsupported")
    scale_h, scale_w = layer.get_float(1, 1.0), layer.get_float(2, 1.0)
    kind = ResizeKind(code)
    if kind is ResizeKind.NEAREST and not (scale_h.is_integer() and scale_w.is_integer()):
        raise ModelError(f"layer {layer.name!r}: nearest Interp by {scale_h} x {scale_w} (not integers)")
    return Interp(layer.bottoms[0], layer.tops[0], kind, scale_h, scale_w)


# A reader turns one layer line into an op, taking its weights (in .bin order) from the reader.
LayerReader = Callable[[Layer, _BinReader, Weights], Op]
LAYER_READERS: dict[str, LayerReader] = {
    "Convolution": partial(_conv, transposed=False),
    "Deconvolution": partial(_conv, transposed=True),
    "InnerProduct": _dense,
    "Pooling": _pooling,
    "Scale": _scale,
    "Crop": _crop,
    "Eltwise": _eltwise,
    "BinaryOp": _binary,
    "Concat": _concat,
    "PReLU": _prelu,
    "PixelShuffle": _pixel_shuffle,
    "Interp": _interp,
}


def build_graph(layers: list[Layer], bin_data: bytes) -> ParsedGraph:
    """Turn parsed layers and the .bin bytes into ops and float32 weights."""
    reader = _BinReader(bin_data)
    weights: Weights = {}
    ops: list[Op] = []
    alias: dict[str, str] = {}
    input_blob, in_channels = "", 0
    consumed: set[str] = set()
    for raw in layers:
        layer = Layer(raw.type, raw.name, tuple(alias.get(b, b) for b in raw.bottoms), raw.tops, raw.params)
        consumed.update(layer.bottoms)
        if layer.type == "Input":
            input_blob, in_channels = layer.tops[0], layer.get_int(2, 0)
        elif layer.type == "Split":
            alias.update({top: layer.bottoms[0] for top in layer.tops})
        elif (read := LAYER_READERS.get(layer.type)) is not None:
            ops.append(read(layer, reader, weights))
        else:
            raise ModelError(f"layer {layer.name!r}: unsupported ncnn layer type {layer.type!r}")
    reader.check_consumed()
    if input_blob and not in_channels:
        in_channels = _first_conv_inputs(ops, weights)
    if not input_blob or in_channels not in (1, 3):
        raise ModelError("ncnn model has no Input layer with 1 or 3 channels")
    sinks = [op.output for op in ops if op.output not in consumed]
    if len(sinks) != 1:
        raise ModelError(f"ncnn model must have exactly one output blob, found {sinks}")
    return ParsedGraph(tuple(ops), weights, input_blob, sinks[0], in_channels)


def _first_conv_inputs(ops: list[Op], weights: Weights) -> int:
    """The input channels of the first convolution: the network's, where its Input line has no shape."""
    for op in ops:
        if isinstance(op, Conv):
            return int(weights[op.name]["w"].shape[2])
    return 0


def load_ncnn(param_text: str, bin_data: bytes) -> ParsedGraph:
    """Parse a .param text and its .bin bytes."""
    return build_graph(parse_param(param_text), bin_data)
