"""An independent float64 numpy Real-CUGAN 2x ("UpCunet2x"), written from the published PyTorch source, not
from the ncnn graph srd runs:

    bilibili/ailab, Real-CUGAN/upcunet_v3.py (commit 3e37c6c8f4eb6b9cbb9b6f094905e4b7dd5b348a, the file's
    last change; repository head 2799af78ef105b414cc4b796c67c8511acdcdf6f)
    https://github.com/bilibili/ailab/blob/2799af78ef105b414cc4b796c67c8511acdcdf6f/Real-CUGAN/upcunet_v3.py

``UpCunet2x.forward`` with ``tile_mode=0`` is: reflect-pad x (18 px a side, bottom/right rounded up to even
size), ``x = unet1(x)``, ``x0 = unet2(x, alpha)``, ``x = crop(x, 20) + x0``, crop to 2h x 2w, then
``(x * 255).round().clamp(0, 255).byte()`` (pro: ``((x - 0.15) * 255 / 0.7)`` first). `upcunet2x` here is
the network proper between the padding and the final crop: it takes an already padded CHW input and
returns the float output, ``2 * (H - 36)`` x ``2 * (W - 36)``. Left out: the reflect padding, the crop to
2h x 2w, the rounding/clamping to bytes (and the pro rescaling), UNet2's ``alpha`` (1 by default, the
only value the packaged models are exported with), the fp16 branch, and the tiled modes (tile_mode >= 1:
forward_a/b/c/d with squeeze-excitation means averaged over tiles, cache_mode quantisation).

The weights come from the packaged ncnn models through a minimal reader of the .param layer list and the
.bin written here (srd's own reader, srd/models/ncnn.py, is deliberately not used). The .bin holds, per
weight layer in .param order: the kernel (a 4-byte tag, 0x01306B47 then fp16 values padded to 4 bytes;
tag 0 then raw fp32), then the bias as raw fp32; PReLU slopes raw fp32. ncnn keeps Convolution kernels
[out][in][kh][kw] as PyTorch's Conv2d does, Deconvolution kernels also [out][in][kh][kw], i.e. PyTorch's
ConvTranspose2d weight [in][out][kh][kw] transposed; InnerProduct (the SE blocks' 1x1 convs) [out][in].
"""

from __future__ import annotations

import importlib.resources
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

FP16_TAG = 0x01306B47
WEIGHT_LAYERS = ("Convolution", "Deconvolution", "InnerProduct", "PReLU")


# --- the ncnn files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamLayer:
    """One line of an ncnn .param layer list: type, name and its integer/float scalar parameters."""

    type: str
    name: str
    params: dict[int, str] = field(default_factory=dict)

    def int(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))


@dataclass(frozen=True)
class NcnnWeights:
    """The blobs one weight layer holds in the .bin, as float64: kernel (ncnn layout) and bias/slopes."""

    layer: ParamLayer
    weight: F64
    bias: F64 | None


