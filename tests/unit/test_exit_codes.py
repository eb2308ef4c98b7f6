"""Every exit status srd documents (srd.errors.ExitCode) comes out of `srd` where it should."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from srd.cli import main
from srd.errors import (
    ConfigError,
    ExitCode,
    FolderError,
    ModelError,
    SrdError,
    UsageError,
    WatchError,
    WorkerError,
)
from srd.jobs.messages import Fatal

# srd.cli re-exports `main`, which shadows the module's name there: reach the module itself.
cli_main = importlib.import_module("srd.cli.main")
MINIMAL = "inbox: in\noutbox: out\nerrors: err\nwork: work\narchive: delete\n"


def test_the_documented_exit_codes_are_the_enum() -> None:
    """The README's list and ExitCode agree: 0 1 3 64 65 70 73 74 78 130 143."""
    assert sorted(int(code) for code in ExitCode) == [0, 1, 3, 64, 65, 70, 73, 74, 78, 130, 143]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in ExitCode:
        assert f"{int(code)} " in readme.split("Exit codes (`srd.errors.ExitCode`")[1][:900], code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 78),
        (FolderError("x"), 73),
        (WatchError("x"), 74),
        (WorkerError("x"), 70),
        (ModelError("x"), 65),
        (UsageError("x"), 64),
    ],
)
def test_each_error_kind_exits_with_its_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: SrdError, code: int
) -> None:
    """`srd run` failing with each kind of error exits with that kind's code and a one-line message."""

    def fail(args: object) -> int:
        raise error

    monkeypatch.setattr(cli_main, "_dispatch", fail)
    assert main(["run", "--config", "x.yaml"]) == code
    err = capsys.readouterr().err
    assert err == "srd: error: x\n"


def test_ctrl_c_is_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted command exits 130, without a traceback."""

    def interrupt(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "_dispatch", interrupt)
    assert main(["models"]) == ExitCode.INTERRUPTED == 130


def test_a_worker_that_crashes_while_starting_is_70_and_a_settings_fault_78() -> None:
    """What the worker reports when it cannot start carries the code the daemon exits with."""
    assert Fatal.from_exception(RuntimeError("XLA crashed")).exit_code == ExitCode.SOFTWARE == 70
    assert Fatal.from_exception(ModelError("unknown model")).exit_code == ExitCode.CONFIG == 78


def test_real_commands_exit_0_1_3_64_65_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real runs: models 0; a failed input 1; status of nothing 3; a bad option 64; an unknown model 65;
    a bad config 78."""
    assert main(["models"]) == 0
    bad = tmp_path / "bad.png"
    bad.write_text("text")
    assert main(["upscale", "--cache-dir", "none", str(bad)]) == 1
    config = tmp_path / "srd.yaml"
    config.write_text(MINIMAL)
    assert main(["status", "--config", str(config)]) == 3
    assert main(["upscale", str(bad), "--scale", "7"]) == 64
    assert main(["upscale", "--cache-dir", "none", str(bad), "-m", "no-such-model"]) == 65
    config.write_text(MINIMAL + "bogus: 1\n")
    assert main(["check-config", str(config)]) == 78
