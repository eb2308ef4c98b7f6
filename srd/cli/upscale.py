"""`srd upscale`: upscale a few files or folders once, never overwriting unless asked."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from pydantic import ValidationError

from srd.cli.output_files import write_new_file
from srd.cli.progress import Progress
from srd.cli.upscale_inputs import TargetSize, collect_inputs, output_name, parse_size
from srd.cli.upscale_pages import write_pages
from srd.engine.engine import (
    Engine,
    default_cache_dir,
    enable_compilation_cache,
    scale_for_target,
)
from srd.errors import ExitCode, SrdError, Terminated, UsageError
from srd.imaging.animation import Animation, write_animation
from srd.imaging.decode import Pages, read_media
from srd.imaging.encode import encode_image, quantize
from srd.imaging.formats import ImageFormat, is_video, resolve_output
from srd.imaging.png import PngStreamWriter
from srd.imaging.raster import RasterImage
from srd.jobs.frames import wants_pages, with_scaled_metadata
from srd.models.registry import native_scale
from srd.runtime import release_free_memory
from srd.settings import EngineSettings, ModelSettings, OutputSettings, problem_message

DEFAULT_MAX_PIXELS = 200_000_000


def _png_streamer(engine: Engine, image: RasterImage, progress: Progress) -> Callable[[BinaryIO], None]:
    """Write the upscaled image band by band: the float output never exists whole in memory."""

    def write(handle: BinaryIO) -> None:
        release_free_memory()  # the decoder's buffers, freed by now
        s = engine.model.scale
        bits = image.bits
        writer = PngStreamWriter(handle, image.width * s, image.height * s, 3, bits, image.icc_profile)
        maxv, dtype = (65535, np.uint16) if bits == 16 else (255, np.uint8)
        for band in engine.upscale_bands(image, progress.advance):
            writer.write_rows(quantize(band, maxv, dtype))
            del band
            release_free_memory()
        writer.close()

    return write


_OPTIONS = {"name": "--model", "noise": "--noise", "scale": "--scale", "tta": "--tta", "tile": "--tile"}
_OPTIONS |= {"batch": "--batch", "device": "--device", "conv": "--conv", "alpha": "--alpha"}
_OPTIONS |= {"syncgap": "--syncgap", "precision": "--precision"}


def settings_from_options(args: argparse.Namespace) -> tuple[ModelSettings, EngineSettings]:
    """The schema's ModelSettings and EngineSettings from `srd upscale`'s options, by the schema's rules."""
    scale = args.scale if args.scale is not None else native_scale(args.model, args.noise)
    model_values = {"name": args.model, "noise": args.noise, "scale": scale, "tta": args.tta}
    model_values |= {"alpha": args.alpha, "syncgap": args.syncgap}
    engine_values = {
        "tile": args.tile,
        "batch": args.batch,
        "device": args.device,
        "conv": args.conv,
        "precision": args.precision,
    }
    problems: list[str] = []
    sections: list[ModelSettings | EngineSettings] = []
    for section, values in ((ModelSettings, model_values), (EngineSettings, engine_values)):
        try:
            sections.append(section.model_validate(values))
        except ValidationError as exc:
            for error in exc.errors():
                option = _OPTIONS.get(str(error["loc"][0]), str(error["loc"][0]))
                problems.append(f"{option}: {problem_message(error)}")
    if problems:
        raise UsageError("; ".join(problems))
    model, settings = sections
    assert isinstance(model, ModelSettings) and isinstance(settings, EngineSettings)
    return model, settings


def _check_outdir(outdir: Path | None) -> None:
    if outdir is not None and outdir.exists() and not outdir.is_dir():
        raise UsageError(f"-o/--outdir: {outdir} exists and is not a folder")


def _output_settings(args: argparse.Namespace) -> OutputSettings:
    try:
        return OutputSettings(
            format=args.format,
            animation=args.animation,
            quality=args.quality,
            background=args.background,
            tiff_pages=args.tiff_pages,
        )
    except ValidationError as exc:
        problems = [f"--{error['loc'][0]}: {problem_message(error)}" for error in exc.errors()]
        raise UsageError("; ".join(problems)) from None


