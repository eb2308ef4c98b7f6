"""Every still format and mode of issue 13: decoded to Pillow's reference conversion, refused precisely when
damaged, and upscaled through a real job with output.format `same` to the upscaled reference."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from support.corpus import SIZE, Case, noise, reference, saved, still_cases

from srd.engine.engine import Engine
from srd.errors import CorruptImageError, InputError
from srd.imaging import RasterImage
from srd.imaging.decode import read_image, read_media
from srd.imaging.encode import encode_image
from srd.imaging.formats import BY_NAME, DEFAULT_PATTERNS, same_format
from srd.jobs import JobDone, JobSpec
from srd.jobs.runner import run_job
from srd.settings import EngineSettings, ModelSettings, OutputSettings

CASES = still_cases()
LIMIT = 1_000_000


@pytest.fixture(scope="module")
def engine() -> Engine:
    """upconv7-art at 2x, one 32-pixel tile: each 24x20 image is one network call."""
    return Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32))


def _write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / case.name
    path.write_bytes(case.data)
    return path


def _reference_raster(case: Case) -> RasterImage:
    pixels, alpha = reference(case.data, case.reference_mode)
    deep = case.reference_mode in ("I;16", "F", "RGB16", "RGBA16")
    return RasterImage(pixels=pixels, alpha=alpha, bits=16 if deep else 8)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_mode_decodes_to_pillows_reference_conversion(tmp_path: Path, case: Case) -> None:
    """Each file decodes exactly to the reference conversion of its mode, at its bit depth, alpha kept."""
    image = read_image(_write(tmp_path, case), max_pixels=LIMIT)
    expected = _reference_raster(case)
    assert image.bits == expected.bits
    np.testing.assert_array_equal(image.pixels, expected.pixels)
    if expected.alpha is None:
        assert image.alpha is None
    else:
        assert image.alpha is not None
        np.testing.assert_array_equal(image.alpha, expected.alpha)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_truncated_files_are_refused_as_the_inputs_fault(tmp_path: Path, case: Case) -> None:
    """Each file cut to a third of its bytes is refused with an input error naming the file, never an
    unclassified exception (which the daemon would retry)."""
    path = tmp_path / case.name
    path.write_bytes(case.data[: len(case.data) // 3])
    with pytest.raises(InputError, match=case.name):
        read_media(path, max_pixels=LIMIT)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_job_writes_the_same_format_upscaled(tmp_path: Path, case: Case, engine: Engine) -> None:
    """With output.format `same`, each input comes out in its own format (PNG for PSD and ICO) at twice the
    size, in the mode and bit depth of the upscaled reference conversion, with its pixels."""
    source = read_image(_write(tmp_path, case), max_pixels=LIMIT)
    fmt = same_format(source.source_format)
    spec = JobSpec(
        "j", tmp_path / case.name, tmp_path / ".out.tmp", OutputSettings(format="same"), LIMIT, 10**7
    )
    result = run_job(engine, spec)
    assert isinstance(result, JobDone), result
    assert result.suffix == fmt.suffix
    expected = encode_image(engine.upscale(_reference_raster(case)), fmt.name)
    with Image.open(spec.temp) as out, Image.open(io.BytesIO(expected)) as want:
        assert out.format == want.format == fmt.pillow
        assert out.size == want.size == (SIZE[0] * 2, SIZE[1] * 2) if "ico" not in case.name else (48, 48)
        assert out.mode == want.mode
    got = read_image(spec.temp, max_pixels=LIMIT)
    ref_path = tmp_path / f"want{fmt.suffix}"
    ref_path.write_bytes(expected)
    want_image = read_image(ref_path, max_pixels=LIMIT)
    assert got.bits == want_image.bits
    np.testing.assert_array_equal(got.pixels, want_image.pixels)
    assert (got.alpha is None) == (want_image.alpha is None)


def test_cmyk_with_a_profile_is_converted_through_it_and_tagged_srgb(tmp_path: Path) -> None:
    """A CMYK JPEG with an ICC profile converts through LittleCMS (not Pillow's plain formula) and carries
    the sRGB profile; without one it converts plainly and carries none."""
    with_icc = next(c for c in CASES if c.name == "jpeg-CMYK-icc.jpg")
    image = read_image(_write(tmp_path, with_icc), max_pixels=LIMIT)
    assert image.icc_profile is not None
    profile = ImageCms.ImageCmsProfile(io.BytesIO(image.icc_profile))
    assert "sRGB" in ImageCms.getProfileDescription(profile) and image.icc_profile[16:20] == b"RGB "
    with Image.open(io.BytesIO(with_icc.data)) as im:
        plain = np.asarray(im.convert("RGB"), np.float32) / 255
    assert np.abs(image.pixels - plain).mean() > 0.02
    plain_case = next(c for c in CASES if c.name == "jpeg-CMYK.jpg")
    assert read_image(_write(tmp_path, plain_case), max_pixels=LIMIT).icc_profile is None


def test_16bit_inputs_stay_16bit_where_the_output_format_allows(engine: Engine) -> None:
    """16-bit gray is written 16-bit to PNG, TIFF, PGM and JPEG 2000 and 8-bit elsewhere; 16-bit colour to
    PNG and TIFF, whose 8 bits Pillow reads as the high bytes."""
    gray = engine.upscale(_reference_raster(next(c for c in CASES if c.name == "png-I16.png")))
    colour = engine.upscale(_reference_raster(next(c for c in CASES if c.name == "png-RGB16.png")))
    for name, gray_mode in (("png", "I;16"), ("tiff", "I;16"), ("ppm", "I"), ("jp2", "I;16"), ("bmp", "L")):
        with Image.open(io.BytesIO(encode_image(gray, name))) as im:
            assert im.mode == gray_mode, name
    with Image.open(io.BytesIO(encode_image(colour, "png"))) as im:
        assert im.info.get("bits", 16) and im.mode == "RGB"
    assert encode_image(colour, "png")[24] == 16  # IHDR bit depth
    tiff = encode_image(colour, "tiff")
    with Image.open(io.BytesIO(tiff)) as im:
        assert im.tag_v2[258] == (16, 16, 16)
        high = np.floor(np.clip(colour.pixels, 0, 1) * 65535 + 0.5).astype(np.uint16) >> 8
        np.testing.assert_array_equal(np.asarray(im), high.astype(np.uint8))


def test_formats_without_alpha_are_composited_and_gif_keeps_transparency() -> None:
    """BMP, PPM and JPEG flatten alpha onto the background; GIF keeps its transparent pixels transparent."""
    alpha = np.zeros((4, 4), np.float32)
    alpha[:, 2:] = 1.0
    image = RasterImage(pixels=np.full((4, 4, 3), 0.2, np.float32), alpha=alpha)
    for name in ("bmp", "ppm"):
        with Image.open(io.BytesIO(encode_image(image, name, background=(0.0, 0.0, 1.0)))) as im:
            assert (
                im.mode == "RGB"
                and im.getpixel((0, 0)) == (0, 0, 255)
                and im.getpixel((3, 0)) == (51, 51, 51)
            )
    with Image.open(io.BytesIO(encode_image(image, "gif"))) as im:
        rgba = np.asarray(im.convert("RGBA"))
    assert (rgba[:, :2, 3] == 0).all() and (rgba[:, 2:, 3] == 255).all()
    assert (rgba[:, 2:, :3] == 51).all()


def test_default_watch_patterns_cover_every_format() -> None:
    """The default inbox patterns name every suffix of the corpus."""
    suffixes = {Path(case.name).suffix for case in CASES}
    assert {f"*{suffix}" for suffix in suffixes} <= set(DEFAULT_PATTERNS)
    assert BY_NAME["psd"].writable is False


def test_a_corrupt_file_of_a_known_format_says_so(tmp_path: Path) -> None:
    """A PSD header with garbage after the magic is CorruptImageError naming Photoshop."""
    path = tmp_path / "bad.psd"
    path.write_bytes(b"8BPS" + bytes(40))
    with pytest.raises(CorruptImageError, match="Photoshop"):
        read_image(path, max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("pages", "fmt", "count"), [("all", "same", 3), ("first", "same", 1), ("all", "png", 1)]
)
def test_multipage_tiff_pages(tmp_path: Path, engine: Engine, pages: str, fmt: str, count: int) -> None:
    """output.tiff_pages all upscales every page (each its own size and mode) into a multi-page TIFF,
    reporting pages as frames; first, or a non-TIFF output, takes the first page."""
    first, second, third = noise("RGB", 1), noise("L", 2, (10, 8)), noise("RGBA", 3, (12, 12))
    source = tmp_path / "doc.tif"
    first.save(source, save_all=True, append_images=[second, third])
    output = OutputSettings(format=fmt, tiff_pages=pages)
    spec = JobSpec("j", source, tmp_path / ".out.tmp", output, LIMIT, 10**7)
    reported: list[tuple[int, int]] = []
    result = run_job(engine, spec, frames=lambda done, total: reported.append((done, total)))
    assert isinstance(result, JobDone) and result.frames == count
    assert reported == ([(1, 3), (2, 3), (3, 3)] if count == 3 else [])
    with Image.open(spec.temp) as out:
        assert out.format == ("PNG" if fmt == "png" else "TIFF") and getattr(out, "n_frames", 1) == count
        for index, page in enumerate([first, second, third][:count]):
            out.seek(index)
            want_image = engine.upscale(
                read_image(_write(tmp_path, Case("p.tif", saved(page, "TIFF"), "")), max_pixels=LIMIT)
            )
            want = Image.open(io.BytesIO(encode_image(want_image, "tiff")))
            assert out.size == want.size == (page.width * 2, page.height * 2)
            assert out.mode == want.mode
            np.testing.assert_array_equal(np.asarray(out), np.asarray(want))


def test_multipage_tiff_separate_pages(tmp_path: Path, engine: Engine) -> None:
    """output.tiff_pages separate writes each page, upscaled, into the staging folder as its own file in
    output.format (p001.png, ...), emptying what an earlier attempt left there, and reports their names."""
    pages = [noise("RGB", 1), noise("L", 2, (10, 8)), noise("RGBA", 3, (12, 12))]
    source = tmp_path / "doc.tif"
    pages[0].save(source, save_all=True, append_images=pages[1:])
    spec = JobSpec("j", source, tmp_path / ".out.tmp", OutputSettings(tiff_pages="separate"), LIMIT, 10**7)
    spec.staging.mkdir()
    (spec.staging / "p009.png").write_bytes(b"left by a lost attempt")
    reported: list[tuple[int, int]] = []
    result = run_job(engine, spec, frames=lambda done, total: reported.append((done, total)))
    assert isinstance(result, JobDone) and result.frames == 3 and result.suffix == ".png"
    assert result.pages == ("p001.png", "p002.png", "p003.png") and reported == [(1, 3), (2, 3), (3, 3)]
    assert sorted(p.name for p in spec.staging.iterdir()) == list(result.pages) and not spec.temp.exists()
    for name, page in zip(result.pages, pages, strict=True):
        want_image = engine.upscale(
            read_image(_write(tmp_path, Case("p.tif", saved(page, "TIFF"), "")), max_pixels=LIMIT)
        )
        want = Image.open(io.BytesIO(encode_image(want_image, "png")))
        with Image.open(spec.staging / name) as out:
            assert out.format == "PNG" and out.size == want.size == (page.width * 2, page.height * 2)
            assert out.mode == want.mode
            np.testing.assert_array_equal(np.asarray(out), np.asarray(want))
