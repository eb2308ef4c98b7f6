"""`srd upscale` end to end: real files in, real files out, no overwrites, failures reported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.daemon import SRD_COMMAND

from srd.cli.main import main
from srd.imaging.raster import RasterImage


def _png(path: Path, size: tuple[int, int] = (20, 14), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
    Image.fromarray(data if len(mode) > 1 else data[:, :, 0], mode).save(path)
    return path


def test_upscale_folder_recursively(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder is walked recursively; outputs mirror it in -o at twice the size."""
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "sub" / "b.png", (9, 5), "RGBA")
    rc = main(
        ["upscale", "--cache-dir", "none", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--tile", "32"]
    )
    assert rc == 0
    with (
        Image.open(tmp_path / "out" / "a_x2.png") as a,
        Image.open(tmp_path / "out" / "sub" / "b_x2.png") as b,
    ):
        assert (a.size, a.mode) == ((40, 28), "RGB")
        assert (b.size, b.mode) == ((18, 10), "RGBA")
    assert "[2/2]" in capsys.readouterr().err


def test_never_overwrites_without_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing output is left alone and the run fails, unless --overwrite is given."""
    src = _png(tmp_path / "a.png")
    out = tmp_path / "a_x2.png"
    out.write_bytes(b"precious")
    assert main(["upscale", "--cache-dir", "none", str(src), "--tile", "32"]) == 1
    assert out.read_bytes() == b"precious"
    assert "exists" in capsys.readouterr().err
    assert main(["upscale", "--cache-dir", "none", str(src), "--tile", "32", "--overwrite"]) == 0
    with Image.open(out) as im:
        assert im.size == (40, 28)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_bad_input_fails_with_reason_and_others_still_run(tmp_path: Path) -> None:
    """A text file named .png fails with a reason and exit 1; the good file is still upscaled."""
    (tmp_path / "bad.png").write_text("this is not an image")
    _png(tmp_path / "good.png")
    proc = subprocess.run(
        [
            *SRD_COMMAND,
            "upscale",
            str(tmp_path / "bad.png"),
            str(tmp_path / "good.png"),
            "-o",
            str(tmp_path / "out"),
            "--tile",
            "32",
            "-f",
            "webp",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "bad.png: text, not an image" in proc.stderr and "1 of 2 done, 1 failed" in proc.stderr
    assert (tmp_path / "out" / "good_x2.webp").is_file()
    assert not (tmp_path / "out" / "bad_x2.webp").exists()


def test_size_option_gives_exact_size(tmp_path: Path) -> None:
    """--size WxH! produces exactly that size, named after it."""
    src = _png(tmp_path / "a.png")
    assert (
        main(
            [
                "upscale",
                "--cache-dir",
                "none",
                str(src),
                "--size",
                "50x30!",
                "--tile",
                "32",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    with Image.open(tmp_path / "a_50x30.png") as im:
        assert im.size == (50, 30)


def test_size_option_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    """--size WxH fits the output inside the box with the input's aspect ratio (20x14 in 50x30: 43x30)."""
    src = _png(tmp_path / "a.png")
    assert main(["upscale", "--cache-dir", "none", str(src), "--size", "50x30", "--tile", "32"]) == 0
    with Image.open(tmp_path / "a_43x30.png") as im:
        assert im.size == (43, 30)


def test_usage_errors_have_exit_codes(tmp_path: Path) -> None:
    """A missing input is a failed input (1, as the README says) and an unknown model a model error."""
    assert main(["upscale", "--cache-dir", "none", str(tmp_path / "missing.png")]) == 1
    src = _png(tmp_path / "a.png")
    assert main(["upscale", "--cache-dir", "none", str(src), "-m", "nonexistent-model"]) == 65


def test_models_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    """`srd models` lists every built-in with its levels."""
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("cunet", "upconv7-art", "upconv7-photo"):
        assert name in out


def test_streamed_png_equals_whole_image_path(tmp_path: Path) -> None:
    """The band-by-band PNG path writes exactly the pixels of the whole-image path (8 and 16 bits)."""
    from srd.cli.progress import Progress
    from srd.cli.upscale import _png_streamer
    from srd.engine.engine import Engine
    from srd.imaging.decode import read_image
    from srd.imaging.encode import encode_image
    from srd.settings import EngineSettings, ModelSettings

    rng = np.random.default_rng(5)
    for bits, dtype in ((8, np.uint8), (16, np.uint16)):
        data = rng.integers(0, 2**bits, (70, 45, 3), dtype=dtype)
        path = tmp_path / f"s{bits}.png"
        path.write_bytes(encode_image(_raster(data, bits), "png"))
        image = read_image(path, max_pixels=10**6)
        engine = Engine(ModelSettings(name="upconv7-art"), EngineSettings(tile=32))
        assert engine.can_stream(image)
        streamed = tmp_path / f"streamed{bits}.png"
        with streamed.open("wb") as handle:
            _png_streamer(engine, image, Progress(1, live=False))(handle)
        whole = tmp_path / f"whole{bits}.png"
        whole.write_bytes(encode_image(engine.upscale(image), "png"))
        a, b = read_image(streamed, max_pixels=10**6), read_image(whole, max_pixels=10**6)
        assert a.bits == b.bits == bits
        np.testing.assert_array_equal(a.pixels, b.pixels)


def _raster(data: np.ndarray, bits: int) -> RasterImage:
    return RasterImage(data.astype(np.float32) / (2**bits - 1), bits=bits)


def test_compilation_cache_is_private_and_reused(tmp_path: Path) -> None:
    """`srd upscale` keeps compiled programs in a private cache folder that a second run reuses."""
    src = _png(tmp_path / "a.png")
    cache = tmp_path / "cache"
    command = [*SRD_COMMAND, "upscale", str(src), "--tile", "32", "--cache-dir", str(cache)]
    subprocess.run([*command, "-o", str(tmp_path / "one")], check=True, capture_output=True)
    entries = sorted(p.name for p in cache.iterdir())
    assert entries and (cache.stat().st_mode & 0o777) == 0o700
    subprocess.run([*command, "-o", str(tmp_path / "two")], check=True, capture_output=True)
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing new compiled
    assert (tmp_path / "two" / "a_x2.png").read_bytes() == (tmp_path / "one" / "a_x2.png").read_bytes()


def test_an_animation_is_upscaled_with_frame_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`srd upscale anim.gif` writes anim_x2.gif with every frame and its durations, counting frames on the
    live line; `-f same` keeps a still TIFF a TIFF."""
    frames = [Image.new("RGBA", (20, 16), (50 * i, 100, 30, 255)) for i in range(4)]
    source = tmp_path / "anim.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=[50, 60, 70, 80], loop=0)
    Image.new("RGB", (20, 16), (9, 99, 199)).save(tmp_path / "still.tif")
    argv = ["upscale", "--cache-dir", "none", "--tile", "32", "--progress", "always", "-f", "same"]
    assert main([*argv, str(source), str(tmp_path / "still.tif")]) == 0
    assert "(4/4 frames)" in capsys.readouterr().err
    with Image.open(tmp_path / "anim_x2.gif") as out:
        assert out.size == (40, 32) and out.n_frames == 4 and out.info["loop"] == 0
        durations = []
        for index in range(4):
            out.seek(index)
            durations.append(out.info["duration"])
        assert durations == [50, 60, 70, 80]
    with Image.open(tmp_path / "still_x2.tif") as out:
        assert out.format == "TIFF" and out.size == (40, 32)


def test_tiff_pages_separate_writes_each_page_and_refuses_a_taken_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--tiff-pages separate: a 3-page TIFF gives NAME_x2.p001.png..p003.png at twice each page's size;
    when one of those names is taken, no page is written and the run fails."""
    rng = np.random.default_rng(2)
    sizes = [(20, 14), (9, 5), (12, 12)]
    pages = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    source = tmp_path / "doc.tif"
    pages[0].save(source, save_all=True, append_images=pages[1:])
    command = ["upscale", "--cache-dir", "none", str(source), "--tile", "32", "--tiff-pages", "separate"]
    assert main(command) == 0
    for number, (w, h) in enumerate(sizes, 1):
        with Image.open(tmp_path / f"doc_x2.p{number:03d}.png") as page:
            assert page.size == (w * 2, h * 2)
    (tmp_path / "doc_x2.p001.png").unlink()
    (tmp_path / "doc_x2.p003.png").write_bytes(b"precious")
    assert main(command) == 1
    assert "doc_x2.p002.png exists" in capsys.readouterr().err
    assert not (tmp_path / "doc_x2.p001.png").exists()
    assert (tmp_path / "doc_x2.p003.png").read_bytes() == b"precious"


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "name"), [(15, 143, "SIGTERM"), (2, 130, "SIGINT")])
def test_a_signal_mid_file_removes_the_partial_output_and_says_so(
    tmp_path: Path, sig: int, code: int, name: str
) -> None:
    """SIGTERM or Ctrl-C while a streamed PNG is being written: no .part file is left, the exit status is
    128 + the signal, and the last line says which file was unfinished and how many were not written."""
    import threading
    import time

    for n in range(2):
        _png(tmp_path / "in" / f"big{n}.png", (600, 600))
    out = tmp_path / "out"
    options = ["--cache-dir", "none", "--progress", "always", "--tile", "64", "-m", "cunet"]
    process = subprocess.Popen(
        [*SRD_COMMAND, "upscale", *options, str(tmp_path / "in"), "-o", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: process.stderr.read(1), "")))  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 300
    while not any(out.glob(".*.part")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # polls a condition (the .part file appearing) under a deadline, not a blind wait
    assert any(out.glob(".*.part")), "the streamed output never started"
    process.send_signal(sig)
    assert process.wait(timeout=120) == code
    reader.join(timeout=30)
    process.stderr.close()
    text = "".join(seen)
    assert list(out.iterdir()) == []
    assert "stopped by " in text and name in text and "big0.png" in text and "0 of 2 done" in text
    assert "2 not written" in text
