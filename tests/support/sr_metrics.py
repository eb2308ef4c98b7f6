"""The SR benchmark conventions of the SRCNN/VDSR line of papers: Set5/Set14 loading, modcrop, BT.601 Y,
PSNR with a shaved border, and the bicubic and per-model PSNR on MATLAB-bicubic-shrunk ground truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from support.matlab_imresize import imresize

U8Image = npt.NDArray[np.uint8]
F64Array = npt.NDArray[np.float64]
Upscaler = Callable[[U8Image], U8Image]


def load_set(folder: Path) -> list[tuple[str, U8Image]]:
    """The images of one benchmark set, sorted by name, as uint8 HxW (gray) or HxWx3 (RGB) arrays."""
    images = []
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as img:
            mode = "L" if img.mode in ("L", "I;16", "I") else "RGB"
            images.append((path.stem, np.asarray(img.convert(mode), dtype=np.uint8)))
    if not images:
        raise FileNotFoundError(f"no .png images in {folder}")
    return images


def modcrop(image: U8Image, scale: int) -> U8Image:
    """Crop the bottom and right so both sides are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def luma(image: npt.NDArray[np.generic]) -> F64Array:
    """ITU-R BT.601 studio-range Y (16..235) of 8-bit RGB, or the gray values of a gray image."""
    values = image.astype(np.float64)
    if values.ndim == 2:
        return values
    rgb = values / 255.0
    result: F64Array = 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]
    return result


def psnr(reference: F64Array, test: F64Array, shave: int) -> float:
    """PSNR in dB for a 255 peak after shaving ``shave`` pixels off every border."""
    a = reference[shave:-shave, shave:-shave] if shave else reference
    b = test[shave:-shave, shave:-shave] if shave else test
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def srcnn_bicubic_psnr(hr: U8Image, scale: int) -> float:
    """The SRCNN paper's bicubic figure: Y as uint8, float imresize down and up, uint8 result."""
    y = hr if hr.ndim == 2 else np.floor(luma(hr) + 0.5).astype(np.uint8)
    y = modcrop(y, scale)
    small = imresize(y.astype(np.float64) / 255.0, 1.0 / scale)
    up = np.asarray(imresize(small, float(scale)), dtype=np.float64)
    restored = np.floor(np.clip(up * 255.0, 0.0, 255.0) + 0.5)
    return psnr(y.astype(np.float64), restored, scale)


def model_psnr(hr: U8Image, scale: int, upscale: Upscaler) -> float:
    """PSNR of ``upscale`` on the MATLAB-bicubic-shrunk ground truth, on Y (or gray)."""
    hr = modcrop(hr, scale)
    lr = np.asarray(imresize(hr, 1.0 / scale), dtype=np.uint8)
    rgb_in = np.repeat(lr[..., None], 3, axis=2) if lr.ndim == 2 else lr
    out = upscale(np.ascontiguousarray(rgb_in))
    if out.shape[:2] != hr.shape[:2]:
        raise ValueError(f"upscaler returned {out.shape}, expected {hr.shape[:2]}")
    if hr.ndim == 2:
        test = out.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return psnr(hr.astype(np.float64), test, scale)
    return psnr(luma(hr), luma(out), scale)