def read_param(text: str) -> list[ParamLayer]:
    """The layers of an ncnn .param file in execution order (array parameters, -233xx, are skipped)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines[0] != ["7767517"]:
        raise ValueError(f"not an ncnn .param file (magic {lines[0]})")
    count = int(lines[1][0])
    layers = []
    for parts in lines[2 : 2 + count]:
        kind, name, bottoms, tops = parts[0], parts[1], int(parts[2]), int(parts[3])
        params = {}
        for item in parts[4 + bottoms + tops :]:
            key, value = item.split("=", 1)
            if int(key) >= 0:
                params[int(key)] = value
        layers.append(ParamLayer(kind, name, params))
    return layers


class _BinReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def raw(self, count: int) -> F64:
        end = self.pos + 4 * count
        if end > len(self.data):
            raise ValueError("the .bin ends early")
        values = np.frombuffer(self.data, "<f4", count, self.pos).astype(np.float64)
        self.pos = end
        return values

    def tagged(self, count: int) -> F64:
        (tag,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        if tag == FP16_TAG:
            values = np.frombuffer(self.data, "<f2", count, self.pos).astype(np.float64)
            self.pos += (2 * count + 3) // 4 * 4
            return values
        if tag == 0:
            return self.raw(count)
        raise ValueError(f"unsupported ncnn weight tag {tag:#010x} at byte {self.pos - 4}")


def read_weights(param_text: str, bin_data: bytes) -> list[NcnnWeights]:
    """Every weight layer's data in .param order, reading the whole .bin (an error if bytes are left)."""
    reader = _BinReader(bin_data)
    out = []
    for layer in read_param(param_text):
        if layer.type not in WEIGHT_LAYERS:
            continue
        if layer.type == "PReLU":
            out.append(NcnnWeights(layer, reader.raw(layer.int(0)), None))
            continue
        if layer.int(8) or layer.int(18):
            raise ValueError(f"{layer.name}: int8 / dynamic-weight layers are not supported")
        inner = layer.type == "InnerProduct"  # its bias_term is 1=, weight_data_size 2=
        num_output, size = layer.int(0), layer.int(2 if inner else 6)
        weight = reader.tagged(size)
        bias = reader.raw(num_output) if layer.int(1 if inner else 5) else None
        out.append(NcnnWeights(layer, weight, bias))
    if reader.pos != len(bin_data):
        raise ValueError(f"{len(bin_data) - reader.pos} bytes of the .bin are not accounted for")
    return out


def model_files(package: str, stem: str) -> tuple[str, bytes]:
    """The .param text and .bin bytes of `stem` in the installed sr_vulkan_model_<package>."""
    root = Path(str(importlib.resources.files(f"sr_vulkan_model_{package}") / "models"))
    return (root / f"{stem}.param").read_text(encoding="utf-8"), (root / f"{stem}.bin").read_bytes()


# --- float64 PyTorch layers -------------------------------------------------------------------------


