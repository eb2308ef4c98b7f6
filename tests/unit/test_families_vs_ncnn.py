"""Real-CUGAN, Real-ESRGAN and RealSR in srd's engine against their reference programs' pipelines run by ncnn
on the same packaged weights (tests/support/realsr_peer.py): every 8-bit output pixel within 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from support import realsr_peer as peer

from srd.engine import Engine, enable_compilation_cache
from srd.imaging.raster import RasterImage
from srd.settings import EngineSettings, ModelSettings

SET14 = Path(__file__).resolve().parents[3] / "shared" / "data" / "set14"
U8 = npt.NDArray[np.uint8]


@pytest.fixture(scope="module", autouse=True)
def _compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One persistent compilation cache for the module: the two 23-block RRDB nets compile once."""
    enable_compilation_cache(tmp_path_factory.getbasetemp() / "jax-cache-families")
    yield


def _photo(height: int, width: int) -> U8:
    """A crop of a real photograph (the pro models go wild on noise); a smooth pattern without ../shared."""
    if (SET14 / "baboon.png").is_file():
        with Image.open(SET14 / "baboon.png") as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB"))[:height, :width])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack(
        [128 + 100 * np.sin(xx / 7), 128 + 90 * np.cos(yy / 5), 128 + 60 * np.sin((xx + yy) / 9)], -1
    )
    return rgb.astype(np.uint8)


def _u8(x: npt.NDArray[np.float32]) -> U8:
    return np.floor(np.clip(x, 0.0, 1.0) * np.float32(255) + np.float32(0.5)).astype(np.uint8)


def _srd(image: U8, model: ModelSettings, tile: int | None, alpha: U8 | None = None) -> RasterImage:
    engine = Engine(model, EngineSettings(tile=tile))
    a = None if alpha is None else alpha.astype(np.float32) / np.float32(255)
    return engine.upscale(RasterImage(image.astype(np.float32) / np.float32(255), alpha=a))


def _max_diff(a: U8, b: U8) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


CUGAN_CASES = [
    ("realcugan-se", "SE", 2, -1),
    ("realcugan-se", "SE", 2, 0),
    ("realcugan-se", "SE", 2, 2),
    ("realcugan-se", "SE", 3, -1),
    ("realcugan-se", "SE", 4, 3),
    ("realcugan-pro", "PRO", 2, -1),
    ("realcugan-pro", "PRO", 3, 3),
]


def _cugan_stem(folder: str, scale: int, noise: int) -> str:
    suffix = {-1: "_CONSERVATIVE", 0: ""}.get(noise, f"_DENOISE{noise}X")
    return f"REALCUGAN_{folder}_UP{scale}X{suffix}"


@pytest.mark.parametrize(("name", "folder", "scale", "noise"), CUGAN_CASES)
def test_realcugan_in_one_tile_equals_the_reference(name: str, folder: str, scale: int, noise: int) -> None:
    """An image inside one 400 px tile: each Real-CUGAN model at its scale and noise equals ncnn's run."""
    image = _photo(44, 58)
    ours = _u8(_srd(image, ModelSettings(name=name, scale=scale, noise=noise), None).pixels)
    reference = peer.realcugan(image, peer.load("realcugan", _cugan_stem(folder, scale, noise)), scale)
    assert _max_diff(ours, reference) <= 1


@pytest.mark.parametrize(("scale", "syncgap"), [(2, 3), (2, 0), (2, 1), (3, 2), (4, 3)])
def test_realcugan_across_tiles_with_syncgap_equals_the_reference(scale: int, syncgap: int) -> None:
    """An image over several 48 px tiles (edge tiles partial): equal to the reference with that syncgap."""
    image = _photo(100, 132)
    model = ModelSettings(name="realcugan-se", scale=scale, syncgap=syncgap)
    ours = _u8(_srd(image, model, 48).pixels)
    stem = _cugan_stem("SE", scale, -1)
    reference = peer.realcugan(image, peer.load("realcugan", stem), scale, tile=48, syncgap=syncgap)
    assert _max_diff(ours, reference) <= 1


