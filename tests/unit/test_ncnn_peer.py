"""The benchmark's own references: the ncnn waifu2x peer and the MATLAB imresize port."""

from __future__ import annotations

from pathlib import Path

import ncnn
import numpy as np
import pytest
from support.matlab_imresize import contributions, imresize
from support.ncnn_peer import load_peer, packaged_model, to_u8
from support.sr_metrics import load_set, srcnn_bicubic_psnr

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def sr_data() -> Path:
    """../shared/data (Set5, Set14), or skip when it is absent."""
    if not (DATA / "set5").is_dir() or not (DATA / "set14").is_dir():
        pytest.skip("../shared/data is not present beside the repo")
    return DATA


def _image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("name", "noise", "scale", "stem", "prepadding"),
    [
        ("cunet", -1, 2, "WAIFU2X_CUNET_UP2X", 18),
        ("cunet", 2, 2, "WAIFU2X_CUNET_UP2X_DENOISE2X", 18),
        ("cunet", 0, 1, "WAIFU2X_CUNET_UP1X_DENOISE0X", 28),
        ("upconv7-art", -1, 2, "WAIFU2X_ANIME_UP2X", 7),
        ("upconv7-photo", 3, 2, "WAIFU2X_PHOTO_UP2X_DENOISE3X", 7),
    ],
)
def test_packaged_model_maps_names(name: str, noise: int, scale: int, stem: str, prepadding: int) -> None:
    """srd's built-in names map to the packaged files and waifu2x-ncnn-vulkan's prepadding."""
    model = packaged_model(name, noise, scale)
    assert model.param_path.name == f"{stem}.param"
    assert model.param_path.is_file()
    assert model.bin_path.is_file()
    assert model.prepadding == prepadding


@pytest.mark.parametrize(
    ("name", "noise", "scale"), [("vgg7", -1, 2), ("upconv7-art", -1, 1), ("cunet", 4, 2)]
)
def test_packaged_model_rejects_unknown(name: str, noise: int, scale: int) -> None:
    """Names, noise levels and scales that have no packaged model are refused."""
    with pytest.raises(ValueError, match=r"noise|scale|unknown"):
        packaged_model(name, noise, scale)


def test_to_u8_truncates_like_ncnn() -> None:
    """Output conversion is (int)(v * 255 + 0.5) saturated, as waifu2x-ncnn-vulkan writes pixels."""
    values = np.array([-0.01, 0.0, 0.5, 0.998, 1.0, 1.2], dtype=np.float32)
    assert to_u8(values).tolist() == [0, 0, 128, 254, 255, 255]


