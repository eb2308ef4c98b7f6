"""Tests for the inputs Pillow cannot write, made by hand: YCCK JPEGs (with and without an ICC profile) and
CUR cursors (PNG and 32-bit bitmap images), each read and compared with the conversion of the samples the
file was made from."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from support.corpus import CMYK_ICC, cur_file, noise, smooth_cmyk, ycck_jpeg

from srd.errors import CorruptImageError
from srd.imaging.colour import SRGB_ICC
from srd.imaging.decode import read_image

LIMIT = 1_000_000


def cmyk_reference(cmyk: np.ndarray, icc: bytes | None) -> np.ndarray:
    """RGB in 0..1 of CMYK samples: through the profile to sRGB (perceptual), else Pillow's plain formula."""
    im = Image.fromarray(cmyk, "CMYK")
    if icc is None:
        return np.asarray(im.convert("RGB"), np.float32) / 255
    srgb = ImageCms.createProfile("sRGB")
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    transform = ImageCms.buildTransform(profile, srgb, "CMYK", "RGB", ImageCms.Intent.PERCEPTUAL)
    converted = ImageCms.applyTransform(im, transform)
    assert converted is not None
    return np.asarray(converted, np.float32) / 255


@pytest.mark.parametrize("icc", [None, CMYK_ICC], ids=["plain", "icc"])
def test_a_ycck_jpeg_reads_as_the_cmyk_it_encodes(tmp_path: Path, icc: bytes | None) -> None:
    """A YCCK JPEG (Adobe transform 2) decodes to RGB within JPEG's loss of the CMYK samples it was made
    from (through its profile when it has one, then tagged sRGB); read as plain CMYK it would be far off."""
    cmyk = smooth_cmyk()
    path = tmp_path / "ycck.jpg"
    path.write_bytes(ycck_jpeg(cmyk, icc))
    with Image.open(path) as im:
        assert im.mode == "CMYK" and im.info["adobe_transform"] == 2
    image = read_image(path, max_pixels=LIMIT)
    want = cmyk_reference(cmyk, icc)
    assert image.pixels.shape == want.shape and image.alpha is None and image.source_format == "JPEG"
    error = np.abs(image.pixels - want)
    assert error.max() <= 8 / 255 and error.mean() <= 1 / 255, (error.max() * 255, error.mean() * 255)
    assert image.icc_profile == (SRGB_ICC if icc is not None else None)
    misread = tmp_path / "as-cmyk.jpg"  # the same components, marked as plain CMYK (transform 0)
    misread.write_bytes(ycck_jpeg(cmyk, icc, transform=0))
    assert np.abs(read_image(misread, max_pixels=LIMIT).pixels - want).mean() > 0.1


@pytest.mark.parametrize("bitmap_format", ["png", "bmp"])
def test_a_cursor_reads_as_its_largest_image_with_alpha(tmp_path: Path, bitmap_format: str) -> None:
    """A CUR (hotspot in place of the bit count) gives its largest image with its alpha and colours, for
    PNG and 32-bit bitmap images alike (Pillow's own CUR reader drops the alpha and cannot read PNG)."""
    source = noise("RGBA", 5, (32, 32))
    path = tmp_path / "pointer.cur"
    path.write_bytes(cur_file(source, [(16, 16), (32, 32)], (3, 5), bitmap_format))
    assert path.read_bytes()[:4] == b"\x00\x00\x02\x00"
    image = read_image(path, max_pixels=LIMIT)
    assert (image.width, image.height) == (32, 32) and image.source_format == "CUR" and image.bits == 8
    rgba = np.asarray(source, np.float32) / 255
    assert image.alpha is not None
    np.testing.assert_array_equal(image.alpha, rgba[..., 3])
    seen = rgba[..., 3] > 0  # a fully transparent pixel's colour is not kept by every writer
    np.testing.assert_array_equal(image.pixels[seen], rgba[..., :3][seen])


def test_a_truncated_cursor_is_refused_as_corrupt(tmp_path: Path) -> None:
    """A cursor cut inside its image data is a CorruptImageError naming the file."""
    data = cur_file(noise("RGBA", 5, (32, 32)), [(32, 32)], (0, 0), "bmp")
    path = tmp_path / "cut.cur"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptImageError, match=r"cut\.cur"):
        read_image(path, max_pixels=LIMIT)
