"""A mixed corpus of every format srd reads (stills, animations), odd and corrupt files, dropped into a real
daemon at once with output.format `same`: each file ends exactly once in outbox or errors, every file
Pillow decodes comes out upscaled at the right size (animations with all their frames), the job lines
report frames, and the daemon lives on with bounded memory."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from support.corpus import still_cases
from support.daemon import (
    DaemonProcess,
    assert_each_input_once,
    queue_drained,
    status,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reap_daemons")]

# One still of each format and its trickiest modes (the unit tests cover every mode).
STILLS = (
    "png-P-trns.png",
    "png-RGBA16.png",
    "png-I16.png",
    "jpeg-CMYK.jpg",
    "jpeg-L.jpg",
    "tiff-RGBA.tif",
    "tiff-I16.tif",
    "tiff-LAB.tif",
    "bmp-P.bmp",
    "gif-trns.gif",
    "ico-RGBA.ico",
    "psd-RGB.psd",
    "pgm-16.pgm",
    "ppm-RGB.ppm",
    "tga-RGBA.tga",
    "jp2-RGBA.jp2",
    "webp-RGBA.webp",
    "avif-RGB.avif",
)


def animation(fmt: str) -> bytes:
    """Three frames with varying durations and a transparent corner, looping forever."""
    frames = [Image.new("RGBA", (16, 12), (60 * i, 90, 200 - 50 * i, 255)) for i in range(3)]
    frames[1].paste((0, 0, 0, 0), (0, 0, 6, 6))
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=[80, 120, 200], loop=0)
    return out.getvalue()


def peak_rss_kib(pid: object) -> int:
    """A process's peak resident memory in KiB, from /proc (0 when it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)


def corpus() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, expected): "ok" (Pillow decodes it) or the error type srd reports."""
    stills = {case.name: case.data for case in still_cases() if case.name in STILLS}
    files = {name: (data, "ok") for name, data in stills.items()}
    for name in (
        "png-RGBA16.png",
        "jpeg-L.jpg",
        "tiff-RGBA.tif",
        "bmp-P.bmp",
        "jp2-RGBA.jp2",
        "ico-RGBA.ico",
    ):
        stem, suffix = name.rsplit(".", 1)
        files[f"cut-{stem}.{suffix}"] = (stills[name][: len(stills[name]) // 3], "CorruptImageError")
    files["anim-gif.gif"] = (animation("GIF"), "ok")
    files["anim-apng.png"] = (animation("PNG"), "ok")
    files["anim-webp.webp"] = (animation("WEBP"), "ok")
    files["cut-anim.gif"] = (animation("GIF")[:-40], "CorruptImageError")
    files["notes.tif"] = (b"these are notes, not a TIFF\n" * 4, "UnsupportedFormatError")
    files["empty.psd"] = (b"", "CorruptImageError")
    files["pdf.jp2"] = (b"%PDF-1.7\n" + bytes(64), "UnsupportedFormatError")
    return files


def test_a_mixed_corpus_ends_once_each_upscaled_or_refused(tmp_path: Path, cache: Path) -> None:
    """31 files of every format at once: each once in outbox or errors, outputs at twice Pillow's size in
    the input's format (PNG for PSD/ICO), animations with every frame; refusals name their reason."""
    config = write_config(tmp_path, cache, output={"format": "same"}, limits={"max_frames": 50})
    daemon = DaemonProcess(config).wait_ready()
    files = corpus()
    staging, inbox = tmp_path / "staging", tmp_path / "inbox"
    staging.mkdir()
    for name, (data, _) in files.items():
        (staging / name).write_bytes(data)
    for name in files:
        (staging / name).rename(inbox / name)
    wait_for(lambda: queue_drained(tmp_path, len(files)), 240, "every file in outbox or errors")
    assert_each_input_once(tmp_path, list(files))

    outbox, errors = tmp_path / "outbox", tmp_path / "errors"
    for name, (data, expected) in files.items():
        stem = Path(name).stem
        if expected != "ok":
            report = json.loads((errors / f"{name}.error.json").read_text())
            assert report["error_type"] == expected, (name, report)
            continue
        (output,) = outbox.glob(f"{stem}.*")
        with Image.open(io.BytesIO(data)) as im:
            width, height, frames, fmt = im.width, im.height, getattr(im, "n_frames", 1), im.format
        with Image.open(output) as out:
            assert out.size == (2 * width, 2 * height), name
            assert getattr(out, "n_frames", 1) == (frames if fmt in ("GIF", "PNG", "WEBP") else 1), name
            assert out.format == (fmt if fmt not in ("PSD", "ICO") else "PNG"), name
    ok = [line for line in daemon.job_lines() if line.get("outcome") == "ok"]
    frames = {Path(line["input"]).name: line["frames"] for line in ok}
    assert frames["anim-gif.gif"] == frames["anim-webp.webp"] == frames["anim-apng.png"] == 3
    assert frames["psd-RGB.psd"] == 1
    worker_peak = peak_rss_kib(status(tmp_path).get("worker_pid"))
    assert 0 < worker_peak < 2 * 1024 * 1024, f"worker peak RSS {worker_peak} KiB"
    assert daemon.process.poll() is None
    assert daemon.stop() == 0
