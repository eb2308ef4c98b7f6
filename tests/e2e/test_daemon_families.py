"""`srd run` with each model family the daemon ships: Real-CUGAN, Real-ESRGAN and RealSR behind the same
watch folder and with the same guarantees as waifu2x (test_daemon.py): every input ends once, upscaled."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from support.daemon import DaemonProcess, make_png, visible_files, wait_for, write_config

pytestmark = pytest.mark.slow


# The 23-block RRDB compiles for over a minute per tile shape: its images are the warmed-up tile's size.
@pytest.mark.parametrize(
    ("model", "scale", "startup", "wide", "small"),
    [
        ("realcugan-se", 2, 300, (40, 24), (20, 18)),
        ("realesr-animevideov3", 4, 300, (40, 24), (20, 18)),
        ("realsr-df2k", 4, 900, (32, 32), (32, 32)),
    ],
)
@pytest.mark.usefixtures("reap_daemons")
def test_each_family_runs_in_the_daemon(
    tmp_path: Path,
    cache: Path,
    model: str,
    scale: int,
    startup: int,
    wide: tuple[int, int],
    small: tuple[int, int],
) -> None:
    """Two files dropped in (one larger than a tile where the family allows it, one with alpha) come out
    upscaled by the family's model, originals archived, nothing in errors; the job lines name the model."""
    _two_files_through_the_daemon(tmp_path, cache, model, scale, startup, wide, small)


@pytest.mark.usefixtures("reap_daemons")
def test_a_community_model_file_runs_in_the_daemon(tmp_path: Path, cache: Path) -> None:
    """A Compact .safetensors file as model.name runs in the daemon like a built-in family."""
    from support.spandrel_ref import architecture, randomise, save_safetensors

    compact = architecture("Compact").Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    path = save_safetensors(randomise(compact, 1).state_dict(), tmp_path / "2x-compact.safetensors")
    _two_files_through_the_daemon(tmp_path, cache, str(path), 2, 300, (40, 24), (20, 18))


def _two_files_through_the_daemon(
    tmp_path: Path,
    cache: Path,
    model: str,
    scale: int,
    startup: int,
    wide: tuple[int, int],
    small: tuple[int, int],
) -> None:
    config = write_config(
        tmp_path,
        cache,
        model={"name": model, "scale": scale, "noise": -1},
        engine={"tile": 32},
        limits={"startup_timeout": startup, "job_timeout": startup},
    )
    daemon = DaemonProcess(config)

    def ready() -> bool:
        if daemon.process.poll() is not None:
            raise AssertionError(f"daemon exited {daemon.process.returncode}:\n{daemon.log_path.read_text()}")
        return daemon.has_event("daemon.ready")

    wait_for(ready, startup, f"{model} ready")  # the 23-block RRDB compiles for over a minute
    make_png(tmp_path / "inbox" / "wide.png", size=wide, seed=1)
    rgba = tmp_path / "inbox" / "sub" / "alpha.png"
    rgba.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", small, (200, 100, 50, 128)).save(rgba)
    for name in ("wide.png", "sub/alpha.png"):
        wait_for((tmp_path / "archive" / name).exists, startup, f"{name} archived")
    with Image.open(tmp_path / "outbox" / "wide.png") as im:
        assert im.size == (wide[0] * scale, wide[1] * scale)
    with Image.open(tmp_path / "outbox" / "sub" / "alpha.png") as im:
        assert (im.size, im.mode) == ((small[0] * scale, small[1] * scale), "RGBA")
        assert im.getpixel((5, 5))[3] == 128  # a flat alpha stays flat through bicubic
    assert visible_files(tmp_path / "errors") == []
    wait_for(lambda: len(daemon.job_lines()) == 2, 30, "both job lines")  # logged once a job is done
    lines = daemon.job_lines()
    assert sorted(line["input"] for line in lines) == ["sub/alpha.png", "wide.png"]
    assert all(line["outcome"] == "ok" and line["model"].startswith(model) for line in lines)
    assert daemon.stop() == 0
