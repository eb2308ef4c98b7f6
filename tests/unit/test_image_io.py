"""Tests for srd.image_io and srd.png16: decoding under limits, every input mode, exact encoding."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageCms, ImageOps

from srd.errors import (
    CorruptImageError,
    ImageTooLargeError,
    NotARegularFileError,
    UnsupportedFormatError,
    UsageError,
)
from srd.imaging.animation import Animation
from srd.imaging.decode import read_image, read_media
from srd.imaging.encode import encode_image, output_suffix
from srd.imaging.png import encode_png
from srd.imaging.raster import RasterImage

LIMIT = 10_000_000
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _save(tmp_path: Path, im: Image.Image, name: str, **options: object) -> Path:
    path = tmp_path / name
    im.save(path, **options)  # type: ignore[arg-type]
    return path


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def _plain_png16(samples: npt.NDArray[np.uint16], *, interlaced: bool = False) -> bytes:
    """An unfiltered 16-bit PNG written independently of srd.png16, as the reference for reading."""
    H, W, C = samples.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[C]
    big_endian = samples.astype(">u2")
    # Adam7 passes as (y0, x0, dy, dx); a plain image is the single pass (0, 0, 1, 1).
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    raw = b""
    for y0, x0, dy, dx in passes:
        sub = big_endian[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", W, H, 16, color_type, 0, 0, int(interlaced))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _random16(shape: tuple[int, ...]) -> npt.NDArray[np.uint16]:
    return _rng().integers(0, 65536, shape).astype(np.uint16)


# ---------------------------------------------------------------- 8-bit modes


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_png_8bit_modes_read_exactly(tmp_path: Path, mode: str) -> None:
    """8-bit L, LA, RGB and RGBA PNGs decode to k/255 with gray kept at one channel and alpha split off."""
    bands = len(mode)
    arr = _rng().integers(0, 256, (6, 9, bands)).astype(np.uint8)
    im = Image.fromarray(arr[..., 0] if bands == 1 else arr)
    got = read_image(_save(tmp_path, im, "x.png"), max_pixels=LIMIT)
    color = 1 if mode in ("L", "LA") else 3
    assert got.pixels.shape == (6, 9, color) and got.pixels.dtype == np.float32 and got.bits == 8
    np.testing.assert_array_equal(got.pixels, arr[..., :color] / np.float32(255))
    if mode.endswith("A"):
        assert got.alpha is not None
        np.testing.assert_array_equal(got.alpha, arr[..., -1] / np.float32(255))
    else:
        assert got.alpha is None


@pytest.mark.parametrize(("channels", "with_alpha"), [(1, False), (1, True), (3, False), (3, True)])
def test_png_8bit_round_trip_is_exact(tmp_path: Path, channels: int, with_alpha: bool) -> None:
    """read -> encode(png) -> read returns the same 8-bit samples for gray, gray+alpha, RGB and RGBA."""
    arr = _rng().integers(0, 256, (7, 5, channels + with_alpha)).astype(np.uint8)
    first = RasterImage(
        pixels=(arr[..., :channels] / 255).astype(np.float32),
        alpha=(arr[..., -1] / 255).astype(np.float32) if with_alpha else None,
    )
    again = read_image(_write(tmp_path, "a.png", encode_image(first, "png")), max_pixels=LIMIT)
    np.testing.assert_array_equal(again.pixels, first.pixels)
    assert (again.alpha is None) == (first.alpha is None)
    if first.alpha is not None and again.alpha is not None:
        np.testing.assert_array_equal(again.alpha, first.alpha)


def test_fully_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    """An RGBA image whose alpha is 255 everywhere reads with alpha None."""
    arr = np.full((4, 4, 4), 255, np.uint8)
    assert read_image(_save(tmp_path, Image.fromarray(arr), "o.png"), max_pixels=LIMIT).alpha is None


def test_palette_with_alpha_table(tmp_path: Path) -> None:
    """A palette PNG with a tRNS alpha table reads as RGB plus the table's alpha."""
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.putdata([0, 1, 2])
    got = read_image(_save(tmp_path, im, "p.png", transparency=bytes([0, 128, 255])), max_pixels=LIMIT)
    np.testing.assert_array_equal(got.pixels[0], np.eye(3, dtype=np.float32))
    assert got.alpha is not None
    np.testing.assert_array_equal(got.alpha[0], np.array([0, 128, 255], np.float32) / np.float32(255))


