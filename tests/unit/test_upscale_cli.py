"""`srd upscale`'s rough edges a first-day user met: modes, reruns, -o, late option checks, error lines."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srd.cli import main

ARGS = ["upscale", "--cache-dir", "none", "--tile", "32"]


def _png(path: Path, size: tuple[int, int] = (12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(data, "RGB").save(path)
    return path


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that changes it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    """An output's mode is 0666 less the umask, like any file a command creates (not mkstemp's 0600)."""
    src = _png(tmp_path / "a.png")
    os.umask(mask)
    assert main([*ARGS, str(src)]) == 0
    assert stat.S_IMODE((tmp_path / "a_x2.png").stat().st_mode) == mode


def test_a_rerun_does_not_take_its_own_outputs_as_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Upscaling a folder twice makes bird_x2.png once; the second run skips it (and the first output)."""
    _png(tmp_path / "in" / "bird.png")
    assert main([*ARGS, str(tmp_path / "in")]) == 0
    assert main([*ARGS, str(tmp_path / "in"), "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["bird.png", "bird_x2.png"]
    err = capsys.readouterr().err
    assert "bird_x2.png ->" not in err


def test_a_file_named_like_an_output_without_its_source_is_an_input(tmp_path: Path) -> None:
    """`photo_x2.png` with no `photo.*` beside it is somebody's image, and is upscaled."""
    _png(tmp_path / "in" / "photo_x2.png")
    assert main([*ARGS, str(tmp_path / "in")]) == 0
    assert (tmp_path / "in" / "photo_x2_x2.png").exists()


def test_outdir_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-o naming an existing file exits 64 with a message, no traceback, before any work."""
    src = _png(tmp_path / "a.png")
    target = tmp_path / "taken"
    target.write_text("a file")
    assert main([*ARGS, str(src), "-o", str(target)]) == 64
    err = capsys.readouterr().err
    assert "exists and is not a folder" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "fragment"),
    [(["-q", "500"], "--quality"), (["-f", "jpg", "-q", "0"], "--quality"), (["--tile", "5"], "--tile")],
)
def test_option_values_are_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], fragment: str
) -> None:
    """Out-of-range values exit 64 naming the option, whatever the output format, with no output written."""
    src = _png(tmp_path / "a.png")
    assert main(["upscale", "--cache-dir", "none", str(src), *options]) == 64
    assert fragment in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize(
    "argv",
    [
        ["upscale", "x.png", "-s", "5"],
        ["upscale", "x.png", "-n", "5"],
        ["upscale", "x.png", "-f", "psd"],
        ["run", "--bogus"],
        ["status", "extra"],
        ["nope"],
    ],
)
def test_argparse_mistakes_exit_64(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command-line mistake argparse catches is EX_USAGE (64), as documented, not argparse's 2."""
    assert main(argv) == 64
    assert "usage:" in capsys.readouterr().err


def test_a_failure_names_the_file_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad input's line names it once: `srd: PATH: reason`, not `srd: PATH: PATH: reason`."""
    bad = tmp_path / "x.png"
    bad.write_text("text")
    assert main([*ARGS, str(bad)]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if str(bad) in line]
    assert lines and all(line.count(str(bad)) == 1 for line in lines), lines


def test_each_finished_file_keeps_its_line_and_a_summary_follows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a live status line, every finished file still gets a line of its own, then a summary."""
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "b.png")
    assert main([*ARGS, str(tmp_path / "in"), "--progress", "always"]) == 0
    lines = capsys.readouterr().err.replace("\r\033[K", "\n").splitlines()
    finished = [line for line in lines if " -> " in line]
    assert [line.split("] ")[0] for line in finished] == ["[1/2", "[2/2"]
    assert any("upscaling" in line for line in lines)  # the live line while a file is in hand
    assert lines[-1].startswith("srd: 2 of 2 done in ") and "Mpx/s" in lines[-1]


def test_a_missing_input_is_reported_and_the_others_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One missing path fails with the rest reported (exit 1); the existing input is upscaled."""
    src = _png(tmp_path / "a.png")
    assert main([*ARGS, str(tmp_path / "nope.png"), str(src)]) == 1
    err = capsys.readouterr().err
    assert "nope.png: no such file or folder" in err and "1 of 2 done, 1 failed" in err
    assert (tmp_path / "a_x2.png").exists()


@pytest.mark.parametrize("fmt", ["png", "webp"])  # PNG streams band by band; WebP is encoded whole
def test_the_live_line_shows_tile_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """The live line counts the network tiles of the file in hand up to the total, with the time left."""
    src = _png(tmp_path / "tall.png", (20, 100))
    assert main([*ARGS, str(src), "-f", fmt, "--progress", "always"]) == 0
    lines = capsys.readouterr().err.replace("\r\033[K", "\n").splitlines()
    counts = [line.split("% (")[1].split(" tiles)")[0] for line in lines if " tiles), about " in line]
    assert counts and counts[-1].split("/")[0] == counts[-1].split("/")[1], counts
    assert len(counts) > 1


@pytest.mark.parametrize("command", ["upscale", "run", "check-config", "status", "models"])
def test_every_command_has_help_a_person_can_use(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`srd CMD --help` exits 0 with a description and the exit codes."""
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes: 0 ok" in out and len(out.splitlines()) > 6


@pytest.mark.parametrize(
    ("model", "scale", "size"), [("realcugan-se", 3, (36, 30)), ("realesr-animevideov3", 2, (24, 20))]
)
def test_new_families_upscale_from_the_command_line(
    tmp_path: Path, model: str, scale: int, size: tuple[int, int]
) -> None:
    """`srd upscale -m realcugan-se -s 3` (and the compact Real-ESRGAN at 2x) write the scaled image."""
    src = _png(tmp_path / "a.png")
    assert (
        main(["upscale", "--cache-dir", "none", str(src), "-m", model, "-s", str(scale), "--syncgap", "0"])
        == 0
    )
    with Image.open(tmp_path / f"a_x{scale}.png") as im:
        assert im.size == size


def test_only_missing_inputs_exit_1_like_any_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`srd upscale missing.png` is a failed input (exit 1, its line), not a usage error (64)."""
    assert main([*ARGS, str(tmp_path / "missing.png")]) == 1
    err = capsys.readouterr().err
    assert "missing.png: no such file or folder" in err and "0 of 1 done, 1 failed" in err
    (tmp_path / "empty").mkdir()
    assert main([*ARGS, str(tmp_path / "empty")]) == 64  # a folder without images is the usage mistake


def test_size_that_only_downscales_is_a_clear_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--size smaller than the image (no noise reduction) says there is nothing to upscale."""
    src = _png(tmp_path / "a.png", (40, 40))
    assert main([*ARGS, str(src), "--size", "30x30"]) == 1
    assert "40x40 already covers --size 30x30: nothing to upscale" in capsys.readouterr().err
    assert not (tmp_path / "a_30x30.png").exists()


def test_scale_beside_size_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-s with --size is a usage error rather than a scale silently ignored."""
    src = _png(tmp_path / "a.png")
    assert main([*ARGS, str(src), "--size", "48x40", "-s", "2"]) == 64
    assert "leave out -s" in capsys.readouterr().err


def test_an_x4_only_model_defaults_to_4x(tmp_path: Path) -> None:
    """Without -s, an x4-only model runs at its own scale and names the file _x4."""
    src = _png(tmp_path / "a.png", (8, 8))
    assert main([*ARGS, str(src), "-m", "realesr-animevideov3"]) == 0  # has 2x: stays 2x
    assert (tmp_path / "a_x2.png").exists()
    assert main([*ARGS, str(src), "-m", "realesrgan-x4plus-anime"]) == 0
    with Image.open(tmp_path / "a_x4.png") as im:
        assert im.size == (32, 32)


def test_validation_messages_name_the_value_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --background says what is expected and the value given once, without pydantic's prefix."""
    src = _png(tmp_path / "a.png")
    assert main([*ARGS, str(src), "--background", "#zzz"]) == 64
    err = capsys.readouterr().err
    assert "--background: expected a colour like #ffffff, got '#zzz'" in err
    assert err.count("#zzz") == 1 and "Value error" not in err


def test_skip_existing_reruns_only_what_is_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rerun of a folder fails each existing output before upscaling it; --skip-existing skips them,
    upscales the new input, and the summary counts the skipped ones (exit 0)."""
    _png(tmp_path / "in" / "a.png")
    assert main([*ARGS, str(tmp_path / "in")]) == 0
    _png(tmp_path / "in" / "b.png")
    before = (tmp_path / "in" / "a_x2.png").stat().st_mtime_ns
    assert main([*ARGS, str(tmp_path / "in")]) == 1
    assert "a_x2.png exists (use --overwrite to replace it, or --skip-existing)" in capsys.readouterr().err
    (tmp_path / "in" / "b_x2.png").unlink()
    assert main([*ARGS, str(tmp_path / "in"), "--skip-existing"]) == 0
    err = capsys.readouterr().err
    assert "a.png: skipped" in err and "1 of 2 done, 1 skipped (outputs exist)" in err
    assert (tmp_path / "in" / "b_x2.png").exists()
    assert (tmp_path / "in" / "a_x2.png").stat().st_mtime_ns == before
    assert main([*ARGS, str(tmp_path / "in"), "--skip-existing", "--overwrite"]) == 64