@pytest.mark.parametrize(("name", "noise", "scale"), [("upconv7-art", -1, 2), ("cunet", 0, 1)])
def test_padded_tiles_match_ncnn_own_helpers(name: str, noise: int, scale: int) -> None:
    """Every tile's network input equals ncnn's from_pixels_roi + normalise + copy_make_border."""
    peer = load_peer(name, noise, scale, tilesize=24)
    h, w = 53, 37
    rgb = _image(h, w, seed=3)
    size, pad, parity = peer.tilesize, peer.prepadding, 4 if scale == 1 else 2
    for yi in range(-(-h // size)):
        for xi in range(-(-w // size)):
            ours, tile_w, tile_h = peer.padded_tile(rgb, xi, yi)
            pad_b = pad + -(-tile_h // parity) * parity - tile_h
            pad_r = pad + -(-tile_w // parity) * parity - tile_w
            y0, y1 = max(yi * size - pad, 0), min((yi + 1) * size + pad_b, h)
            x0, x1 = max(xi * size - pad, 0), min((xi + 1) * size + pad_r, w)
            mat = ncnn.Mat.from_pixels_roi(
                rgb.tobytes(), ncnn.Mat.PixelType.PIXEL_RGB, w, h, x0, y0, x1 - x0, y1 - y0
            )
            mat.substract_mean_normalize([], [1 / 255.0] * 3)
            padded = ncnn.Mat()
            border = (
                max(pad - yi * size, 0),
                max(min((yi + 1) * size + pad_b - h, pad_b), 0),
                max(pad - xi * size, 0),
                max(min((xi + 1) * size + pad_r - w, pad_r), 0),
            )
            ncnn.copy_make_border(mat, padded, *border, ncnn.BorderType.BORDER_REPLICATE, 0.0)
            np.testing.assert_array_equal(ours, np.array(padded))


def test_peer_output_shape_and_determinism() -> None:
    """upconv_7 on a small odd-sized image gives a 2x uint8 image, the same on every run."""
    peer = load_peer("upconv7-art", tilesize=16)
    rgb = _image(21, 13, seed=1)
    first = peer.process(rgb)
    assert first.shape == (42, 26, 3)
    assert first.dtype == np.uint8
    np.testing.assert_array_equal(first, peer.process(rgb))


def test_peer_tiles_abut_for_upconv7() -> None:
    """upconv_7 has no global operation: small tiles give the single-tile result within ncnn's rounding."""
    rgb = _image(45, 38, seed=2)
    tiled = load_peer("upconv7-art", tilesize=16).process(rgb).astype(np.int16)
    whole = load_peer("upconv7-art").process(rgb).astype(np.int16)
    assert int(np.abs(tiled - whole).max()) <= 1


def test_peer_restores_a_flat_image() -> None:
    """A flat grey image stays (almost) flat grey through the network: the peer feeds it correctly."""
    rgb = np.full((20, 20, 3), 128, dtype=np.uint8)
    out = load_peer("upconv7-photo").process(rgb).astype(np.int16)
    assert int(np.abs(out - 128).max()) <= 2


def test_imresize_keeps_constant_images_constant() -> None:
    """Shrinking or enlarging a constant image gives the same constant (weights sum to one)."""
    flat = np.full((17, 10, 3), 77, dtype=np.uint8)
    assert imresize(flat, 0.5).shape == (9, 5, 3)
    assert np.all(imresize(flat, 0.5) == 77)
    assert np.all(imresize(flat, 2.0) == 77)
    np.testing.assert_allclose(imresize(np.full((8, 6), 0.3), 0.5), 0.3, rtol=0, atol=1e-12)


def test_imresize_hand_computed_upscale() -> None:
    """2x of [100, 200] with the a=-0.5 kernel and mirrored edges, worked out by hand."""
    out = imresize(np.array([[100.0, 200.0]]), 2.0)
    np.testing.assert_allclose(out, [[90.625, 120.3125, 179.6875, 209.375]] * 2, rtol=0, atol=1e-9)
    assert imresize(np.array([[100, 200]], dtype=np.uint8), 2.0).tolist() == [[91, 120, 180, 209]] * 2


def test_imresize_hand_computed_antialiased_downscale() -> None:
    """Halving [0, 64, 128, 192] stretches the kernel to width 8; uint8 rounds .5 away from zero."""
    out = imresize(np.array([[0.0, 64.0, 128.0, 192.0]]), 0.5)
    np.testing.assert_allclose(out, [[29.5, 162.5]], rtol=0, atol=1e-9)
    assert imresize(np.array([[0, 64, 128, 192]], dtype=np.uint8), 0.5).tolist() == [[30, 163]]


def test_contributions_mirror_out_of_range_indices() -> None:
    """Source indices beyond either edge reflect MATLAB's [1:n, n:-1:1] pattern."""
    weights, indices = contributions(2, 4, 2.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert indices.min() >= 0
    assert indices.max() <= 1


def test_srcnn_bicubic_baseline_set5(sr_data: Path) -> None:
    """Set5 at 2x reproduces the SRCNN paper's bicubic figures: 27.43 dB on butterfly, 33.66 mean."""
    images = dict(load_set(sr_data / "set5"))
    assert round(srcnn_bicubic_psnr(images["butterfly"], 2), 2) == 27.43
    mean = float(np.mean([srcnn_bicubic_psnr(hr, 2) for hr in images.values()]))
    assert round(mean, 2) == 33.66