def conv2d(x: F64, w: F64, b: F64 | None, stride: int = 1, padding: int = 0) -> F64:
    """torch.nn.functional.conv2d on one CHW image: w is [out][in][kh][kw], zero padding."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    _, kh, kw = w.shape[1:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    y = np.tensordot(w, windows, axes=([1, 2, 3], [0, 3, 4]))
    return y if b is None else y + b[:, None, None]


def conv_transpose2d(x: F64, w: F64, b: F64 | None, stride: int, padding: int) -> F64:
    """torch.nn.functional.conv_transpose2d on one CHW image: w is PyTorch's [in][out][kh][kw];
    out[o, i*s + ki - p, j*s + kj - p] += x[c, i, j] * w[c, o, ki, kj]."""
    _, h, width = x.shape
    _, cout, kh, kw = w.shape
    full = np.zeros((cout, (h - 1) * stride + kh, (width - 1) * stride + kw))
    for ki in range(kh):
        for kj in range(kw):
            contrib = np.tensordot(w[:, :, ki, kj], x, axes=([0], [0]))
            full[:, ki : ki + (h - 1) * stride + 1 : stride, kj : kj + (width - 1) * stride + 1 : stride] += (
                contrib
            )
    y = full[:, padding : full.shape[1] - padding, padding : full.shape[2] - padding]
    return y if b is None else y + b[:, None, None]


def leaky_relu(x: F64, slope: float = 0.1) -> F64:
    return np.where(x >= 0, x, x * slope)


def sigmoid(x: F64) -> F64:
    return 1.0 / (1.0 + np.exp(-x))


def crop(x: F64, n: int) -> F64:
    """F.pad(x, (-n, -n, -n, -n))."""
    return x[:, n : x.shape[1] - n, n : x.shape[2] - n]


# --- UpCunet2x ----------------------------------------------------------------------------------------

Params = dict[str, F64]


# (PyTorch module, kind, (in, out, kernel)) in the order UpCunet2x defines its parameters. kind: conv
# (Conv2d), deconv (ConvTranspose2d), se (SEBlock's 1x1 Conv2d with bias, an InnerProduct in ncnn).
def _unetconv(
    prefix: str, cin: int, mid: int, cout: int, se: bool
) -> list[tuple[str, str, tuple[int, int, int]]]:
    layers = [(f"{prefix}.conv.0", "conv", (cin, mid, 3)), (f"{prefix}.conv.2", "conv", (mid, cout, 3))]
    if se:
        layers += [
            (f"{prefix}.seblock.conv1", "se", (cout, cout // 8, 1)),
            (f"{prefix}.seblock.conv2", "se", (cout // 8, cout, 1)),
        ]
    return layers


UPCUNET2X_LAYERS: list[tuple[str, str, tuple[int, int, int]]] = [
    *_unetconv("unet1.conv1", 3, 32, 64, se=False),
    ("unet1.conv1_down", "conv", (64, 64, 2)),
    *_unetconv("unet1.conv2", 64, 128, 64, se=True),
    ("unet1.conv2_up", "deconv", (64, 64, 2)),
    ("unet1.conv3", "conv", (64, 64, 3)),
    ("unet1.conv_bottom", "deconv", (64, 3, 4)),  # deconv=True: ConvTranspose2d(64, 3, 4, 2, 3)
    *_unetconv("unet2.conv1", 3, 32, 64, se=False),
    ("unet2.conv1_down", "conv", (64, 64, 2)),
    *_unetconv("unet2.conv2", 64, 64, 128, se=True),
    ("unet2.conv2_down", "conv", (128, 128, 2)),
    *_unetconv("unet2.conv3", 128, 256, 128, se=True),
    ("unet2.conv3_up", "deconv", (128, 128, 2)),
    *_unetconv("unet2.conv4", 128, 64, 64, se=True),
    ("unet2.conv4_up", "deconv", (64, 64, 2)),
    ("unet2.conv5", "conv", (64, 64, 3)),
    ("unet2.conv_bottom", "conv", (64, 3, 3)),  # deconv=False: Conv2d(64, 3, 3, 1, 0)
]

_NCNN_TYPE = {"conv": "Convolution", "deconv": "Deconvolution", "se": "InnerProduct"}


def upcunet2x_params(param_text: str, bin_data: bytes) -> Params:
    """UpCunet2x's state dict ("unet1.conv1.conv.0.weight", ...) in PyTorch layouts from an ncnn model,
    matching its weight layers one to one, in order, to the PyTorch parameters and checking every shape."""
    blobs = read_weights(param_text, bin_data)
    if len(blobs) != len(UPCUNET2X_LAYERS):
        raise ValueError(
            f"{len(blobs)} weight layers in the ncnn model, UpCunet2x has {len(UPCUNET2X_LAYERS)}"
        )
    params: Params = {}
    for blob, (name, kind, (cin, cout, k)) in zip(blobs, UPCUNET2X_LAYERS, strict=True):
        layer = blob.layer
        if layer.type != _NCNN_TYPE[kind] or layer.int(0) != cout or blob.weight.size != cout * cin * k * k:
            raise ValueError(
                f"ncnn {layer.type} {layer.name} does not match {name} ({kind} {cin}->{cout} k{k})"
            )
        if kind != "se" and layer.int(1) != k:
            raise ValueError(f"ncnn {layer.name} has kernel {layer.int(1)}, {name} has {k}")
        if blob.bias is None:
            raise ValueError(f"ncnn {layer.name} has no bias; {name} has one")
        weight = blob.weight.reshape(cout, cin, k, k)  # ncnn: [out][in][kh][kw] for all three
        params[f"{name}.weight"] = weight.transpose(1, 0, 2, 3) if kind == "deconv" else weight
        params[f"{name}.bias"] = blob.bias
    return params


def load_upcunet2x(stem: str) -> Params:
    """UpCunet2x's parameters from a packaged model, e.g. "REALCUGAN_SE_UP2X_CONSERVATIVE"."""
    return upcunet2x_params(*model_files("realcugan", stem))


def _conv(p: Params, name: str, x: F64, stride: int = 1, padding: int = 0) -> F64:
    return conv2d(x, p[f"{name}.weight"], p[f"{name}.bias"], stride, padding)


def _deconv(p: Params, name: str, x: F64, stride: int, padding: int) -> F64:
    return conv_transpose2d(x, p[f"{name}.weight"], p[f"{name}.bias"], stride, padding)


