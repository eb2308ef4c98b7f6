"""Tests for srd.jobs.runner with a stand-in engine: the output, its figures, and whose fault a failure is."""

from __future__ import annotations

import errno
import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from srd.imaging import RasterImage
from srd.jobs import FailureKind, JobDone, JobFailed, JobSpec
from srd.jobs.runner import run_job
from srd.settings import OutputSettings


class NearestTwice:
    """Upscales 2x by repeating pixels: an engine without JAX."""

    def upscale(
        self,
        image: RasterImage,
        target_size: tuple[int, int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RasterImage:
        if progress is not None:
            progress(1, 1)  # one "tile": the whole image

        def grow(array: np.ndarray) -> np.ndarray:
            return np.repeat(np.repeat(array, 2, axis=0), 2, axis=1)

        alpha = None if image.alpha is None else grow(image.alpha)
        return replace(image, pixels=grow(image.pixels), alpha=alpha)


def spec_for(tmp_path: Path, data: bytes, **output: object) -> JobSpec:
    source = tmp_path / "in.png"
    source.write_bytes(data)
    settings = OutputSettings.model_validate(output)
    return JobSpec("j1", source, tmp_path / ".out.tmp", settings, max_pixels=10_000, max_bytes=1_000_000)


def png(mode: str, colour: tuple[int, ...], size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_job_writes_its_output_and_reports_its_figures(tmp_path: Path) -> None:
    """run_job decodes, upscales, encodes into the temporary path and reports sizes and bytes."""
    spec = spec_for(tmp_path, png("RGB", (10, 200, 30)))
    result = run_job(NearestTwice(), spec)
    assert isinstance(result, JobDone)
    assert result.input_size == (8, 6) and result.output_size == (16, 12)
    assert result.input_bytes == spec.input.stat().st_size
    assert result.output_bytes == spec.temp.stat().st_size
    with Image.open(spec.temp) as image:
        assert image.size == (16, 12) and image.getpixel((3, 3)) == (10, 200, 30)


def test_the_jobs_output_settings_reach_the_encoder(tmp_path: Path) -> None:
    """A JPEG job of a transparent image composites it onto output.background, as the config says."""
    spec = spec_for(tmp_path, png("RGBA", (255, 0, 0, 0)), format="jpg", background="#000000")
    assert isinstance(run_job(NearestTwice(), spec), JobDone)
    with Image.open(spec.temp) as image:
        assert image.format == "JPEG"
        assert max(image.convert("RGB").getpixel((4, 4))) < 8


def test_a_file_that_is_not_an_image_is_the_inputs_fault(tmp_path: Path) -> None:
    """An undecodable input is an INPUT failure (straight to errors), with no traceback to report."""
    result = run_job(NearestTwice(), spec_for(tmp_path, b"not an image\n"))
    assert isinstance(result, JobFailed)
    assert result.kind is FailureKind.INPUT and result.error_type == "UnsupportedFormatError"
    assert result.traceback is None


def test_a_full_disk_is_the_machines_fault_and_other_errors_transient(tmp_path: Path) -> None:
    """ENOSPC and EDQUOT are NO_SPACE (no attempt charged); any other error is TRANSIENT, with a traceback."""
    for code in (errno.ENOSPC, errno.EDQUOT):
        assert JobFailed.from_exception("j", OSError(code, "full")).kind is FailureKind.NO_SPACE
    spec = replace(spec_for(tmp_path, png("RGB", (1, 2, 3))), temp=tmp_path / "missing" / ".out.tmp")
    result = run_job(NearestTwice(), spec)
    assert isinstance(result, JobFailed)
    assert result.kind is FailureKind.TRANSIENT and result.error_type == "FileNotFoundError"
    assert result.traceback is not None and "FileNotFoundError" in result.traceback
