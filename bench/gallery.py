"""The model gallery in docs/gallery/: the same small crops upscaled by nearest, bicubic and every built-in
model, labelled, at 2x and 4x, plus the noise levels on a JPEG-damaged crop.

Run from the repository root (CPU-heavy: the RRDB models compile for about a minute each):
``python bench/gallery.py [--photo PATH] [--out docs/gallery] [--models ...]``.

Every image may be redistributed: the line art, text, gradient and noise crops are drawn here (with
Pillow's bundled font); the photo is scikit-image's ``chelsea.png`` (CC0, Stefan van der Walt, as its
``skimage.data.chelsea`` docstring says), found in an installed scikit-image or given with ``--photo``;
without either, the photo row is left out. The Set5/Set14 images are for measurement only and are not used.

Each source is drawn (or cropped) at 128x128, the "original", and shrunk to the 32x32 input every
column starts from (small, to keep docs/ small). 2x results are shown at 2x zoom (nearest), so both
grids' cells are 128 px.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from srd.runtime import configure_runtime

configure_runtime()  # XLA_FLAGS and malloc settings before JAX starts, as `srd upscale` has them

import srd  # noqa: E402  (after configure_runtime, which must precede JAX)
from srd.errors import ModelError  # noqa: E402

ORIGINAL = 128  # the source's side ("original")
INPUT = 32  # the side every column upscales from
CELL = 128  # a cell's side in the grids
CANVAS = 640  # line art and text are drawn this big, then antialiased down to ORIGINAL
LABEL = 16  # a line of the label strip above the columns
NOISE_MODELS = ("upconv7-art", "upconv7-photo", "cunet", "realcugan-se", "realcugan-pro")
README_MODELS = ("upconv7-art", "cunet", "realcugan-se", "realesrgan-x4plus-anime", "realesrgan-x4plus")


@dataclass(frozen=True)
class Source:
    """One gallery row: its name, the 128 px original and the 32 px input."""

    name: str
    original: Image.Image
    small: Image.Image


def _shrink(image: Image.Image) -> Image.Image:
    return image.resize((INPUT, INPUT), Image.Resampling.LANCZOS)


def line_art() -> Image.Image:
    """Anime-style line art: dark strokes and flat fills on white, drawn at 5x and antialiased."""
    im = Image.new("RGB", (CANVAS, CANVAS), "white")
    d = ImageDraw.Draw(im)
    d.ellipse((90, 70, 560, 560), fill=(250, 220, 200), outline=(40, 30, 30), width=14)
    d.ellipse((200, 230, 300, 350), fill=(60, 120, 200), outline=(30, 20, 20), width=10)
    d.ellipse((360, 230, 460, 350), fill=(60, 120, 200), outline=(30, 20, 20), width=10)
    d.ellipse((230, 260, 260, 295), fill="white")
    d.ellipse((390, 260, 420, 295), fill="white")
    d.arc((250, 380, 400, 470), 20, 160, fill=(150, 40, 40), width=10)
    for i in range(9):
        d.line((60 + 60 * i, 20, 20 + 70 * i, 160), fill=(90, 50, 30), width=12)
    return im.resize((ORIGINAL, ORIGINAL), Image.Resampling.LANCZOS)


def text() -> Image.Image:
    """Black text in two sizes on a pale background, drawn at 5x and antialiased."""
    im = Image.new("RGB", (CANVAS, CANVAS), (245, 242, 230))
    d = ImageDraw.Draw(im)
    d.text((30, 30), "srd 2x", font=ImageFont.load_default(size=150), fill=(20, 20, 20))
    d.text((30, 230), "waifu2x", font=ImageFont.load_default(size=110), fill=(180, 20, 20))
    d.text((30, 380), "Real-ESRGAN", font=ImageFont.load_default(size=80), fill=(20, 60, 160))
    d.text((30, 500), "abc 0123456789", font=ImageFont.load_default(size=60), fill=(20, 20, 20))
    return im.resize((ORIGINAL, ORIGINAL), Image.Resampling.LANCZOS)


def gradient_noise() -> Image.Image:
    """A smooth colour gradient, a disc and a bar, with Gaussian noise (sigma 8 levels)."""
    y, x = np.mgrid[0:ORIGINAL, 0:ORIGINAL].astype(np.float32) / (ORIGINAL - 1)
    rgb = np.stack([0.2 + 0.7 * x, 0.3 + 0.5 * y, 0.9 - 0.6 * x * y], axis=2)
    disc = (x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.06
    rgb[disc] = (0.95, 0.85, 0.2)
    rgb[(y > 0.75) & (y < 0.82)] = (0.1, 0.1, 0.15)
    noise = np.random.default_rng(18).normal(0.0, 8 / 255, rgb.shape)
    return Image.fromarray(np.uint8(np.clip(rgb + noise, 0, 1) * 255 + 0.5), "RGB")


def jpeg_damaged(image: Image.Image, quality: int = 25) -> Image.Image:
    """The image after a round trip through JPEG at a low quality (blocks and ringing)."""
    data = io.BytesIO()
    image.save(data, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(data.getvalue())).convert("RGB")


def default_photo() -> Path | None:
    """scikit-image's chelsea.png (CC0) where scikit-image is installed."""
    try:
        from importlib.resources import files

        path = Path(str(files("skimage.data").joinpath("chelsea.png")))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def sources(photo: Path | None) -> list[Source]:
    """The gallery's rows: line art, text, the photo, gradient + noise, and JPEG-damaged line art."""
    art = line_art()
    rows = [Source("line art", art, _shrink(art)), Source("text", text(), _shrink(text()))]
    if photo is not None:
        # The cat's eye and whiskers, Chelsea being 451x300.
        crop = Image.open(photo).convert("RGB").crop((150, 60, 310, 220)).resize((ORIGINAL, ORIGINAL))
        rows.append(Source("photo (CC0)", crop, _shrink(crop)))
    noisy = gradient_noise()
    rows.append(Source("gradient + noise", noisy, _shrink(noisy)))
    rows.append(Source("JPEG q25 line art", art, jpeg_damaged(_shrink(art))))
    return rows


