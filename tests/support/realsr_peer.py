"""Reference runners for Real-CUGAN, Real-ESRGAN and RealSR through ncnn's Python binding: the peer srd is
checked and timed against for those families. They reproduce the reference programs' CPU pipelines step
by step (RGB, no TTA):

- ``realcugan``: nihui/realcugan-ncnn-vulkan ``src/realcugan.cpp`` ``process_cpu`` and, when the tile is
  smaller than the image, ``process_cpu_se`` / ``_se_rough`` / ``_se_very_rough`` (syncgap 1, 2, 3: the four
  squeeze-excitation averages ``gap0..gap3`` shared between tiles). Prepadding 18/14/19 for 2x/3x/4x;
  the bottom/right padding is rounded so the tile is a multiple of 2 (4 for 3x); 4x adds the
  nearest-upsampled input back.
- ``realesrgan_like``: nihui/realsr-ncnn-vulkan ``src/realsr.cpp`` ``process_cpu``, which is also what
  xinntao/Real-ESRGAN-ncnn-vulkan's shaders compute (that program has no CPU path): prepadding 10, the
  output cropped by 10 x scale.

Both read each tile from the image with real neighbours and mirror the border (ncnn's
``copy_make_border`` type 2: reflect without repeating the edge pixel), take ``u8 * (1/255.f)`` in, and
write ``v * 255 + 0.5`` truncated and clamped. Reduced precision (fp16, bf16, int8) and Vulkan are off.
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

CUGAN_PREPADDING = {2: 18, 3: 14, 4: 19}
ESRGAN_PREPADDING = 10
GAPS = ("gap0", "gap1", "gap2", "gap3")
_INV_255 = np.float32(1.0) / np.float32(255.0)


@dataclass(frozen=True)
class PeerNet:
    """A packaged ncnn model loaded for float32 CPU inference, with its blob names."""

    net: ncnn.Net
    input: str
    output: str


def model_files(package: str, stem: str) -> tuple[Path, Path]:
    """The .param and .bin of `stem` in sr_vulkan_model_<package>/models."""
    root = Path(str(importlib.resources.files(f"sr_vulkan_model_{package}") / "models"))
    return root / f"{stem}.param", root / f"{stem}.bin"


def load(package: str, stem: str, threads: int = 2) -> PeerNet:
    """Load a packaged model with every reduced-precision option off."""
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.use_int8_inference = False
    opt.num_threads = threads
    param, weights = model_files(package, stem)
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise RuntimeError(f"ncnn cannot load {param}")
    names = ("in0", "out0") if package == "realcugan" else ("data", "output")
    return PeerNet(net, *names)


def to_mat(x: F32Array) -> ncnn.Mat:
    """A CHW (or 1-D) float32 array as an ncnn.Mat with ncnn's own aligned channel step."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        return ncnn.Mat(x)
    c, h, w = x.shape
    mat = ncnn.Mat(w, h, c)
    np.array(mat, copy=False)[...] = x
    return mat


def quantise(v: F32Array) -> U8Image:
    """ncnn's Mat::to_pixels: (unsigned char)min(max((int)v, 0), 255), v already holding the +0.5."""
    return np.clip(np.trunc(v), 0, 255).astype(np.uint8)


def _run(
    peer: PeerNet, x: F32Array, feeds: dict[str, F32Array], outputs: tuple[str, ...]
) -> dict[str, F32Array]:
    ex = peer.net.create_extractor()
    ex.input(peer.input, to_mat(x))
    for name, value in feeds.items():
        ex.input(name, to_mat(value))
    result: dict[str, F32Array] = {}
    for name in outputs:
        ret, mat = ex.extract(name)
        if ret != 0:
            raise RuntimeError(f"ncnn extract {name} returned {ret}")
        result[name] = np.array(mat).copy()
    return result


