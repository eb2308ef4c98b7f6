"""End-to-end tests of output.tiff_pages `separate` in a real daemon: a 3-page TIFF comes out as three
upscaled files, and a daemon killed between publishing two of them completes the set at its next start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.daemon import DaemonProcess, files_under, job_dirs, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("reap_daemons")]

SIZES = [(40, 32), (24, 24), (16, 40)]
WANT = ["doc.p001.png", "doc.p002.png", "doc.p003.png"]


def drop_tiff(inbox: Path) -> None:
    """A 3-page TIFF of noisy pages of different sizes and modes."""
    rng = np.random.default_rng(3)
    pages = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]
    pages[1] = pages[1].convert("L")
    inbox.mkdir(parents=True, exist_ok=True)
    temp = inbox / ".doc.tif.part"
    pages[0].save(temp, "TIFF", save_all=True, append_images=pages[1:])
    temp.rename(inbox / "doc.tif")  # appears whole: the test is about publishing, not settling


def assert_pages_published_once(root: Path) -> None:
    """The three pages in the outbox at twice their size, nothing else (no temporary, no duplicate); the
    input archived, nothing in errors or left in work/."""
    assert files_under(root / "outbox") == WANT
    for name, (w, h) in zip(WANT, SIZES, strict=True):
        with Image.open(root / "outbox" / name) as page:
            assert page.format == "PNG" and page.size == (w * 2, h * 2)
    assert files_under(root / "archive") == ["doc.tif"]
    assert files_under(root / "errors") == []
    assert job_dirs(root / "work") == []


def test_a_multipage_tiff_comes_out_as_one_file_per_page(tmp_path: Path, cache: Path) -> None:
    """tiff_pages separate: each page its own PNG named doc.pNNN.png; the job line reports three frames."""
    config = write_config(tmp_path, cache, watch={"settle_seconds": 0.2}, output={"tiff_pages": "separate"})
    daemon = DaemonProcess(config).wait_ready()
    drop_tiff(tmp_path / "inbox")
    wait_for(daemon.job_lines, 120, "the doc.tif job line")
    assert daemon.stop() == 0
    (line,) = daemon.job_lines()
    assert line["outcome"] == "ok" and line["frames"] == 3
    assert line["output"] == str(tmp_path / "outbox" / WANT[0])
    assert_pages_published_once(tmp_path)


def test_a_daemon_killed_between_two_pages_completes_the_set(tmp_path: Path, cache: Path) -> None:
    """SIGKILLed right after linking the first page (before recording it), the next start publishes the
    other two and archives the input: all three pages once, no numbered duplicate."""
    config = write_config(tmp_path, cache, watch={"settle_seconds": 0.2}, output={"tiff_pages": "separate"})
    first = DaemonProcess(config, env={"SRD_TEST_FAULT": "kill_mid_publish:doc.tif"}).wait_ready()
    drop_tiff(tmp_path / "inbox")
    assert first.process.wait(120) == -9  # the fault: SIGKILL in the middle of publishing
    first.kill()
    outbox = files_under(tmp_path / "outbox")
    assert "doc.p001.png" in outbox and "doc.p002.png" not in outbox, outbox  # really half-published

    second = DaemonProcess(config, log_name="daemon2.log").wait_ready()
    wait_for(lambda: second.has_event("job.recovered"), 60, "the job to be recovered")
    assert second.stop() == 0
    assert second.job_lines() == []  # finished by recovery, not run again
    assert_pages_published_once(tmp_path)
