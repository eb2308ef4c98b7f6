"""What `srd upscale` reads and the names it writes: its inputs (files, folders walked recursively, srd's
own earlier outputs left out), each output's name, and `--size`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from srd.errors import UsageError
from srd.imaging.formats import READ_SUFFIXES
from srd.imaging.raster import fit_inside

# What `output_name` produces: srd's own results beside their inputs are not inputs of the next run.
_OUTPUT_TAG = re.compile(r"^(?P<stem>.+)_x[124](?:_n[0-3])?$")


def collect_inputs(
    inputs: list[Path], outdir: Path | None = None, missing: list[Path] | None = None
) -> list[tuple[Path, Path]]:
    """(file, path relative to the named root) for each image file; folders are walked recursively.
    Inputs that do not exist are appended to `missing` (a UsageError when no list is given).

    Walking a folder skips hidden files, anything under `outdir`, and srd's own earlier outputs: a file
    named `STEM_x2.png` (or `_x4`, `_x2_n1`, any output format) beside an input named `STEM.*`.
    """
    found: list[tuple[Path, Path]] = []
    skip_under = outdir.resolve() if outdir is not None else None
    for item in inputs:
        if item.is_dir():
            files = [
                path
                for path in sorted(item.rglob("*"))
                if path.is_file() and path.suffix.lower() in READ_SUFFIXES and not path.name.startswith(".")
            ]
            stems = {(path.parent, path.stem) for path in files}
            for path in files:
                if skip_under is not None and skip_under in path.resolve().parents:
                    continue
                tag = _OUTPUT_TAG.match(path.stem)
                if tag is not None and (path.parent, tag["stem"]) in stems:
                    continue  # an output of an earlier `srd upscale` of the file beside it
                found.append((path, path.relative_to(item)))
        elif item.exists():
            found.append((item, Path(item.name)))
        elif missing is not None:
            missing.append(item)
        else:
            raise UsageError(f"no such file or folder: {item}")
    return found


def output_name(rel: Path, scale: int, noise: int, suffix: str, size: tuple[int, int] | None = None) -> Path:
    """NAME_x2.png, NAME_x4_n1.png, or NAME_1920x1080.png for an output of a requested size."""
    tag = f"_{size[0]}x{size[1]}" if size is not None else f"_x{scale}"
    return rel.with_name(f"{rel.stem}{tag}{f'_n{noise}' if noise >= 0 else ''}{suffix}")


@dataclass(frozen=True)
class TargetSize:
    """--size WxH: fit inside that box keeping the aspect ratio, or exactly that size with `WxH!`."""

    width: int
    height: int
    exact: bool

    def for_image(self, width: int, height: int) -> tuple[int, int]:
        """The output size for an input of width x height."""
        if self.exact:
            return self.width, self.height
        return fit_inside(width, height, self.width, self.height)


def parse_size(text: str | None) -> TargetSize | None:
    if text is None:
        return None
    exact = text.endswith("!")
    try:
        w, h = (int(v) for v in text.removesuffix("!").lower().split("x"))
    except ValueError as exc:
        raise UsageError(f"--size must look like 1920x1080 (or 1920x1080! to stretch), got {text!r}") from exc
    if w <= 0 or h <= 0:
        raise UsageError("--size must be positive")
    return TargetSize(w, h, exact)