def test_palette_with_one_transparent_index(tmp_path: Path) -> None:
    """A palette GIF with a transparent index gets alpha 0 exactly where that index is used."""
    im = Image.new("P", (4, 2))
    im.putpalette([10, 20, 30, 200, 100, 50])
    im.putdata([0, 1, 1, 0, 1, 1, 0, 1])
    got = read_image(_save(tmp_path, im, "t.gif", transparency=0), max_pixels=LIMIT)
    assert got.alpha is not None and got.channels == 3
    np.testing.assert_array_equal(got.alpha.ravel(), [0, 1, 1, 0, 1, 1, 0, 1])
    np.testing.assert_allclose(got.pixels[0, 1] * 255, [200, 100, 50])


def test_palette_without_transparency_has_no_alpha(tmp_path: Path) -> None:
    """A palette PNG without tRNS reads as RGB with alpha None."""
    im = Image.new("P", (2, 2))
    im.putpalette([0, 0, 0, 255, 255, 255])
    got = read_image(_save(tmp_path, im, "n.png"), max_pixels=LIMIT)
    assert got.channels == 3 and got.alpha is None


def test_rgb_colour_key_becomes_alpha(tmp_path: Path) -> None:
    """An RGB PNG with a tRNS colour key is transparent exactly on the key colour."""
    arr = np.zeros((2, 2, 3), np.uint8)
    arr[0, 0] = (1, 2, 3)
    got = read_image(_save(tmp_path, Image.fromarray(arr), "k.png", transparency=(1, 2, 3)), max_pixels=LIMIT)
    assert got.alpha is not None
    np.testing.assert_array_equal(got.alpha, [[0, 1], [1, 1]])


def test_one_bit_image_reads_as_gray(tmp_path: Path) -> None:
    """A 1-bit image reads as one gray channel of 0 and 1."""
    im = Image.new("1", (3, 2))
    im.putpixel((1, 0), 1)
    got = read_image(_save(tmp_path, im, "b.png"), max_pixels=LIMIT)
    np.testing.assert_array_equal(got.pixels[..., 0], [[0, 1, 0], [0, 0, 0]])


def test_cmyk_jpeg_converts_to_rgb_without_inversion(tmp_path: Path) -> None:
    """A CMYK JPEG (Adobe inverted convention) reads as RGB: no ink is white, pure cyan is (0, 1, 1)."""
    im = Image.new("CMYK", (16, 8), (0, 0, 0, 0))
    im.paste((255, 0, 0, 0), (8, 0, 16, 8))
    got = read_image(_save(tmp_path, im, "c.jpg", quality=100), max_pixels=LIMIT)
    assert got.channels == 3 and got.icc_profile is None
    np.testing.assert_allclose(got.pixels[4, 2], [1, 1, 1], atol=0.02)
    np.testing.assert_allclose(got.pixels[4, 13], [0, 1, 1], atol=0.02)


@pytest.mark.parametrize(("fmt", "options"), [("bmp", {}), ("tiff", {}), ("webp", {"lossless": True})])
def test_other_lossless_formats_read_exactly(tmp_path: Path, fmt: str, options: dict[str, object]) -> None:
    """BMP, TIFF and lossless WebP RGB files decode to the exact samples written."""
    arr = _rng().integers(0, 256, (5, 6, 3)).astype(np.uint8)
    got = read_image(_save(tmp_path, Image.fromarray(arr), f"x.{fmt}", **options), max_pixels=LIMIT)
    np.testing.assert_array_equal(got.pixels, arr / np.float32(255))


# ---------------------------------------------------------------- 16-bit


@pytest.mark.parametrize("interlaced", [False, True])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_reads_exactly(tmp_path: Path, channels: int, interlaced: bool) -> None:
    """16-bit gray, gray+alpha, RGB, RGBA PNGs, plain and Adam7, from an independent encoder keep 16 bits."""
    samples = _random16((11, 13, channels))
    png = _plain_png16(samples, interlaced=interlaced)
    got = read_image(_write(tmp_path, "w.png", png), max_pixels=LIMIT)
    color = 1 if channels <= 2 else 3
    assert got.bits == 16 and got.channels == color
    np.testing.assert_array_equal(got.pixels, samples[..., :color] / np.float32(65535))
    if channels in (2, 4):
        assert got.alpha is not None
        np.testing.assert_array_equal(got.alpha, samples[..., -1] / np.float32(65535))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    """read -> encode(png) -> read preserves every 16-bit sample, alpha included."""
    samples = _random16((9, 11, channels))
    samples[:4] = np.cumsum(_rng().integers(0, 300, (4, 11, channels)), axis=1)  # smooth rows: other filters
    first = read_image(_write(tmp_path, "a.png", _plain_png16(samples)), max_pixels=LIMIT)
    again = read_image(_write(tmp_path, "b.png", encode_image(first, "png")), max_pixels=LIMIT)
    assert again.bits == 16
    np.testing.assert_array_equal(again.pixels, first.pixels)
    if first.alpha is not None:
        assert again.alpha is not None
        np.testing.assert_array_equal(again.alpha, first.alpha)


