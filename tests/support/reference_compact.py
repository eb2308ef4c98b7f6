"""An independent float64 numpy SRVGGNetCompact (Real-ESRGAN's compact net, realesr-animevideov3), written
from the published PyTorch source, not from the ncnn graph srd runs:

    xinntao/Real-ESRGAN, realesrgan/archs/srvgg_arch.py (commit 696e1a6741c912db9d566a162cada43763e57756,
    the file's last change; repository head a4abfb2979a7bbff3f69f58f58ae324608821e27)
    https://github.com/xinntao/Real-ESRGAN/blob/a4abfb2979a7bbff3f69f58f58ae324608821e27/realesrgan/archs/srvgg_arch.py

``forward``: body = Conv2d(in, 64, 3, 1, 1), PReLU(64), num_conv x [Conv2d(64, 64, 3, 1, 1), PReLU(64)],
Conv2d(64, out * upscale^2, 3, 1, 1); PixelShuffle(upscale); plus F.interpolate(x, scale_factor=upscale,
mode="nearest"). The whole forward is implemented (it has no pre/post scaling or clamping of its own;
the caller's tiling, padding and 8-bit rounding are not part of it). Weights are read from the packaged
ncnn model by reference_cugan's minimal .param/.bin reader (PReLU slopes: raw fp32 without a tag).
"""

from __future__ import annotations

import numpy as np

from .reference_cugan import F64, Params, conv2d, model_files, read_weights


def compact_params(param_text: str, bin_data: bytes) -> tuple[Params, int, int]:
    """SRVGGNetCompact's state dict ("body.0.weight", "body.1.weight", ...) plus num_conv and upscale,
    mapping the ncnn Convolution/PReLU layers in order onto body.0, body.1, ... and checking the shapes."""
    blobs = read_weights(param_text, bin_data)
    params: Params = {}
    cin = 3
    for index, blob in enumerate(blobs):
        layer, conv = blob.layer, index % 2 == 0
        if layer.type != ("Convolution" if conv else "PReLU"):
            raise ValueError(f"body.{index} is a {'Conv2d' if conv else 'PReLU'}, ncnn has {layer.type}")
        cout = layer.int(0)
        if conv:
            if (
                layer.int(1) != 3
                or layer.int(4) != 1
                or blob.bias is None
                or blob.weight.size != cout * cin * 9
            ):
                raise ValueError(f"ncnn {layer.name} is not a Conv2d({cin}, {cout}, 3, 1, 1) with bias")
            params[f"body.{index}.weight"] = blob.weight.reshape(cout, cin, 3, 3)
            params[f"body.{index}.bias"] = blob.bias
            cin = cout
        else:
            if cout != cin:
                raise ValueError(f"ncnn {layer.name} has {cout} slopes for {cin} channels")
            params[f"body.{index}.weight"] = blob.weight
    if len(blobs) % 2 != 1 or len(blobs) < 3:
        raise ValueError(f"{len(blobs)} weight layers do not make conv, PReLU, ..., conv")
    upscale = round((cin / 3) ** 0.5)
    if 3 * upscale * upscale != cin:
        raise ValueError(f"the last conv has {cin} outputs, not 3 * upscale^2")
    return params, (len(blobs) - 3) // 2, upscale


def load_compact(stem: str) -> tuple[Params, int, int]:
    """SRVGGNetCompact from a packaged model, e.g. "REALESRGAN_ANIMAVIDEOV3_UP4X"."""
    return compact_params(*model_files("realesrgan", stem))


def prelu(x: F64, slopes: F64) -> F64:
    """nn.PReLU(num_parameters=C): one slope per channel."""
    return np.where(x >= 0, x, x * slopes[:, None, None])


def pixel_shuffle(x: F64, r: int) -> F64:
    """nn.PixelShuffle(r): out[c, h*r + i, w*r + j] = in[c*r*r + i*r + j, h, w]."""
    c, h, w = x.shape
    return x.reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (r * r), h * r, w * r)


def srvgg_compact(params: Params, num_conv: int, upscale: int, x: F64) -> F64:
    """SRVGGNetCompact.forward (act_type "prelu") on one 3 x H x W image: 3 x H*upscale x W*upscale."""
    x = np.asarray(x, np.float64)
    out = x
    for index in range(0, 2 * num_conv + 2, 2):
        out = conv2d(out, params[f"body.{index}.weight"], params[f"body.{index}.bias"], 1, 1)
        out = prelu(out, params[f"body.{index + 1}.weight"])
    last = 2 * num_conv + 2
    out = conv2d(out, params[f"body.{last}.weight"], params[f"body.{last}.bias"], 1, 1)
    out = pixel_shuffle(out, upscale)
    base = x.repeat(upscale, axis=1).repeat(upscale, axis=2)  # F.interpolate(mode="nearest"), integer factor
    return out + base
