"""Tests for srd.config: the flat YAML schema, its defaults, and `srd check-config`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from support.daemon import SRD_COMMAND, DaemonProcess, make_png, wait_for

from srd.cli.check_config import check_config_command
from srd.errors import ConfigError
from srd.settings import DEFAULT_MODEL, Config, load_config, parse_config
from srd.workers import WorkerSettings

REPO = Path(__file__).resolve().parents[2]
MINIMAL = "inbox: in\noutbox: out\nerrors: err\nwork: work\narchive: delete\n"


def test_example_config_loads_as_is() -> None:
    """config.example.yaml is valid and puts every folder under ./var/ of the checkout."""
    config = load_config(REPO / "config.example.yaml")
    var = REPO / "var"
    for folder in (config.inbox, config.outbox, config.errors, config.work, config.archive):
        assert folder is not None and var in folder.parents
    assert config.model.name == DEFAULT_MODEL == "upconv7-art"
    assert config.engine.compile_cache is not None


def test_example_config_documents_every_key() -> None:
    """Every key line of config.example.yaml has a comment line right above it."""
    lines = (REPO / "config.example.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not stripped.endswith(":"):
            assert lines[index - 1].strip().startswith("#"), f"undocumented key: {line!r}"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    """Relative folders are relative to the config file, not the current directory."""
    path = tmp_path / "srd.yaml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.inbox == tmp_path / "in"
    assert config.archive is None
    assert config.status_file == tmp_path / "work" / "status.json"


def test_defaults_fill_missing_sections(tmp_path: Path) -> None:
    """A config with only the folders gets the documented defaults."""
    config = parse_config(yaml.safe_load(MINIMAL), tmp_path)
    assert config.watch.mode == "auto"
    assert config.watch.ignore == (".*", "*.part", "*.tmp", "*.crdownload")
    assert config.limits.attempts == 3
    assert config.engine.tile is None
    assert config.engine.conv == "auto"
    assert config.output.png_level == 4
    assert config.output.png_strategy == "rle"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """A broken config lists each bad key with its path in one error."""
    broken = (
        "inbox: 3\noutbox: out\nerrors: err\nwork: w\narchive: a\nbogus: 1\n"
        "watch: {mode: fast, settle_seconds: -1, extra: 2}\n"
        "model: {scale: 5, tta: maybe}\n"
        "engine: {tile: 2, batch: 0, conv: fft}\n"
        "output: {name: '{foo}', format: psd, png_level: 12, png_strategy: zstd}\n"
        "limits: [1]\n"
        "logging: {level: loud}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_load(broken), tmp_path)
    message = str(info.value)
    expected = [
        "At 'inbox':",
        "At 'bogus': unknown key",
        "At 'watch.mode':",
        "At 'watch.settle_seconds':",
        "At 'watch.extra': unknown key",
        "At 'model.scale':",
        "At 'model.tta':",
        "At 'engine.tile':",
        "At 'engine.batch':",
        "At 'engine.conv':",
        "At 'output.name':",
        "At 'output.format':",
        "At 'output.png_level':",
        "At 'output.png_strategy':",
        "At 'limits': expected a mapping",
        "At 'logging.level':",
    ]
    for fragment in expected:
        assert fragment in message
    assert message.count("At '") == len(expected)


def test_missing_folders_are_named(tmp_path: Path) -> None:
    """An empty document names each required folder."""
    with pytest.raises(ConfigError) as info:
        parse_config(None, tmp_path)
    for key in ("inbox", "outbox", "errors", "work", "archive"):
        assert f"At '{key}': required key is missing (the path of this folder)" in str(info.value)


def test_check_config_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config returns 0 for a valid file and 78 (EX_CONFIG) with the problems for a bad one."""
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    assert check_config_command(good) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "watch: {recursive: 7}\n")
    assert check_config_command(bad) == 78
    assert "At 'watch.recursive':" in capsys.readouterr().err
    assert check_config_command(tmp_path / "missing.yaml") == 78