def test_16bit_and_float_tiff_gray(tmp_path: Path) -> None:
    """A 16-bit gray TIFF reads exactly at 16 bits; a float TIFF is clipped to 0..1 and kept at 16 bits."""
    samples = _random16((4, 6))
    got = read_image(_save(tmp_path, Image.fromarray(samples), "g.tiff"), max_pixels=LIMIT)
    assert got.bits == 16
    np.testing.assert_array_equal(got.pixels[..., 0], samples / np.float32(65535))
    floats = np.array([[-0.5, 0.25, 2.0]], np.float32)
    got = read_image(_save(tmp_path, Image.fromarray(floats), "f.tiff"), max_pixels=LIMIT)
    assert got.bits == 16
    np.testing.assert_array_equal(got.pixels[..., 0], [[0.0, 0.25, 1.0]])


def test_png16_writer_is_read_by_pillow(tmp_path: Path) -> None:
    """Our 16-bit gray PNG (all five row filters in play) decodes in Pillow to the same samples."""
    samples = _random16((40, 33, 1))
    samples[:20] = np.cumsum(_rng().integers(0, 100, (20, 33, 1)), axis=1)
    with Image.open(io.BytesIO(encode_png(samples, SRGB))) as im:
        assert im.mode == "I;16" and im.info["icc_profile"] == SRGB
        np.testing.assert_array_equal(np.asarray(im), samples[..., 0])


def test_16bit_rgb_colour_key_becomes_alpha(tmp_path: Path) -> None:
    """A 16-bit RGB PNG with a tRNS colour key is transparent exactly where all 16 bits match the key."""
    samples = np.full((1, 3, 3), 1000, np.uint16)
    samples[0, 1] = (1000, 1000, 1001)
    plain = _plain_png16(samples)
    ihdr_end = 8 + 25  # signature + IHDR chunk; tRNS must come before IDAT
    data = plain[:ihdr_end] + _chunk(b"tRNS", struct.pack(">HHH", 1000, 1000, 1000)) + plain[ihdr_end:]
    got = read_image(_write(tmp_path, "k16.png", data), max_pixels=LIMIT)
    assert got.alpha is not None and got.bits == 16
    np.testing.assert_array_equal(got.alpha, [[0, 1, 0]])


def test_colour_key_wider_than_the_samples_is_harmless(tmp_path: Path) -> None:
    """An 8-bit RGB PNG whose tRNS key is 1000 (no sample can match) reads as fully opaque."""
    plain = _png_bytes((4, 4))
    data = plain[:33] + _chunk(b"tRNS", struct.pack(">HHH", 1000, 0, 0)) + plain[33:]
    assert read_image(_write(tmp_path, "k.png", data), max_pixels=LIMIT).alpha is None


# ---------------------------------------------------------------- orientation and ICC