def _failure_line(path: Path, exc: Exception) -> str:
    """One line per failed input, naming it once (decoder messages start with the path already)."""
    message = str(exc)
    return f"srd: {message}" if message.startswith(str(path)) else f"srd: {path}: {message}"


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM's handler: unwind like Ctrl-C (the output in hand is removed by write_new_file's cleanup)."""
    raise Terminated


def upscale_command(args: argparse.Namespace) -> int:
    """Run `srd upscale`; returns 0, or 1 when any input failed (each failure is printed)."""
    if args.cache_dir != "none":
        enable_compilation_cache(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    target = parse_size(args.size)
    if target is not None and args.scale is not None:
        raise UsageError(
            f"-s {args.scale} and --size {args.size}: --size picks each image's scale (the smallest that"
            " covers it, then a Lanczos downscale); leave out -s"
        )
    _check_outdir(args.outdir)
    output = _output_settings(args)
    missing: list[Path] = []
    items = collect_inputs(args.inputs, args.outdir, missing)
    if not items and not missing:
        raise UsageError("no image files found in the given inputs")
    model, settings = settings_from_options(args)
    # A bad model or setting is the command's error, not a per-file one: fail before touching any file.
    engines: dict[int, Engine] = {} if target is not None else {model.scale: Engine(model, settings)}
    live = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    progress = Progress(len(items) + len(missing), live=live)
    for item in missing:
        progress.failed_with(f"srd: {item}: no such file or folder")
    run = _Run(args, target, model, settings, output, engines, progress)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for path, rel in items:
            try:
                progress.start(path)
                written_to, written = run.one(path, rel)
            except _OutputExistsError as skipped:
                progress.skipped(path, skipped.output)
                continue
            except (SrdError, OSError) as exc:
                progress.failed_with(_failure_line(path, exc))
                continue
            progress.finished(path, written_to, written)
    except KeyboardInterrupt:
        progress.interrupted("Ctrl-C (SIGINT)")
        raise
    except Terminated:
        progress.interrupted("SIGTERM")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    progress.summary()
    return ExitCode.FAILURES if progress.failed else ExitCode.OK


class _OutputExistsError(Exception):
    """An input whose output exists, left alone under --skip-existing."""

    def __init__(self, output: Path) -> None:
        super().__init__(str(output))
        self.output = output


@dataclass
class _Run:
    """One `srd upscale` run: its options, its engines (one per scale --size needs) and its progress."""

    args: argparse.Namespace
    target: TargetSize | None
    model: ModelSettings
    settings: EngineSettings
    output: OutputSettings
    engines: dict[int, Engine]
    progress: Progress
    flattened: bool = False  # the note on formats without alpha is said once per run

    def one(self, path: Path, rel: Path) -> tuple[Path, tuple[int, int]]:
        """Upscale one input and write its output; returns the output's path and size."""
        args, model, output, progress = self.args, self.model, self.output, self.progress
        if is_video(path.name):
            return self.video(path, rel)
        image = read_media(path, max_pixels=DEFAULT_MAX_PIXELS, pages=wants_pages(output))
        progress.sized(image.width, image.height)
        scale: int = model.scale
        size = self.target.for_image(image.width, image.height) if self.target is not None else None
        if size is not None:
            scale = scale_for_target(image.width, image.height, size)
            if scale == 1 and model.noise < 0:
                raise UsageError(
                    f"{image.width}x{image.height} already covers --size {args.size}: nothing to"
                    " upscale (srd does not only downscale; -n 0..3 denoises at 1x)"
                )
        if scale not in self.engines:
            self.engines[scale] = Engine(model.model_copy(update={"scale": scale}), self.settings)
        engine = self.engines[scale]
        out_dir = args.outdir if args.outdir is not None else path.parent
        animated = isinstance(image, Animation)
        source = "TIFF" if isinstance(image, Pages) else image.source_format
        fmt = resolve_output(output.animation if animated else output.format, source)
        out_rel = output_name(
            rel if args.outdir is not None else Path(rel.name), scale, model.noise, fmt.suffix, size
        )
        destination = out_dir / out_rel
        if not args.overwrite and destination.exists():
            if isinstance(image, Pages | Animation):
                image.close()
            if args.skip_existing:
                raise _OutputExistsError(destination)
            raise UsageError(f"{destination} exists (use --overwrite to replace it, or --skip-existing)")
        if isinstance(image, Pages | Animation):
            with image:
                return _write_frames(
                    engine, image, self.target, fmt, output, out_dir / out_rel, args.overwrite, progress
                )
        if image.alpha is not None and not fmt.alpha and not self.flattened:
            self.flattened = True
            progress.note(
                f"srd: note: {fmt.description} has no alpha; transparent areas are composited onto"
                f" {output.background} (--background)"
            )
        writer, written = _writer(engine, image, size, fmt.name, output, progress)
        write_new_file(out_dir / out_rel, writer, overwrite=args.overwrite)
        return out_dir / out_rel, written

    def video(self, path: Path, rel: Path) -> tuple[Path, tuple[int, int]]:
        """Upscale one video file (srd/cli/upscale_video.py) at the model's scale."""
        from srd.cli.upscale_video import video_suffix, write_video  # PyAV loads for videos only

        args, model = self.args, self.model
        if self.target is not None:
            raise UsageError("--size is for images; a video is upscaled at -s (the model's scale)")
        suffix, size = video_suffix(path, DEFAULT_MAX_PIXELS, self.output.video)
        self.progress.sized(*size)
        name = output_name(
            rel if args.outdir is not None else Path(rel.name), model.scale, model.noise, suffix
        )
        destination = (args.outdir if args.outdir is not None else path.parent) / name
        if not args.overwrite and destination.exists():
            if args.skip_existing:
                raise _OutputExistsError(destination)
            raise UsageError(f"{destination} exists (use --overwrite to replace it, or --skip-existing)")
        engine = self.engines[model.scale]
        written = write_video(
            engine,
            path,
            destination,
            self.output.video,
            max_pixels=DEFAULT_MAX_PIXELS,
            overwrite=args.overwrite,
            progress=self.progress,
        )
        return destination, written