def test_realcugan_syncgap_3_under_65_pixels_falls_back_to_mode_2() -> None:
    """Where the reference's mode 3 has no sample (a side under 65 px), srd runs mode 2."""
    image = _photo(40, 132)
    ours = _u8(_srd(image, ModelSettings(name="realcugan-se", syncgap=3), 48).pixels)
    reference = peer.realcugan(image, peer.load("realcugan", "REALCUGAN_SE_UP2X_CONSERVATIVE"), 2, 48, 2)
    assert _max_diff(ours, reference) <= 1


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_animevideov3_equals_the_reference_in_one_and_several_tiles(scale: int) -> None:
    """The compact net at each scale, in one tile and over 50 px tiles with their 10 px overlap."""
    image = _photo(70, 90)
    net = peer.load("realesrgan", f"REALESRGAN_ANIMAVIDEOV3_UP{scale}X")
    model = ModelSettings(name="realesr-animevideov3", scale=scale)
    for tile in (200, 50):
        ours = _u8(_srd(image, model, tile).pixels)
        assert _max_diff(ours, peer.realesrgan_like(image, net, scale, tile)) <= 1, tile


def test_x4plus_anime_over_overlapping_tiles_equals_the_reference() -> None:
    """The 6-block RRDB over 32 px tiles: zero padding at every tile's edge as the reference's smaller
    edge tiles have it (the receptive field is far beyond the 10 px overlap, so seams must match)."""
    image = _photo(40, 52)
    ours = _u8(_srd(image, ModelSettings(name="realesrgan-x4plus-anime", scale=4), 32).pixels)
    net = peer.load("realesrgan", "REALESRGAN_X4PLUSANIME_UP4X")
    assert _max_diff(ours, peer.realesrgan_like(image, net, 4, 32)) <= 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "package", "stem"),
    [
        ("realesrgan-x4plus", "realesrgan", "REALESRGAN_X4PLUS_UP4X"),
        ("realsr-df2k", "realsr", "REALSR_DF2K_UP4X"),
    ],
)
def test_23_block_rrdb_equals_the_reference(name: str, package: str, stem: str) -> None:
    """The 23-block RRDB nets (16.7M parameters) on a small image in one tile."""
    image = _photo(28, 36)
    ours = _u8(_srd(image, ModelSettings(name=name, scale=4), None).pixels)
    assert _max_diff(ours, peer.realesrgan_like(image, peer.load(package, stem), 4)) <= 1


@pytest.mark.parametrize(
    ("name", "package", "stem", "scale", "tile"),
    [
        ("realcugan-se", "realcugan", "REALCUGAN_SE_UP2X_CONSERVATIVE", 2, 48),
        ("realesr-animevideov3", "realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP4X", 4, 50),
    ],
)
def test_rgba_equals_the_reference(name: str, package: str, stem: str, scale: int, tile: int) -> None:
    """RGBA: colour as the network gives it, alpha by ncnn's bicubic per tile, both within 1."""
    image = _photo(60, 76)
    alpha = np.full(image.shape[:2], 255, np.uint8)
    alpha[10:40, 20:60] = np.linspace(0, 255, 40, dtype=np.float32)[None, :].astype(np.uint8)
    result = _srd(image, ModelSettings(name=name, scale=scale, syncgap=0), tile, alpha)
    net = peer.load(package, stem)
    colour = peer.realcugan(image, net, scale, tile, 0) if package == "realcugan" else None
    if colour is None:
        colour = peer.realesrgan_like(image, net, scale, tile)
    assert result.alpha is not None
    assert _max_diff(_u8(result.pixels), colour) <= 1
    assert _max_diff(_u8(result.alpha), peer.bicubic_alpha(alpha, scale, tile)) <= 1


def test_alpha_model_setting_runs_the_network_on_alpha() -> None:
    """`alpha: model` upscales alpha with the network (smooth edges), not bicubic; it stays in 0..1."""
    image = _photo(40, 40)
    alpha = np.zeros(image.shape[:2], np.uint8)
    alpha[8:32, 8:32] = 255
    model = ModelSettings(name="realesr-animevideov3", scale=2, alpha="model")
    result = _srd(image, model, None, alpha)
    assert result.alpha is not None
    bicubic = peer.bicubic_alpha(alpha, 2, 200)
    assert _max_diff(_u8(result.alpha), bicubic) > 1  # a different method, visibly
    assert float(result.alpha.min()) >= 0.0 and float(result.alpha.max()) <= 1.0


def test_a_scale_the_family_lacks_runs_the_next_and_downsizes() -> None:
    """realesrgan-x4plus-anime has only 4x: asking for 2x gives a 2x image (4x, then Lanczos down)."""
    image = _photo(20, 24)
    result = _srd(image, ModelSettings(name="realesrgan-x4plus-anime", scale=2), None)
    assert result.pixels.shape == (40, 48, 3)