def test_exif_rotated_jpeg_has_the_rotated_size(tmp_path: Path) -> None:
    """A 40x20 JPEG tagged orientation 6 (rotate 90 clockwise) reads as 20 wide and 40 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    im = Image.new("RGB", (40, 20), (200, 10, 10))
    got = read_image(_save(tmp_path, im, "r.jpg", exif=exif), max_pixels=LIMIT)
    assert (got.width, got.height) == (20, 40)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    """Each EXIF orientation 1..8 gives exactly the pixels ImageOps.exif_transpose gives, alpha included."""
    arr = _rng().integers(0, 256, (3, 5, 4)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path, Image.fromarray(arr), "o.png", exif=exif)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    got = read_image(path, max_pixels=LIMIT)
    assert got.alpha is not None
    np.testing.assert_array_equal(got.pixels, expected[..., :3] / np.float32(255))
    np.testing.assert_array_equal(got.alpha, expected[..., 3] / np.float32(255))


@pytest.mark.parametrize(("fmt", "bits"), [("png", 8), ("png", 16), ("jpg", 8), ("webp", 8)])
def test_icc_profile_is_carried_through(tmp_path: Path, fmt: str, bits: int) -> None:
    """An RGB ICC profile read from a file is embedded again in PNG (8 and 16-bit), JPEG and WebP output."""
    path = _save(tmp_path, Image.new("RGB", (4, 4), (9, 99, 199)), "icc.png", icc_profile=SRGB)
    first = read_image(path, max_pixels=LIMIT)
    assert first.icc_profile == SRGB
    image = RasterImage(pixels=first.pixels, icc_profile=first.icc_profile, bits=bits)
    out = _write(tmp_path, "out" + output_suffix(fmt), encode_image(image, fmt))
    assert read_image(out, max_pixels=LIMIT).icc_profile == SRGB


def test_icc_profile_of_the_wrong_colour_space_is_dropped(tmp_path: Path) -> None:
    """An RGB profile is not embedded into gray output, where it would be invalid."""
    image = RasterImage(pixels=np.zeros((2, 2, 1), np.float32), icc_profile=SRGB)
    out = _write(tmp_path, "g.png", encode_image(image, "png"))
    assert read_image(out, max_pixels=LIMIT).icc_profile is None


# ---------------------------------------------------------------- hostile and damaged input


def _png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(_rng().integers(0, 256, (*size[::-1], 3)).astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


def _jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.fromarray(_rng().integers(0, 256, (64, 64, 3)).astype(np.uint8)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cut-pixels.png", _png_bytes()[:-2000]),
        ("cut-header.png", _png_bytes()[:20]),
        ("cut.jpg", _jpeg_bytes()[: len(_jpeg_bytes()) // 2]),
        ("cut16.png", _plain_png16(_random16((64, 64, 3)))[:-3000]),
        ("bad-crc.png", _png_bytes()[:40] + b"\xff" + _png_bytes()[41:]),
        ("empty.png", b""),
    ],
)
def test_damaged_files_are_corrupt(tmp_path: Path, name: str, data: bytes) -> None:
    """Truncated PNG (8 and 16-bit) and JPEG, a broken chunk and a zero-byte file raise CorruptImageError."""
    with pytest.raises(CorruptImageError):
        read_image(_write(tmp_path, name, data), max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"hello, this is not a picture\n" * 10, "text"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "PostScript"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x00\x01\x02\x03" * 64, "binary"),
    ],
)
def test_non_images_are_unsupported_and_named(tmp_path: Path, data: bytes, kind: str) -> None:
    """Text, EPS (never handed to Ghostscript), PDF and random bytes named .png say what they are."""
    with pytest.raises(UnsupportedFormatError, match=kind):
        read_image(_write(tmp_path, "fake.png", data), max_pixels=LIMIT)


def _bomb_png(side: int) -> bytes:
    """A valid 1-bit PNG of side x side zero pixels: ~1000:1 compression, so ~100 KB for 30000."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A 30000 x 30000 PNG of about 100 KB."""
    return _bomb_png(30000)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path, bomb: bytes) -> None:
    """A ~100 KB PNG declaring 30000x30000 is refused from its header, before any pixel is decoded."""
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLargeError, match="900000000 pixels"):
        read_image(_write(tmp_path, "bomb.png", bomb), max_pixels=LIMIT)


def test_srd_limit_applies_not_pillows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's own limit (89.5 Mpx by default; here lowered below the image) does not override srd's:
    an image under max_pixels decodes, one over it is refused with srd's message and limit."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 - 1)
    assert read_image(_write(tmp_path, "w.png", _png_bytes()), max_pixels=LIMIT).width == 64
    with pytest.raises(ImageTooLargeError, match=r"64x64 = 4096 pixels, over the limit of 4000"):
        read_image(_write(tmp_path, "w.png", _png_bytes()), max_pixels=4000)


def test_a_bomb_under_pillows_default_but_over_srds_limit(tmp_path: Path, bomb: bytes) -> None:
    """A 900 Mpx bomb is refused from its header by srd's limit whatever Pillow's is set to."""
    with pytest.raises(ImageTooLargeError, match="over the limit of 200000000"):
        read_image(_write(tmp_path, "bomb.png", bomb), max_pixels=200_000_000)