def se_block(p: Params, name: str, x: F64) -> F64:
    """SEBlock.forward: mean over H, W -> conv1 -> relu -> conv2 -> sigmoid -> x * that."""
    x0 = x.mean(axis=(1, 2), keepdims=True)
    x0 = np.maximum(_conv(p, f"{name}.conv1", x0), 0.0)
    x0 = sigmoid(_conv(p, f"{name}.conv2", x0))
    return x * x0


def unet_conv(p: Params, name: str, x: F64, se: bool) -> F64:
    """UNetConv.forward: two valid 3x3 convs, each + LeakyReLU(0.1), then the SEBlock if it has one."""
    z = leaky_relu(_conv(p, f"{name}.conv.0", x))
    z = leaky_relu(_conv(p, f"{name}.conv.2", z))
    return se_block(p, f"{name}.seblock", z) if se else z


def unet1(p: Params, x: F64) -> F64:
    """UNet1.forward with deconv=True (conv_bottom = ConvTranspose2d(64, 3, 4, 2, 3))."""
    x1 = unet_conv(p, "unet1.conv1", x, se=False)
    x2 = _conv(p, "unet1.conv1_down", x1, stride=2)
    x1 = crop(x1, 4)
    x2 = leaky_relu(x2)
    x2 = unet_conv(p, "unet1.conv2", x2, se=True)
    x2 = leaky_relu(_deconv(p, "unet1.conv2_up", x2, 2, 0))
    x3 = leaky_relu(_conv(p, "unet1.conv3", x1 + x2))
    return _deconv(p, "unet1.conv_bottom", x3, 2, 3)


def unet2(p: Params, x: F64) -> F64:
    """UNet2.forward with deconv=False and alpha=1."""
    x1 = unet_conv(p, "unet2.conv1", x, se=False)
    x2 = _conv(p, "unet2.conv1_down", x1, stride=2)
    x1 = crop(x1, 16)
    x2 = leaky_relu(x2)
    x2 = unet_conv(p, "unet2.conv2", x2, se=True)
    x3 = _conv(p, "unet2.conv2_down", x2, stride=2)
    x2 = crop(x2, 4)
    x3 = leaky_relu(x3)
    x3 = unet_conv(p, "unet2.conv3", x3, se=True)
    x3 = leaky_relu(_deconv(p, "unet2.conv3_up", x3, 2, 0))
    x4 = unet_conv(p, "unet2.conv4", x2 + x3, se=True)
    x4 = leaky_relu(_deconv(p, "unet2.conv4_up", x4, 2, 0))
    x5 = leaky_relu(_conv(p, "unet2.conv5", x1 + x4))
    return _conv(p, "unet2.conv_bottom", x5)


def upcunet2x(p: Params, x: F64) -> F64:
    """UpCunet2x's network on an already padded 3 x H x W input (H, W even, 18 px of context a side):
    unet1, unet2 on its output, plus unet1's output cropped by 20; 3 x 2(H-36) x 2(W-36), not clamped."""
    _, h, w = x.shape
    if h % 2 or w % 2 or h < 38 or w < 38:
        raise ValueError(f"UpCunet2x needs an even input of at least 38 x 38, not {h} x {w}")
    y = unet1(p, np.asarray(x, np.float64))
    return unet2(p, y) + crop(y, 20)


def upcunet2x_unrounded(p: Params, x: F64) -> F64:
    """UpCunet2x.forward with tile_mode=0 on a 3 x h x w image in [0, 1] short of its final byte
    conversion: reflect padding 18 (+1 bottom/right for odd sizes), the network, the crop to 2h x 2w."""
    _, h0, w0 = x.shape
    ph, pw = (h0 - 1) // 2 * 2 + 2, (w0 - 1) // 2 * 2 + 2
    padded = np.pad(
        np.asarray(x, np.float64), ((0, 0), (18, 18 + ph - h0), (18, 18 + pw - w0)), mode="reflect"
    )
    return upcunet2x(p, padded)[:, : 2 * h0, : 2 * w0]