def test_srd_check_config_cli_reports_every_bad_key(tmp_path: Path) -> None:
    """`srd check-config` on a broken file prints every bad key and exits 78."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("inbox: in\noutbox: out\nwork: w\narchive: a\ncolour: red\nmodel: {noise: 9, size: 2}\n")
    result = subprocess.run(
        [*SRD_COMMAND, "check-config", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 78
    for fragment in ("At 'errors':", "At 'colour': unknown key", "At 'model.noise':", "At 'model.size':"):
        assert fragment in result.stderr


def test_check_config_reports_folders_inside_the_inbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config names every folder placed inside the inbox and exits 73 like `srd run` would."""
    path = tmp_path / "srd.yaml"
    path.write_text("inbox: in\noutbox: in/out\nerrors: err\nwork: in/.work\narchive: delete\n")
    assert check_config_command(path) == 73
    err = capsys.readouterr().err
    assert "At 'outbox':" in err and "At 'work':" in err and "At 'errors'" not in err


@pytest.mark.slow
def test_example_config_runs_as_is(tmp_path: Path) -> None:
    """A copy of config.example.yaml starts the daemon unchanged, creates ./var/ and upscales a file."""
    config = tmp_path / "config.example.yaml"
    shutil.copy(REPO / "config.example.yaml", config)
    daemon = DaemonProcess(config)
    try:
        daemon.wait_ready()
        make_png(tmp_path / "var" / "inbox" / "example.png", seed=1)
        wait_for((tmp_path / "var" / "archive" / "example.png").exists, 120, "the example job to finish")
        assert (tmp_path / "var" / "outbox" / "example.png").exists()
        assert daemon.stop() == 0
    finally:
        DaemonProcess.reap_all()


def test_engine_conv_reaches_the_worker(tmp_path: Path) -> None:
    """engine.conv is handed to the worker's engine settings."""
    config = parse_config(yaml.safe_load(MINIMAL + "engine: {conv: direct}\n"), tmp_path)
    assert WorkerSettings.from_config(config).engine.conv == "direct"


def _schema_sections() -> dict[str, type[BaseModel]]:
    return {
        name: annotation
        for name, field in Config.model_fields.items()
        if isinstance(annotation := field.annotation, type) and issubclass(annotation, BaseModel)
    }


def test_example_config_shows_every_key_with_its_default() -> None:
    """config.example.yaml has every key of the schema, set to the schema's default (folders aside)."""
    raw = yaml.safe_load((REPO / "config.example.yaml").read_text())
    top_level = set(Config.model_fields)
    assert set(raw) == top_level
    own_values = {("engine", "compile_cache")}  # the example keeps its cache under ./var/ too
    for section, model in _schema_sections().items():
        assert set(raw[section]) == set(model.model_fields), section
        defaults = model()
        for key in model.model_fields:
            if (section, key) not in own_values:
                value = raw[section][key]
                expected = getattr(defaults, key)
                if isinstance(expected, BaseModel):  # a nested section (output.video)
                    assert value == expected.model_dump(mode="json"), f"{section}.{key}"
                    continue
                assert (tuple(value) if isinstance(value, list) else value) == expected, f"{section}.{key}"


def test_key_table_at_a_glance_lists_every_key() -> None:
    """docs/daemon.md's table of the config file names every top-level key and every key of every section."""
    rows = [line for line in (REPO / "docs" / "daemon.md").read_text().splitlines() if line.startswith("| `")]
    table = {row.split("`")[1]: row for row in rows}
    sections = _schema_sections()
    for key in Config.model_fields:
        if key not in sections:
            assert any(f"`{key}`" in row for row in rows), key
    for section, model in sections.items():
        assert section in table, section
        for key in model.model_fields:
            assert f"`{key}`" in table[section], f"{section}.{key} is not in docs/daemon.md's table"