def _write_frames(
    engine: Engine,
    media: Pages | Animation,
    target: TargetSize | None,
    fmt: ImageFormat,
    output: OutputSettings,
    path: Path,
    overwrite: bool,
    progress: Progress,
) -> tuple[Path, tuple[int, int]]:
    """An animation or a multi-page TIFF, frame by frame or page by page; returns the (first) output's path
    and size."""
    if isinstance(media, Pages):
        outputs, written = write_pages(
            _page_upscaler(engine, target), media, fmt, output, path, overwrite=overwrite, progress=progress
        )
        return outputs[0], written
    size = target.for_image(media.width, media.height) if target is not None else None
    return path, _write_animation(engine, media, size, fmt.name, output, path, overwrite, progress)


def _page_upscaler(engine: Engine, target: TargetSize | None) -> Callable[[RasterImage], RasterImage]:
    """Upscale one page of a multi-page TIFF (to --size fitted to that page, when given)."""

    def upscale(page: RasterImage) -> RasterImage:
        size = target.for_image(page.width, page.height) if target is not None else None
        return engine.upscale(page, size)

    return upscale


def _writer(
    engine: Engine,
    image: RasterImage,
    target: tuple[int, int] | None,
    fmt: str,
    output: OutputSettings,
    progress: Progress,
) -> tuple[Callable[[BinaryIO], None], tuple[int, int]]:
    """How to write this image's output: streamed PNG where possible, otherwise encoded whole."""
    if fmt == "png" and engine.can_stream(image, target):
        s = engine.model.scale
        return _png_streamer(engine, image, progress), (image.width * s, image.height * s)
    upscaled = with_scaled_metadata(image, engine.upscale(image, target, progress.advance))
    data = encode_image(
        upscaled,
        fmt,
        quality=output.quality,
        background=output.background_rgb,
        lossless=output.webp_lossless,
    )

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    return write, (upscaled.width, upscaled.height)


def _write_animation(
    engine: Engine,
    animation: Animation,
    target: tuple[int, int] | None,
    fmt: str,
    output: OutputSettings,
    path: Path,
    overwrite: bool,
    progress: Progress,
) -> tuple[int, int]:
    """Upscale an animation frame by frame into `path`, showing the frames done; returns the output size."""
    size = (0, 0)

    def write(handle: BinaryIO) -> None:
        nonlocal size
        result = write_animation(
            animation,
            lambda frame: engine.upscale(frame, target),
            handle,
            fmt,
            quality=output.quality,
            lossless=output.webp_lossless,
            on_frame=lambda done, total: progress.advance(done, total, "frames"),
        )
        size = result.size

    write_new_file(path, write, overwrite=overwrite)
    return size