def test_pixel_limit_is_exact(tmp_path: Path) -> None:
    """max_pixels equal to the image's pixel count is accepted; one less is refused."""
    path = _write(tmp_path, "x.png", _png_bytes((10, 7)))
    assert read_image(path, max_pixels=70).width == 10
    with pytest.raises(ImageTooLargeError):
        read_image(path, max_pixels=69)


def test_file_over_max_bytes_is_refused(tmp_path: Path) -> None:
    """A file larger than max_bytes raises ImageTooLargeError; exactly max_bytes is read."""
    data = _png_bytes()
    path = _write(tmp_path, "x.png", data)
    assert read_image(path, max_pixels=LIMIT, max_bytes=len(data)).width == 64
    with pytest.raises(ImageTooLargeError, match="bytes"):
        read_image(path, max_pixels=LIMIT, max_bytes=len(data) - 1)


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "a.gif"), ("WEBP", "a.webp"), ("PNG", "a.png")])
def test_animated_images_open_as_animations(tmp_path: Path, fmt: str, name: str) -> None:
    """Animated GIF, WebP and APNG open as an Animation of 3 frames; read_image gives the first frame; more
    frames than max_frames are refused naming both counts."""
    frames = [Image.new("RGB", (8, 8), (i * 80, 0, 0)) for i in range(3)]
    path = _save(tmp_path, frames[0], name, format=fmt, save_all=True, append_images=frames[1:])
    with read_media(path, max_pixels=LIMIT) as media:  # type: ignore[union-attr]
        assert isinstance(media, Animation) and media.frames == 3
    assert read_image(path, max_pixels=LIMIT).pixels[0, 0, 0] == 0.0
    with pytest.raises(ImageTooLargeError, match=r"animation has 3 frames, over the limit of 2"):
        read_media(path, max_pixels=LIMIT, max_frames=2)