def _cugan_tile(img: U8Image, yi: int, xi: int, tile: int, scale: int) -> tuple[F32Array, int, int]:
    """One tile's padded network input as process_cpu cuts it, plus its unpadded height and width."""
    h, w = img.shape[:2]
    pad = CUGAN_PREPADDING[scale]
    th = min((yi + 1) * tile, h) - yi * tile
    tw = min((xi + 1) * tile, w) - xi * tile
    multiple = 4 if scale in (1, 3) else 2
    pad_bottom = pad + (th + multiple - 1) // multiple * multiple - th
    pad_right = pad + (tw + multiple - 1) // multiple * multiple - tw
    y0, y1 = max(yi * tile - pad, 0), min((yi + 1) * tile + pad_bottom, h)
    x0, x1 = max(xi * tile - pad, 0), min((xi + 1) * tile + pad_right, w)
    t = img[y0:y1, x0:x1].transpose(2, 0, 1).astype(np.float32) * _INV_255
    top = max(pad - yi * tile, 0)
    bottom = max(min((yi + 1) * tile + pad_bottom - h, pad_bottom), 0)
    left = max(pad - xi * tile, 0)
    right = max(min((xi + 1) * tile + pad_right - w, pad_right), 0)
    return np.pad(t, ((0, 0), (top, bottom), (left, right)), mode="reflect"), th, tw