def _cell(image: Image.Image | None, scale: int) -> Image.Image:
    """A result at CELL px (2x results zoomed by nearest), or a grey 'n/a' cell."""
    if image is None:
        cell = Image.new("RGB", (CELL, CELL), (200, 200, 200))
        ImageDraw.Draw(cell).text(
            (CELL // 2 - 12, CELL // 2 - 8), "n/a", fill=(90, 90, 90), font=ImageFont.load_default(size=16)
        )
        return cell
    return image.convert("RGB").resize((CELL, CELL), Image.Resampling.NEAREST) if scale < 4 else image


def _wrap(name: str, width: int = 18) -> str:
    """A column label on two lines where it would run into the next column."""
    if len(name) <= width or "-" not in name[:width]:
        return name
    cut = name.rindex("-", 0, width) + 1
    return f"{name[:cut]}\n{name[cut:]}"


def grid(columns: list[str], rows: list[str], cells: list[list[Image.Image]], title: str) -> Image.Image:
    """Cells under their column labels, each row named on its left, a title on top."""
    font = ImageFont.load_default(size=12)
    left, top = 118, 3 * LABEL + 2
    out = Image.new("RGB", (left + len(columns) * (CELL + 2), top + len(rows) * (CELL + 2)), "white")
    d = ImageDraw.Draw(out)
    d.text((4, 2), title, fill="black", font=ImageFont.load_default(size=14))
    for j, name in enumerate(columns):
        d.multiline_text((left + j * (CELL + 2) + 2, LABEL + 2), _wrap(name), fill="black", font=font)
    for i, name in enumerate(rows):
        d.text((4, top + i * (CELL + 2) + CELL // 2 - 6), name, fill="black", font=font)
        for j, cell in enumerate(cells[i]):
            out.paste(cell, (left + j * (CELL + 2), top + i * (CELL + 2)))
    return out


def upscale_all(
    name: str, noise: int, scale: int, images: list[Image.Image], cache: Path | None
) -> list[Image.Image | None]:
    """Each image upscaled by one model (None for all where it has no pass for this noise and scale)."""
    try:
        up = srd.Upscaler(name, noise=noise, scale=scale, tile=INPUT, compile_cache=cache)
    except ModelError as exc:
        print(f"  {name} noise {noise} {scale}x: {exc}", file=sys.stderr)
        return [None] * len(images)
    print(f"  {name} noise {noise} {scale}x", file=sys.stderr, flush=True)
    return [up.upscale(image) for image in images]


def model_grid(rows: list[Source], models: Sequence[str], scale: int, cache: Path | None) -> Image.Image:
    """One scale's grid: original, nearest, bicubic and each model (noise -1), one row per source."""
    smalls = [row.small for row in rows]
    side = INPUT * scale
    columns: list[list[Image.Image | None]] = [
        [row.original.resize((side, side), Image.Resampling.LANCZOS) for row in rows],
        [im.resize((side, side), Image.Resampling.NEAREST) for im in smalls],
        [im.resize((side, side), Image.Resampling.BICUBIC) for im in smalls],
    ]
    columns += [upscale_all(name, -1, scale, smalls, cache) for name in models]
    names = ["original", "nearest", "bicubic", *models]
    cells = [[_cell(column[i], scale) for column in columns] for i in range(len(rows))]
    title = f"{scale}x from {INPUT}x{INPUT} crops, noise -1" + (" (shown at 2x zoom)" if scale == 2 else "")
    return grid(names, [row.name for row in rows], cells, title)


def noise_grid(source: Source, cache: Path | None) -> Image.Image:
    """The JPEG-damaged crop at 2x through every noise level of the models that have them."""
    levels = (-1, 0, 1, 2, 3)
    cells = []
    for name in NOISE_MODELS:
        cells.append([_cell(upscale_all(name, n, 2, [source.small], cache)[0], 2) for n in levels])
    labels = [f"noise {n}" for n in levels]
    title = f"{source.name}, 2x (shown at 2x zoom): noise reduction levels"
    return grid(labels, list(NOISE_MODELS), cells, title)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/gallery"), help="folder for the PNG files")
    parser.add_argument("--photo", type=Path, default=default_photo(), help="chelsea.png from scikit-image")
    names = [m.name for m in srd.list_models()]
    parser.add_argument("--models", nargs="*", default=names, choices=names, help="the model columns")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path.home() / ".cache" / "srd" / "jax", help="compilation cache"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = sources(args.photo)
    for scale in (2, 4):
        picture = model_grid(rows, args.models, scale, args.cache_dir)
        picture.save(args.out / f"models-{scale}x.png", optimize=True)
        print(f"wrote {args.out / f'models-{scale}x.png'}", file=sys.stderr)
    noise_grid(rows[-1], args.cache_dir).save(args.out / "noise-levels.png", optimize=True)
    readme_models = [name for name in README_MODELS if name in args.models]
    readme = model_grid(rows[:1] + rows[-1:], readme_models, 4, args.cache_dir)
    readme.save(args.out / "readme.png", optimize=True)
    for path in sorted(args.out.glob("*.png")):
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
