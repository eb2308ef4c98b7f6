"""The odd animations of tests/support/odd_animations.py as a corpus: each case is a file (written byte by
byte), the frames a browser shows of it (by the reference compositors), their durations in ms as srd
reads them, and how many times it plays. `odd_corpus()` gives every case; bench/animation_corpus.py
writes them to a folder (`--generate`)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from support.odd_animations import (
    COLOURS,
    GifFrame,
    Indices,
    PngFrame,
    Rgba,
    WebpFrame,
    apng,
    composite_apng,
    composite_gif,
    composite_webp,
    gif,
    netscape,
    webp,
)

W, H = 20, 16


@dataclass(frozen=True)
class Case:
    """One odd animation: its file name and bytes, the frames a viewer shows (RGBA, float 0..255), each
    frame's duration in ms as srd reads it, and its plays (0: forever)."""

    name: str
    data: bytes
    frames: list[npt.NDArray[np.float64]]
    durations: list[int]
    plays: int

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _blocks(small: npt.NDArray[np.generic], h: int, w: int) -> npt.NDArray[np.generic]:
    return np.ascontiguousarray(small.repeat(2, 0).repeat(2, 1)[:h, :w])


def _indices(seed: int, h: int, w: int, colours: int = 15) -> Indices:
    """Palette indices 0..colours-1 in 2x2 blocks (so that an upscaled frame downscales back to them);
    index 15 is left for transparency."""
    small = _rng(seed).integers(0, colours, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
    return _blocks(small, h, w).astype(np.uint8)


def _holes(indices: Indices, seed: int, transparent: int = 15) -> Indices:
    """The indices with about a third of their 2x2 blocks the transparent index."""
    pick = _rng(seed).random(((indices.shape[0] + 1) // 2, (indices.shape[1] + 1) // 2))
    out = indices.copy()
    out[_blocks(pick, *indices.shape) < 0.33] = transparent
    return out


def _rgba(seed: int, h: int, w: int, alpha: str = "opaque") -> Rgba:
    """Blocks of COLOURS with alpha "opaque", "binary" (a third clear) or "partial" (clear, half, opaque)."""
    colours = np.asarray(COLOURS, np.uint8)[_indices(seed, h, w)]
    pick = _blocks(_rng(seed + 1000).random(((h + 1) // 2, (w + 1) // 2)), h, w)
    plane = np.full((h, w), 255, np.uint8)
    if alpha != "opaque":
        plane[pick < 0.33] = 0
    if alpha == "partial":
        plane[(pick >= 0.33) & (pick < 0.66)] = 128
    return np.concatenate([colours, plane[..., None]], axis=2)


def _gif_plays(loop: int | None) -> int:
    return 1 if loop is None else (0 if loop == 0 else loop + 1)


def _gif(
    name: str,
    frames: list[GifFrame],
    *,
    screen: tuple[int, int] = (W, H),
    loop: int | None = 0,
    palette: list[tuple[int, int, int]] | None = COLOURS,
    **options: object,
) -> Case:
    data = gif(screen, frames, palette=palette, loop=loop, **options)  # type: ignore[arg-type]
    shown = [f.astype(np.float64) for f in composite_gif(screen, frames, palette)]
    return Case(name, data, shown, [10 * (f.delay or 0) for f in frames], _gif_plays(loop))


def gif_cases() -> list[Case]:
    """GIFs: delays, loops, every disposal, partial, tiny, empty and oversized frames, palettes."""
    full = [_indices(seed, H, W) for seed in range(6)]
    part = [_indices(10 + seed, 6, 8) for seed in range(4)]
    holed = [_holes(p, 20 + i) for i, p in enumerate(part)]
    moving = [(2 + 3 * i, 1 + 2 * i) for i in range(4)]
    empty = np.zeros((0, 0), np.uint8)
    three = [GifFrame(f, delay=20) for f in full[:3]]
    return [
        _gif("gif-zero-delays.gif", [GifFrame(f, delay=0) for f in full[:4]]),
        _gif("gif-1cs-delays.gif", [GifFrame(f, delay=1) for f in full[:4]]),
        _gif(
            "gif-mixed-delays.gif",
            [GifFrame(f, delay=d) for f, d in zip(full, [0, 1, 2, 5, 10, 0], strict=True)],
        ),
        _gif("gif-no-gce.gif", [GifFrame(f, delay=None) for f in full[:3]]),
        _gif("gif-87a.gif", [GifFrame(f, delay=None) for f in full[:3]], loop=None, version=b"GIF87a"),
        _gif("gif-loop-absent.gif", three, loop=None),
        _gif("gif-loop-once.gif", three, loop=1),
        _gif("gif-loop-3.gif", three, loop=3),
        _gif("gif-loop-animexts.gif", three, loop=2, loop_app=b"ANIMEXTS1.0"),
        _gif("gif-loop-twice-declared.gif", three, loop=4, prefix=netscape(7)),
        _gif("gif-loop-after-first-frame.gif", three, loop=0, loop_after_first=True),
        _gif("gif-single-frame.gif", [GifFrame(full[0], delay=50)]),
        _gif(
            "gif-duplicates.gif",
            [
                GifFrame(full[0], delay=10),
                GifFrame(full[0], delay=20),
                GifFrame(full[1], delay=30),
                GifFrame(np.full((1, 1), 15, np.uint8), x=3, y=3, delay=40, transparent=15),  # draws nothing
                GifFrame(full[1][2:6, 2:6], x=2, y=2, delay=50),  # draws what is there
            ],
        ),
        _gif(
            "gif-partial-offsets.gif",
            [GifFrame(full[0]), *(GifFrame(p, x=x, y=y) for p, (x, y) in zip(part, moving, strict=True))],
        ),
        _gif(
            "gif-dispose-background.gif",
            [
                GifFrame(full[0]),
                *(GifFrame(p, x=x, y=y, disposal=2) for p, (x, y) in zip(part, moving, strict=True)),
            ],
            background=4,
        ),
        _gif(
            "gif-dispose-background-transparent.gif",
            [
                GifFrame(full[0], disposal=2),
                *(
                    GifFrame(p, x=x, y=y, disposal=2, transparent=15)
                    for p, (x, y) in zip(holed, moving, strict=True)
                ),
            ],
        ),
        _gif(
            "gif-dispose-previous.gif",
            [
                GifFrame(full[0]),
                *(
                    GifFrame(p, x=x, y=y, disposal=3, transparent=15)
                    for p, (x, y) in zip(holed, moving, strict=True)
                ),
            ],
        ),
        _gif(
            "gif-dispose-previous-first.gif",
            [
                GifFrame(full[0][:8, :10], x=4, y=4, disposal=3),
                *(GifFrame(p, x=x, y=y) for p, (x, y) in zip(part, moving, strict=True)),
            ],
        ),
        _gif(
            "gif-disposal-unspecified-after-background.gif",
            [
                GifFrame(full[0]),
                GifFrame(part[0], x=2, y=2, disposal=2),
                *(GifFrame(p, x=4 + 3 * i, y=4 + i, disposal=0) for i, p in enumerate(part[1:])),
            ],
            background=4,
        ),
        _gif(
            "gif-undefined-disposals.gif",
            [
                GifFrame(full[0]),
                *(
                    GifFrame(p, x=x, y=y, disposal=4 + i, transparent=15)
                    for i, (p, (x, y)) in enumerate(zip(holed, moving, strict=True))
                ),
                GifFrame(part[0][:2, :2], x=0, y=0),
            ],
        ),
        _gif(
            "gif-first-frame-partial.gif",
            [GifFrame(part[0], x=5, y=4), *(GifFrame(p, x=1 + 4 * i, y=2) for i, p in enumerate(part[1:]))],
        ),
        _gif(
            "gif-past-screen.gif",
            [
                GifFrame(full[0]),
                GifFrame(_indices(30, 8, 10), x=15, y=12),  # 5x4 of it on the screen
                GifFrame(_indices(31, 6, 6), x=2, y=2),
                GifFrame(_indices(32, 4, 4), x=W + 2, y=3),  # wholly off the screen
            ],
        ),
        _gif(
            "gif-first-frame-larger.gif", [GifFrame(_indices(33, H + 4, W + 6)), GifFrame(part[0], x=2, y=2)]
        ),
        _gif("gif-zero-screen.gif", [GifFrame(f) for f in full[:3]], screen=(0, 0)),
        _gif(
            "gif-empty-frames.gif",
            [
                GifFrame(full[0]),
                GifFrame(empty, x=3, y=3, delay=20, size=(0, 0)),
                GifFrame(full[1], delay=30),
            ],
        ),
        _gif(
            "gif-1px-frames.gif",
            [
                GifFrame(full[0]),
                *(GifFrame(np.full((1, 1), 2 + i, np.uint8), x=3 * i, y=2 * i, delay=5) for i in range(6)),
            ],
        ),
        _gif(
            "gif-local-palettes.gif",
            [GifFrame(full[i], palette=[COLOURS[(i * 5 + k) % 16] for k in range(16)]) for i in range(4)],
            palette=None,
        ),
        _gif("gif-no-palette.gif", [GifFrame(f * 16) for f in full[:3]], palette=None),
        _gif(
            "gif-small-palette.gif",
            [GifFrame(_indices(40 + i, H, W, colours=4)) for i in range(3)],
            palette=COLOURS[:3],  # index 3 is past the table: black
        ),
        _gif(
            "gif-transparency-changes.gif",
            [
                GifFrame(full[0]),
                GifFrame(_holes(full[1], 41, 3), transparent=3),
                GifFrame(_holes(full[2], 42, 7), transparent=7, disposal=2),
                GifFrame(full[3]),
                GifFrame(_holes(full[4], 43, 9), transparent=9),
            ],
        ),
        _gif("gif-interlaced.gif", [GifFrame(f, interlace=True) for f in full[:3]]),
        _gif("gif-no-trailer.gif", [GifFrame(f) for f in full[:3]], trailer=False),
        _gif(
            "gif-many-small-frames.gif",
            [GifFrame(_indices(100 + i, 6, 6), x=(i * 3) % 14, y=(i * 5) % 10, delay=2) for i in range(40)],
        ),
    ]


def _apng_durations(frames: list[PngFrame]) -> list[int]:
    """Each frame lasting until the rounded sum of the delays so far (srd/imaging/apng.py)."""
    out, elapsed, shown = [], Fraction(0), 0
    for f in frames:
        elapsed += Fraction(f.delay[0], f.delay[1] or 100)
        out.append(round(elapsed * 1000) - shown)
        shown += out[-1]
    return out


def _apng(
    name: str,
    frames: list[PngFrame],
    *,
    plays: int = 0,
    default: Rgba | None = None,
    declared: int | None = None,
    iend: bool = True,
) -> Case:
    data = apng((W, H), frames, plays=plays, default=default, declared=declared)
    data = data if iend else data[:-12]  # the IEND chunk is 12 bytes
    played = frames[: len(frames) if declared is None else declared]
    return Case(name, data, composite_apng((W, H), played), _apng_durations(played), plays)


def apng_cases() -> list[Case]:
    """APNGs: dispose and blend ops, the default image outside the animation, num_plays, delays."""
    full = [_rgba(seed, H, W) for seed in range(5)]
    alpha = [_rgba(50 + seed, H, W, "partial") for seed in range(3)]
    part = [_rgba(60 + seed, 6, 8, "partial") for seed in range(4)]
    moving = [(2 + 3 * i, 1 + 2 * i) for i in range(4)]
    return [
        _apng(
            "apng-dispose-ops.png",
            [
                PngFrame(full[0]),
                *(
                    PngFrame(p, x=x, y=y, dispose=i % 3)
                    for i, (p, (x, y)) in enumerate(zip(part, moving, strict=True))
                ),
            ],
        ),
        _apng(
            "apng-blend-over.png",
            [
                PngFrame(alpha[0]),
                *(PngFrame(p, x=x, y=y, blend=1) for p, (x, y) in zip(part, moving, strict=True)),
            ],
        ),
        _apng(
            "apng-undefined-ops.png",
            [
                PngFrame(full[0]),
                PngFrame(part[0], x=3, y=3, dispose=3, blend=2),
                PngFrame(part[1], x=5, y=5, blend=1),
            ],
        ),
        _apng(
            "apng-dispose-previous-first.png",
            [
                PngFrame(full[0], dispose=2),
                PngFrame(part[0], x=3, y=3, dispose=2),
                PngFrame(part[1], x=5, y=5),
            ],
        ),
        _apng(
            "apng-dispose-background-first.png",
            [
                PngFrame(alpha[0], dispose=1),
                PngFrame(part[0], x=3, y=3, blend=1),
                PngFrame(part[1], x=5, y=5),
            ],
        ),
        _apng("apng-default-image-excluded.png", [PngFrame(f) for f in full[1:4]], default=full[0]),
        _apng("apng-default-image-and-one-frame.png", [PngFrame(full[1])], default=full[0]),
        _apng("apng-declared-fewer.png", [PngFrame(f) for f in full[:4]], declared=3),
        _apng("apng-no-iend.png", [PngFrame(f) for f in full[:3]], iend=False),
        _apng("apng-plays-1.png", [PngFrame(f) for f in full[:3]], plays=1),
        _apng("apng-plays-3.png", [PngFrame(f) for f in full[:3]], plays=3),
        _apng("apng-zero-delays.png", [PngFrame(f, delay=(0, 100)) for f in full[:3]]),
        _apng("apng-delay-den-0.png", [PngFrame(f, delay=(7, 0)) for f in full[:3]]),
        _apng("apng-delay-seconds.png", [PngFrame(f, delay=(1, 1)) for f in full[:3]]),
        _apng("apng-delay-thirtieths.png", [PngFrame(f, delay=(1, 30)) for f in full[:5]]),
        _apng("apng-30-fps.png", [PngFrame(_rgba(200 + i, H, W), delay=(1, 30)) for i in range(30)]),
        _apng("apng-long-delay.png", [PngFrame(full[0], delay=(70, 1)), PngFrame(full[1], delay=(1, 10))]),
        _apng("apng-1ms-delays.png", [PngFrame(f, delay=(1, 1000)) for f in full[:4]]),
        _apng("apng-single-frame.png", [PngFrame(full[0], delay=(50, 100))]),
        _apng(
            "apng-duplicates.png",
            [PngFrame(full[0]), PngFrame(full[0], delay=(20, 100)), PngFrame(full[1]), PngFrame(full[1])],
        ),
        _apng(
            "apng-1px-frames.png",
            [
                PngFrame(full[0]),
                *(PngFrame(_rgba(70 + i, 1, 1), x=3 * i, y=2 * i, delay=(5, 100)) for i in range(5)),
            ],
        ),
        _apng(
            "apng-transparent.png",
            [*(PngFrame(a, dispose=1) for a in alpha), PngFrame(part[0], x=4, y=4, blend=1)],
        ),
    ]


def _webp(name: str, frames: list[WebpFrame], *, loop: int = 0, bgcolor: int = 0) -> Case:
    data = webp((W, H), frames, loop=loop, bgcolor=bgcolor)
    return Case(name, data, composite_webp((W, H), frames), [f.duration for f in frames], loop)


def webp_cases() -> list[Case]:
    """Animated WebPs: blending or not, disposing or not, alpha, lossy frames, durations, loops."""
    full = [_rgba(seed, H, W) for seed in range(4)]
    alpha = [_rgba(80 + seed, H, W, "partial") for seed in range(3)]
    part = [_rgba(90 + seed, 6, 8, "partial") for seed in range(4)]
    return [
        _webp(
            "webp-blend-dispose.webp",
            [
                WebpFrame(alpha[0]),
                *(
                    WebpFrame(p, x=2 + 2 * i, y=2 * i, blend=i % 2 == 0, dispose=i // 2 == 1)
                    for i, p in enumerate(part)
                ),
            ],
        ),
        _webp(
            "webp-no-blend.webp",
            [WebpFrame(full[0]), *(WebpFrame(p, x=4, y=4, blend=False) for p in part[:2])],
        ),
        _webp("webp-zero-durations.webp", [WebpFrame(f, duration=0) for f in full[:3]]),
        _webp(
            "webp-short-durations.webp",
            [WebpFrame(f, duration=d) for f, d in zip(full, [1, 7, 33, 15], strict=True)],
        ),
        _webp("webp-33ms-frames.webp", [WebpFrame(_rgba(300 + i, H, W), duration=33) for i in range(30)]),
        _webp("webp-loop-2.webp", [WebpFrame(f) for f in full[:3]], loop=2),
        _webp(
            "webp-duplicates.webp", [WebpFrame(full[0]), WebpFrame(full[0], duration=50), WebpFrame(full[1])]
        ),
        _webp("webp-lossy-alpha.webp", [WebpFrame(a, lossy=True) for a in alpha]),
        _webp("webp-single-frame.webp", [WebpFrame(full[0], duration=70)]),
        _webp(
            "webp-bgcolor.webp",
            [
                WebpFrame(part[0], x=2, y=2),
                WebpFrame(part[1], x=6, y=6, dispose=True),
                WebpFrame(part[2], x=8, y=4),
            ],
            bgcolor=0xFF00FF00,
        ),
    ]


def odd_corpus() -> list[Case]:
    """Every odd animation: GIF, APNG and WebP."""
    return [*gif_cases(), *apng_cases(), *webp_cases()]