def test_multipage_tiff_gives_its_first_page(tmp_path: Path) -> None:
    """A two-page TIFF reads as its first page."""
    pages = [Image.new("L", (4, 4), 200), Image.new("L", (4, 4), 9)]
    path = _save(tmp_path, pages[0], "m.tiff", save_all=True, append_images=pages[1:])
    assert np.all(read_image(path, max_pixels=LIMIT).pixels == np.float32(200 / 255))


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO named x.png raises NotARegularFileError instead of blocking in open()."""
    path = tmp_path / "x.png"
    os.mkfifo(path)
    with pytest.raises(NotARegularFileError):
        read_image(path, max_pixels=LIMIT)


# ---------------------------------------------------------------- encoding


def test_rounding_is_half_up_and_clipped() -> None:
    """floor(x * 255 + 0.5): (k + 0.5)/255 rounds up to k + 1, just below it rounds down, range is clipped."""
    k = np.arange(255, dtype=np.float32)
    half = (k + np.float32(0.5)) / np.float32(255)
    below = (k + np.float32(0.49)) / np.float32(255)
    row = np.concatenate([half, below, np.array([-0.2, 1.7], np.float32)])
    image = RasterImage(pixels=row.reshape(1, -1, 1))
    with Image.open(io.BytesIO(encode_image(image, "png"))) as im:
        got = np.asarray(im)[0].astype(np.int64)
    np.testing.assert_array_equal(got[:255], np.arange(1, 256))
    np.testing.assert_array_equal(got[255:510], np.arange(255))
    np.testing.assert_array_equal(got[510:], [0, 255])


def test_non_finite_samples_are_written_as_black_or_white() -> None:
    """A network output that overflowed writes NaN and -inf as 0 and +inf as the maximum, never garbage,
    at 8 and 16 bits."""
    row = np.array([np.nan, np.inf, -np.inf, 0.5], np.float32).reshape(1, 4, 1)
    for bits, top in ((8, 255), (16, 65535)):
        with Image.open(io.BytesIO(encode_image(RasterImage(pixels=row, bits=bits), "png"))) as im:
            np.testing.assert_array_equal(np.asarray(im)[0], [0, top, 0, (top + 1) // 2])


def test_16bit_rounding_is_half_up() -> None:
    """16-bit PNG output rounds 0.5/65535 up to 1 and 0.49/65535 down to 0."""
    row = np.array([0.5, 0.49, 65534.5], np.float32) / np.float32(65535)
    image = RasterImage(pixels=row.reshape(1, 3, 1), bits=16)
    with Image.open(io.BytesIO(encode_image(image, "png"))) as im:
        np.testing.assert_array_equal(np.asarray(im)[0], [1, 0, 65535])


def test_jpeg_drops_alpha_and_reduces_16bit(tmp_path: Path) -> None:
    """JPEG output of a 16-bit RGBA image is an 8-bit RGB JPEG."""
    image = RasterImage(
        pixels=np.full((8, 8, 3), 0.5, np.float32), alpha=np.zeros((8, 8), np.float32), bits=16
    )
    got = read_image(_write(tmp_path, "j.jpg", encode_image(image, "jpg")), max_pixels=LIMIT)
    assert got.source_format == "JPEG" and got.bits == 8 and got.alpha is None and got.channels == 3


def test_webp_writes_gray_as_rgb_and_keeps_alpha(tmp_path: Path) -> None:
    """WebP output of gray + alpha is RGB + alpha with the gray in all three channels."""
    alpha = np.tile(np.linspace(0, 1, 8, dtype=np.float32), (8, 1))
    image = RasterImage(pixels=np.full((8, 8, 1), 0.25, np.float32), alpha=alpha)
    got = read_image(_write(tmp_path, "w.webp", encode_image(image, "webp", quality=100)), max_pixels=LIMIT)
    assert got.channels == 3 and got.alpha is not None
    np.testing.assert_allclose(got.pixels, 0.25, atol=0.02)


def test_unknown_format_and_bad_quality_are_usage_errors() -> None:
    """encode_image and output_suffix refuse unknown formats, and quality must be 1..100."""
    image = RasterImage(pixels=np.zeros((1, 1, 3), np.float32))
    assert [output_suffix(f) for f in ("png", "webp", "jpg")] == [".png", ".webp", ".jpg"]
    with pytest.raises(UsageError, match="psd"):
        encode_image(image, "psd")
    with pytest.raises(UsageError, match="same"):
        encode_image(image, "same")
    with pytest.raises(UsageError):
        output_suffix("jpeg")
    with pytest.raises(UsageError):
        encode_image(image, "jpg", quality=0)


@pytest.mark.parametrize("bits", [8, 16])
def test_png_level_changes_size_not_pixels(bits: int) -> None:
    """output.png_level trades file size for time: every level decodes to the same pixels, 0 stores raw."""
    rng = np.random.default_rng(3)
    smooth = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    image = RasterImage(
        np.clip(smooth + rng.normal(0, 0.01, smooth.shape).astype(np.float32), 0, 1), bits=bits
    )
    files = {level: encode_image(image, "png", png_level=level) for level in (0, 1, 9)}
    decoded = [np.asarray(Image.open(io.BytesIO(data))) for data in files.values()]
    assert all(np.array_equal(decoded[0], other) for other in decoded[1:])
    assert len(files[0]) > len(files[1]) >= len(files[9])
    with pytest.raises(UsageError, match="png_level"):
        encode_image(image, "png", png_level=10)
    with pytest.raises(UsageError, match="png_strategy"):
        encode_image(image, "png", png_strategy="zstd")


@pytest.mark.parametrize(("background", "expected"), [((1.0, 1.0, 1.0), 255), ((0.0, 0.0, 0.0), 0)])
def test_jpeg_composites_alpha_onto_the_background(
    background: tuple[float, float, float], expected: int
) -> None:
    """Transparent pixels holding black become the background colour in a JPEG; opaque ones are kept."""
    pixels = np.zeros((16, 16, 3), np.float32)
    pixels[:, 8:] = (0.2, 0.6, 0.4)
    alpha = np.zeros((16, 16), np.float32)
    alpha[:, 8:] = 1.0
    data = encode_image(RasterImage(pixels, alpha), "jpg", quality=100, background=background)
    with Image.open(io.BytesIO(data)) as im:
        out = np.asarray(im.convert("RGB"), np.int32)
    assert np.abs(out[:, :6] - expected).max() <= 2
    assert np.abs(out[:, 10:] - np.array([51, 153, 102])).max() <= 3


def test_gray_alpha_jpeg_is_flattened_to_gray() -> None:
    """A gray image with alpha is composited onto the background's gray level and written as L."""
    data = encode_image(RasterImage(np.zeros((8, 8, 1), np.float32), np.zeros((8, 8), np.float32)), "jpg")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L"
        assert np.asarray(im).min() >= 253
