"""Tests for srd.imaging.gif: frames of only the changed rectangle, disposals that clear what turns
transparent, and every frame decoding (by Pillow and by srd's own compositor) to what was added."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from srd.imaging.animation import Animation
from srd.imaging.decode import read_media
from srd.imaging.gif import GifWriter

W, H = 64, 48
PALETTE = np.random.default_rng(11).integers(0, 256, (16, 3), dtype=np.uint8)  # few colours: lossless


def background() -> np.ndarray:
    """A noisy opaque canvas of PALETTE's colours, with a transparent band on the left."""
    rgba = np.full((H, W, 4), 255, np.uint8)
    rgba[..., :3] = PALETTE[np.random.default_rng(3).integers(0, 16, (H, W))]
    rgba[:, :6, 3] = 0
    return rgba


def sprite_at(base: np.ndarray, x: int, y: int, colour: int = 7) -> np.ndarray:
    frame = base.copy()
    frame[y : y + 5, x : x + 5, :3] = PALETTE[colour]
    frame[y : y + 5, x : x + 5, 3] = 255
    return frame


def frames() -> list[np.ndarray]:
    """A mostly static animation: a sprite moving, a frame that repeats, a hole punched where the canvas
    was opaque far from the last change (the held frame's rectangle must grow to clear it), a pixel
    half transparent (GIF: transparent below 128), and a last frame opaque where the first is not."""
    base = background()
    out = [sprite_at(base, 10, 10), sprite_at(base, 12, 10), sprite_at(base, 12, 10)]
    holed = sprite_at(base, 14, 12)
    holed[40:44, 50:60, 3] = 0
    out.append(holed)
    soft = sprite_at(base, 16, 12)
    soft[20, 30, 3], soft[21, 30, 3] = 127, 128
    out.append(soft)
    last = sprite_at(base, 18, 14)
    last[:, :6] = (*PALETTE[9], 255)
    out.append(last)
    return out


def shown(rgba: np.ndarray) -> np.ndarray:
    """What a GIF can show of `rgba`: alpha 0 or 255, transparent pixels' colour irrelevant (zeroed)."""
    opaque = rgba[..., 3] >= 128
    out = np.zeros_like(rgba)
    out[opaque] = rgba[opaque]
    out[opaque, 3] = 255
    return out


def write(animation: list[np.ndarray], durations: list[int], plays: int = 0) -> bytes:
    out = io.BytesIO()
    writer = GifWriter(out, (W, H), plays)
    for rgba, duration in zip(animation, durations, strict=True):
        writer.add(rgba, duration)
    writer.close()
    return out.getvalue()


def test_every_frame_decodes_to_what_was_added(tmp_path: Path) -> None:
    """Pillow's reader and srd's own compositor both give back each frame exactly (binary alpha), with
    its duration, though all frames but the first are written as smaller rectangles."""
    animation, durations = frames(), [40, 50, 60, 70, 80, 90]
    data = write(animation, durations)
    extents = []
    with Image.open(io.BytesIO(data)) as im:
        assert im.n_frames == len(animation) and im.info["loop"] == 0
        for index, want in enumerate(animation):
            im.seek(index)
            extents.append(im.tile[0].extents if im.tile else None)
            got = np.asarray(im.convert("RGBA"))
            clean = np.where(got[..., 3:] == 0, 0, got)
            np.testing.assert_array_equal(clean, shown(want), err_msg=f"frame {index}")
            assert im.info["duration"] == durations[index]
    assert extents[0] == (0, 0, W, H)
    assert extents[1] == (10, 10, 17, 15)  # the sprite's old and new place
    assert extents[2] == (50, 40, 60, 44)  # draws nothing; the next frame's hole, cleared by its disposal
    path = tmp_path / "a.gif"
    path.write_bytes(data)
    media = read_media(path, max_pixels=10**6)
    assert isinstance(media, Animation)
    with media:
        for frame, want in zip(media, animation, strict=True):
            clean = np.where(frame.rgba[..., 3:] == 0, 0, frame.rgba)
            np.testing.assert_array_equal(clean, shown(want))


def test_a_looping_viewer_that_keeps_the_canvas_shows_the_first_frame_as_it_is() -> None:
    """The last frame clears what it shows opaque where the first frame is transparent (disposal 2), so
    drawing the first frame again over the kept canvas gives the first frame."""
    animation = frames()
    data = write(animation, [10] * len(animation))
    with Image.open(io.BytesIO(data)) as im:
        im.seek(len(animation) - 1)
        assert im.disposal_method == 2


def test_a_mostly_static_animation_is_much_smaller_than_its_frames() -> None:
    """Ten frames of a moving sprite over a noisy background take less than twice one frame's bytes (each
    frame the whole canvas would take ten times)."""
    base = background()
    animation = [sprite_at(base, 8 + 3 * i, 10 + i) for i in range(10)]
    one = len(write(animation[:1], [50], plays=1))
    assert len(write(animation, [50] * 10)) < 2 * one
    with Image.open(io.BytesIO(write([animation[0], animation[0]], [50, 50]))) as im:
        im.seek(1)
        assert im.tile[0].extents == (0, 0, 1, 1)  # a repeated frame draws nothing
