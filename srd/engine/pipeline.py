"""waifu2x's image-level pipeline around a network pass (lib/reconstruct.lua and lib/alpha_util.lua).

RGB models: replicate-pad by the context, run, crop (done by the tile runner). Y models: nearest-neighbour
upscale, network on Torch's analog BT.601 Y, chroma from a Lanczos upscale. TTA averages the 8 dihedral
transforms. Transparent pixels get their colour from opaque neighbours before upscaling.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from PIL import Image

Array32 = npt.NDArray[np.float32]
NetworkPass = Callable[[Array32], Array32]

# Torch's image.rgb2yuv / yuv2rgb (analog BT.601), which waifu2x's Y models were trained with.
_RGB2YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]], np.float32
)
_YUV2RGB = np.array([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]], np.float32)


def rgb_to_yuv(rgb: Array32) -> Array32:
    return rgb @ _RGB2YUV.T


def yuv_to_rgb(yuv: Array32) -> Array32:
    return yuv @ _YUV2RGB.T


def nearest_upscale(image: Array32, factor: int) -> Array32:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def resize_lanczos(image: Array32, width: int, height: int) -> Array32:
    """Lanczos (a=3) resize of a float image, channel by channel, without quantising."""
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[:, :, k]), mode="F").resize(
                (width, height), Image.Resampling.LANCZOS
            )
        )
        for k in range(image.shape[2])
    ]
    return np.stack(planes, axis=2).astype(np.float32)


def _dihedral(image: Array32, k: int) -> Array32:
    """The k-th of the 8 rotations/flips (k in 0..7)."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    return np.flip(out, axis=1) if k >= 4 else out


def _dihedral_inverse(image: Array32, k: int) -> Array32:
    out = np.flip(image, axis=1) if k >= 4 else image
    return np.rot90(out, -(k % 4), axes=(0, 1))


def _clamped(out: Array32) -> Array32:
    """The network's output clamped to 0..1 in place (every pass returns a new array of its own)."""
    return np.clip(out, 0.0, 1.0, out=out)


def run_pass(network: NetworkPass, image: Array32, tta: bool) -> Array32:
    """One network pass over a whole image, clamped to 0..1; with TTA, the mean over 8 transforms."""
    if not tta:
        return _clamped(network(image))
    acc: Array32 | None = None
    for k in range(8):
        out = _dihedral_inverse(_clamped(network(np.ascontiguousarray(_dihedral(image, k)))), k)
        acc = out if acc is None else acc + out
    assert acc is not None
    return (acc / 8.0).astype(np.float32)


def upscale_rgb(network: NetworkPass, rgb: Array32, *, pre_upscale: int, tta: bool) -> Array32:
    """RGB model: optional nearest pre-upscale (vgg_7), then the network."""
    if pre_upscale > 1:
        rgb = nearest_upscale(rgb, pre_upscale)
    return run_pass(network, rgb, tta)


def upscale_luminance(network: NetworkPass, rgb: Array32, *, pre_upscale: int, tta: bool) -> Array32:
    """Y model: network on Y of the nearest-upscaled image, U and V from a Lanczos upscale."""
    h, w = rgb.shape[:2]
    chroma_src = resize_lanczos(rgb, w * pre_upscale, h * pre_upscale) if pre_upscale > 1 else rgb
    y_in = rgb_to_yuv(nearest_upscale(rgb, pre_upscale))[:, :, :1]
    y_out = run_pass(network, np.ascontiguousarray(y_in), tta)
    yuv = rgb_to_yuv(chroma_src)
    if y_out.shape[:2] != yuv.shape[:2]:
        yuv = rgb_to_yuv(resize_lanczos(rgb, y_out.shape[1], y_out.shape[0]))
    yuv[:, :, 0] = y_out[:, :, 0]
    return np.clip(yuv_to_rgb(yuv), 0.0, 1.0).astype(np.float32)


def _box_sum3(x: Array32) -> Array32:
    """3x3 sum with zero padding (waifu2x's sum2d convolution)."""
    p = np.pad(x, 1)
    h, w = x.shape
    return sum((p[i : i + h, j : j + w] for i in range(3) for j in range(3)), np.zeros_like(x))


def fill_transparent(rgb: Array32, alpha: Array32, iterations: int) -> Array32:
    """alpha_util.make_border: give fully transparent pixels the mean colour of their opaque neighbours,
    growing outwards `iterations` times, so the network sees no false edges at the alpha boundary."""
    mask = (alpha > 0).astype(np.float32)
    transparent = mask == 0
    rgb = np.where(transparent[:, :, None], 0.0, rgb).astype(np.float32)
    for _ in range(iterations):
        weight = _box_sum3(mask)
        for ch in range(3):
            border = _box_sum3(rgb[:, :, ch]) / (weight + 1e-7)
            rgb[:, :, ch] = np.where(transparent, border, rgb[:, :, ch])
        mask = (weight > 0).astype(np.float32)
        transparent = mask == 0
    return np.clip(rgb, 0.0, 1.0)
