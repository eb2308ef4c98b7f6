"""output.metadata keep|strip through a real job: EXIF without the orientation once applied, Exif sizes and
DPI scaled, XMP and PNG text chunks kept, the ICC profile kept either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from support.corpus import SRGB, noise

from srd.engine.engine import Engine
from srd.jobs import JobDone, JobSpec
from srd.jobs.runner import run_job
from srd.settings import EngineSettings, ModelSettings, OutputSettings

ORIENTATION, MAKE, EXIF_IFD, PIXEL_X, PIXEL_Y = 0x0112, 0x010F, 0x8769, 0xA002, 0xA003
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


@pytest.fixture(scope="module")
def engine() -> Engine:
    """upconv7-art at 2x, one 32-pixel tile."""
    return Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32))


def _jpeg_with_exif(path: Path) -> Path:
    """A 24x20 JPEG turned by EXIF orientation 6 (90 degrees clockwise), with a maker, Exif pixel sizes,
    150 DPI, XMP and an sRGB profile."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "srd-test-camera"
    exif.get_ifd(EXIF_IFD).update({PIXEL_X: 24, PIXEL_Y: 20})
    noise("RGB").save(path, "JPEG", exif=exif, dpi=(150, 150), icc_profile=SRGB, xmp=XMP, quality=95)
    return path


def _run(engine: Engine, tmp_path: Path, source: Path, **output: object) -> Path:
    spec = JobSpec("j", source, tmp_path / ".out.tmp", OutputSettings.model_validate(output), 10**6, 10**7)
    result = run_job(engine, spec)
    assert isinstance(result, JobDone), result
    return spec.temp


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_kept_exif_loses_the_applied_orientation_and_follows_the_size(
    tmp_path: Path, engine: Engine, fmt: str
) -> None:
    """The rotated output keeps the maker tag and XMP, has no orientation tag, Exif pixel sizes of the
    output, the DPI doubled where the format has one, and the ICC profile."""
    out = _run(engine, tmp_path, _jpeg_with_exif(tmp_path / "in.jpg"), format=fmt)
    with Image.open(out) as im:
        assert im.size == (40, 48)  # 20x24 after orientation 6, doubled
        exif = im.getexif()
        assert exif.get(MAKE) == "srd-test-camera"
        assert ORIENTATION not in exif
        assert exif.get_ifd(EXIF_IFD).get(PIXEL_X) == 40 and exif.get_ifd(EXIF_IFD).get(PIXEL_Y) == 48
        assert im.info.get("icc_profile") == SRGB
        if fmt != "webp":
            assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
        xmp = im.info.get("xmp")
        assert xmp is not None and b"adobe:ns:meta" in (xmp if isinstance(xmp, bytes) else xmp.encode())


def test_strip_drops_exif_xmp_and_dpi_but_keeps_the_profile(tmp_path: Path, engine: Engine) -> None:
    """With output.metadata strip the output has no EXIF, XMP or DPI; the ICC profile stays."""
    out = _run(engine, tmp_path, _jpeg_with_exif(tmp_path / "in.jpg"), format="png", metadata="strip")
    with Image.open(out) as im:
        assert im.size == (40, 48)
        assert not im.getexif() and "xmp" not in im.info and "dpi" not in im.info
        assert im.info.get("icc_profile") == SRGB


def test_png_text_chunks_and_resolution_are_kept(tmp_path: Path, engine: Engine) -> None:
    """tEXt, zTXt and non-Latin iTXt chunks come back in a PNG output, with pHYs doubled."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a test")
    info.add_text("Comment", "compressed " * 20, zip=True)
    info.add_itxt("Author", "Zoë 🦊")
    source = tmp_path / "text.png"
    noise("RGBA").save(source, "PNG", pnginfo=info, dpi=(72, 96))
    out = _run(engine, tmp_path, source, format="same")
    with Image.open(out) as im:
        assert im.text == {"Title": "a test", "Comment": "compressed " * 20, "Author": "Zoë 🦊"}
        assert tuple(round(v) for v in im.info["dpi"]) == (144, 192)
    stripped = _run(engine, tmp_path, source, format="same", metadata="strip")
    with Image.open(stripped) as im:
        assert im.text == {} and "dpi" not in im.info


def test_animations_keep_their_profile_and_exif(tmp_path: Path, engine: Engine) -> None:
    """An animated WebP's ICC profile and EXIF come through to the animated output."""
    exif = Image.Exif()
    exif[MAKE] = "srd-test-camera"
    frames = [noise("RGB", seed) for seed in range(3)]
    source = tmp_path / "anim.webp"
    frames[0].save(
        source, "WEBP", save_all=True, append_images=frames[1:], icc_profile=SRGB, exif=exif, lossless=True
    )
    out = _run(engine, tmp_path, source)
    with Image.open(out) as im:
        assert im.n_frames == 3 and im.info.get("icc_profile") == SRGB
        assert im.getexif().get(MAKE) == "srd-test-camera"
