"""`srd upscale` of a multi-page TIFF with --tiff-pages all (one multi-page TIFF) or separate (one file per
page, named as the daemon names them: NAME.p001.png, ...)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from srd.cli.output_files import write_new_file
from srd.cli.progress import Progress
from srd.errors import UsageError
from srd.imaging.decode import Pages
from srd.imaging.formats import ImageFormat
from srd.imaging.raster import RasterImage
from srd.jobs.frames import encode_page, multipage_tiff, upscaled_pages
from srd.jobs.pages import page_file_name, published_page_name
from srd.settings import OutputSettings


def _writes(data: bytes) -> Callable[[BinaryIO], None]:
    def write(handle: BinaryIO) -> None:
        handle.write(data)

    return write


def page_paths(path: Path, count: int, suffix: str) -> list[Path]:
    """Where each page of a `count`-page TIFF goes when its one output would be `path`."""
    return [
        path.with_name(published_page_name(path.name, page_file_name(number, count, suffix)))
        for number in range(1, count + 1)
    ]


def write_pages(
    upscale: Callable[[RasterImage], RasterImage],
    pages: Pages,
    fmt: ImageFormat,
    output: OutputSettings,
    path: Path,
    *,
    overwrite: bool,
    progress: Progress,
) -> tuple[list[Path], tuple[int, int]]:
    """Upscale every page into `path` (tiff_pages all) or one file per page beside it (separate), showing
    the pages done; returns the files written and the first page's output size. Without `overwrite`, a
    taken name is refused before any page is written, so a run never leaves part of a set."""

    def on_page(done: int, total: int) -> None:
        progress.advance(done, total, "frames")

    pairs = upscaled_pages(upscale, pages, output, on_page)
    if output.tiff_pages != "separate":
        data, sizes = multipage_tiff(pairs, output)
        write_new_file(path, _writes(data), overwrite=overwrite)
        return [path], sizes[0][1]
    targets = page_paths(path, pages.count, fmt.suffix)
    taken = [target for target in targets if os.path.lexists(target)]
    if taken and not overwrite:
        raise UsageError(f"{taken[0]} exists (use --overwrite to replace it)")
    first: tuple[int, int] | None = None
    for target, (_, upscaled) in zip(targets, pairs, strict=True):
        write_new_file(target, _writes(encode_page(upscaled, fmt.name, output)), overwrite=overwrite)
        first = first or (upscaled.width, upscaled.height)
    assert first is not None
    return targets, first