def test_check_config_runs_the_model_and_engine_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config rejects an unknown model and an impossible model/scale/noise with 78, naming the key."""
    path = tmp_path / "srd.yaml"
    path.write_text(MINIMAL + "model: {name: no-such-model}\n")
    assert check_config_command(path) == 78
    assert "At 'model': unknown model 'no-such-model'" in capsys.readouterr().err
    path.write_text(MINIMAL + "model: {name: cunet, scale: 1, noise: -1}\n")
    assert check_config_command(path) == 78
    assert "At 'model':" in capsys.readouterr().err
    path.write_text(MINIMAL + "engine: {device: no-such-platform}\n")
    assert check_config_command(path) == 78
    assert "At 'engine.device':" in capsys.readouterr().err


def test_check_config_names_a_compile_cache_that_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A compile cache under a regular file cannot be created: check-config exits 73 naming the key."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = tmp_path / "srd.yaml"
    path.write_text(MINIMAL + f"engine: {{compile_cache: {blocker}/cache}}\n")
    assert check_config_command(path) == 73
    assert f"At 'engine.compile_cache': {blocker}/cache cannot be a folder" in capsys.readouterr().err


def test_output_background_is_a_colour(tmp_path: Path) -> None:
    """output.background takes #rrggbb or #rgb and names the key otherwise."""
    config = parse_config(yaml.safe_load(MINIMAL + "output: {background: '#0f0'}\n"), tmp_path)
    assert config.output.background_rgb == (0.0, 1.0, 0.0)
    with pytest.raises(ConfigError, match=r"At 'output\.background': expected a colour"):
        parse_config(yaml.safe_load(MINIMAL + "output: {background: white}\n"), tmp_path)


def test_yaml_errors_say_where_without_pyyaml_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A YAML syntax error names the file once, with line and column, and no `<unicode string>`."""
    path = tmp_path / "syntax.yaml"
    path.write_text("inbox: in\noutbox: [unclosed\n")
    assert check_config_command(path) == 78
    err = capsys.readouterr().err
    assert err.count(str(path)) == 1 and "line " in err and "<unicode string>" not in err


def test_commands_find_the_default_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --config, check-config, run and status use ./srd.yaml (after /etc/srd/config.yaml)."""
    from srd.cli import main
    from srd.settings import CONFIG_SEARCH_PATH

    monkeypatch.chdir(tmp_path)
    if CONFIG_SEARCH_PATH[0].exists():
        pytest.skip(f"{CONFIG_SEARCH_PATH[0]} exists on this machine")
    assert main(["check-config"]) == 78  # none found: a config error naming where it looked
    (tmp_path / "srd.yaml").write_text(MINIMAL)
    assert main(["check-config"]) == 0
    assert main(["status"]) == 3  # found the config; nothing running


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ("{name: realcugan-pro, scale: 4}", "has no 4x or larger model with noise level -1"),
        ("{name: realcugan-se, scale: 3, noise: 1}", "has no 3x or larger model with noise level 1"),
        ("{name: realesrgan-x4plus, noise: 2}", "has no 2x or larger model with noise level 2"),
    ],
)
def test_check_config_rejects_impossible_family_combinations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, fragment: str
) -> None:
    """A scale or noise level a family does not have is a 78 naming model, with what it offers."""
    path = tmp_path / "srd.yaml"
    path.write_text(MINIMAL + f"model: {model}\n")
    assert check_config_command(path) == 78
    err = capsys.readouterr().err
    assert "At 'model':" in err and fragment in err and "it offers" in err


def test_a_relative_compile_cache_is_relative_to_the_config_file(tmp_path: Path) -> None:
    """engine.compile_cache, like the folders, resolves against the config file's folder."""
    config = parse_config(yaml.safe_load(MINIMAL + "engine: {compile_cache: cache/jax}\n"), tmp_path)
    assert config.engine.compile_cache == tmp_path / "cache" / "jax"


def test_check_config_reports_layout_problems_beside_schema_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schema error does not hide an outbox inside the inbox: check-config names both at once."""
    path = tmp_path / "srd.yaml"
    path.write_text("inbox: in\noutbox: in/out\nerrors: err\nwork: w\narchive: delete\nmodel: {noise: 9}\n")
    assert check_config_command(path) == 78
    err = capsys.readouterr().err
    assert "At 'model.noise':" in err and "At 'outbox':" in err and "inside the inbox" in err


def test_check_config_notes_tcp_actions_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """web.listen with actions and no token_file passes, with a note that TCP actions will be refused."""
    path = tmp_path / "srd.yaml"
    path.write_text(MINIMAL + 'web: {listen: "127.0.0.1:8080", actions: true}\n')
    assert check_config_command(path, check_model=False) == 0
    assert "note: At 'web.actions':" in capsys.readouterr().err
    path.write_text(MINIMAL + 'web: {listen: "127.0.0.1:8080", actions: true, token_file: t}\n')
    assert check_config_command(path, check_model=False) == 0
    assert "note" not in capsys.readouterr().err