def _cugan_gap_cache(
    img: U8Image, peer: PeerNet, scale: int, tile: int, syncgap: int
) -> dict[tuple[int, int], dict[str, F32Array]]:
    """The averaged squeeze-excitation vectors each tile of the final pass is fed, by (row, column)."""
    h, w = img.shape[:2]
    cache: dict[tuple[int, int], dict[str, F32Array]] = {}

    def visit(
        size: int, step: int, limit: int, feed: tuple[str, ...], out: tuple[str, ...]
    ) -> list[tuple[int, int]]:
        rows, cols = -(-h // size), -(-w // size)
        done = []
        for yi in range(0, rows - limit, step):
            for xi in range(0, cols - limit, step):
                x, _, _ = _cugan_tile(img, yi, xi, size, scale)
                known = cache.get((yi, xi), {})
                values = _run(peer, x, {n: known[n] for n in feed if n in known}, out)
                cache.setdefault((yi, xi), {}).update(values)
                done.append((yi, xi))
        return done

    def share(names: tuple[str, ...], tiles: list[tuple[int, int]], spread: int = 1) -> None:
        for name in names:
            total = np.zeros_like(cache[tiles[0]][name])
            for key in tiles:
                total += cache[key][name]
            total /= np.float32(len(tiles))
            for yi, xi in tiles:
                for dy in range(spread):
                    for dx in range(spread):
                        cache.setdefault((yi + dy, xi + dx), {})[name] = total

    if syncgap == 1:  # each gap averaged and fed back before the next one is computed
        for k in range(4):
            share((GAPS[k],), visit(tile, 1, 0, GAPS[:k], (GAPS[k],)))
    elif syncgap == 2:  # all four from one pass of each tile
        share(GAPS, visit(tile, 1, 0, (), GAPS))
    elif syncgap == 3:  # 32 x 32 tiles at every third grid position, keys spread over 3 x 3
        tiles = visit(32, 3, 2, (), GAPS)
        if not tiles:
            raise ValueError("the reference's syncgap 3 is undefined for an image under 65 pixels a side")
        share(GAPS, tiles, spread=3)
    return cache


def realcugan(img: U8Image, peer: PeerNet, scale: int, tile: int = 400, syncgap: int = 3) -> U8Image:
    """realcugan-ncnn-vulkan's CPU output for an H x W x 3 uint8 image."""
    h, w = img.shape[:2]
    pad = CUGAN_PREPADDING[scale]
    cache = _cugan_gap_cache(img, peer, scale, tile, syncgap) if syncgap and tile < max(w, h) else {}
    out = np.zeros((h * scale, w * scale, 3), np.uint8)
    for yi in range(-(-h // tile)):
        for xi in range(-(-w // tile)):
            x, th, tw = _cugan_tile(img, yi, xi, tile, scale)
            y = _run(peer, x, cache.get((yi, xi), {}), (peer.output,))[peer.output]
            v = y[:, : th * scale, : tw * scale] * np.float32(255) + np.float32(0.5)
            if scale == 4:
                near = x[:, pad : pad + th, pad : pad + tw].repeat(4, 1).repeat(4, 2)
                v = v + near * np.float32(255)
            rows = slice(yi * tile * scale, (yi * tile + th) * scale)
            cols = slice(xi * tile * scale, (xi * tile + tw) * scale)
            out[rows, cols] = quantise(v).transpose(1, 2, 0)
    return out


def realesrgan_like(img: U8Image, peer: PeerNet, scale: int, tile: int = 200) -> U8Image:
    """realsr-ncnn-vulkan's CPU output (= Real-ESRGAN-ncnn-vulkan's pipeline) for an H x W x 3 image."""
    h, w = img.shape[:2]
    pad = ESRGAN_PREPADDING
    out = np.zeros((h * scale, w * scale, 3), np.uint8)
    for yi in range(-(-h // tile)):
        for xi in range(-(-w // tile)):
            th = min((yi + 1) * tile, h) - yi * tile
            tw = min((xi + 1) * tile, w) - xi * tile
            y0, y1 = max(yi * tile - pad, 0), min((yi + 1) * tile + pad, h)
            x0, x1 = max(xi * tile - pad, 0), min((xi + 1) * tile + pad, w)
            t = img[y0:y1, x0:x1].transpose(2, 0, 1).astype(np.float32) * _INV_255
            top, bottom = max(pad - yi * tile, 0), max(min((yi + 1) * tile + pad - h, pad), 0)
            left, right = max(pad - xi * tile, 0), max(min((xi + 1) * tile + pad - w, pad), 0)
            t = np.pad(t, ((0, 0), (top, bottom), (left, right)), mode="reflect")
            y = _run(peer, t, {}, (peer.output,))[peer.output]
            crop = pad * scale
            v = y[:, crop : crop + th * scale, crop : crop + tw * scale] * np.float32(255) + np.float32(0.5)
            rows = slice(yi * tile * scale, (yi * tile + th) * scale)
            cols = slice(xi * tile * scale, (xi * tile + tw) * scale)
            out[rows, cols] = quantise(v).transpose(1, 2, 0)
    return out


def _interp_net(scale: int) -> ncnn.Net:
    """One ncnn bicubic Interp layer (resize_type 3), as the reference programs build for alpha."""
    import tempfile

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
    with tempfile.TemporaryDirectory() as folder:
        param = Path(folder) / "interp.param"
        param.write_text(
            f"7767517\n2 2\nInput in0 0 1 in0\nInterp interp 1 1 in0 out0 0=3 1={scale}.0 2={scale}.0\n"
        )
        (Path(folder) / "interp.bin").write_bytes(b"")
        if net.load_param(str(param)) != 0 or net.load_model(str(Path(folder) / "interp.bin")) != 0:
            raise RuntimeError("ncnn cannot load its own Interp layer")
    return net


def bicubic_alpha(alpha: U8Image, scale: int, tile: int) -> U8Image:
    """The programs' alpha: ncnn's bicubic Interp x scale of each unpadded tile's alpha (0..255 values),
    written with +0.5, floor and clamp as their GPU shaders do (the CPU paths overrun for several tiles)."""
    net = _interp_net(scale)
    h, w = alpha.shape
    out = np.zeros((h * scale, w * scale), np.uint8)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            block = alpha[y : y + tile, x : x + tile].astype(np.float32)[None]
            ex = net.create_extractor()
            ex.input("in0", to_mat(block))
            ret, mat = ex.extract("out0")
            if ret != 0:
                raise RuntimeError(f"ncnn Interp returned {ret}")
            up = np.array(mat)[0]
            out[y * scale : y * scale + up.shape[0], x * scale : x * scale + up.shape[1]] = np.clip(
                np.floor(up + np.float32(0.5)), 0, 255
            ).astype(np.uint8)
    return out
