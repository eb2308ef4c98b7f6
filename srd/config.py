"""The daemon's configuration: one flat YAML schema read into frozen dataclasses, all problems at once."""

from __future__ import annotations

import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import yaml

from srd.errors import ConfigError, FolderError
from srd.model.graph import CONV_ALGORITHMS, DEFAULT_CONV_ALGORITHM, ConvAlgorithm
from srd.png_writer import DEFAULT_LEVEL, DEFAULT_STRATEGY, STRATEGIES

DEFAULT_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.webp", "*.bmp", "*.tif", "*.tiff", "*.gif")
DEFAULT_IGNORE = (".*", "*.part", "*.tmp", "*.crdownload")
NAME_FIELDS = frozenset({"stem", "scale", "noise", "model"})
DELETE = "delete"


@dataclass(frozen=True)
class WatchConfig:
    """How inbox files are nominated and when they count as completely written."""

    mode: str = "auto"
    poll_interval: float = 2.0
    settle_seconds: float = 2.0
    rescan_interval: float = 60.0
    recursive: bool = True
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    ignore: tuple[str, ...] = DEFAULT_IGNORE


@dataclass(frozen=True)
class ModelConfig:
    """Which network runs and how."""

    name: str = "cunet"
    noise: int = -1
    scale: int = 2
    tta: bool = False


@dataclass(frozen=True)
class EngineConfig:
    """Where and in what shapes the network runs."""

    device: str = "auto"
    tile: int | None = None
    batch: int = 1
    compile_cache: Path | None = None
    conv: ConvAlgorithm = DEFAULT_CONV_ALGORITHM


@dataclass(frozen=True)
class OutputConfig:
    """The encoded output file."""

    format: str = "png"
    quality: int = 95
    png_level: int = DEFAULT_LEVEL
    png_strategy: str = DEFAULT_STRATEGY
    name: str = "{stem}"


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds that keep one bad file or a hung worker from stalling the daemon."""

    max_pixels: int = 64_000_000
    max_bytes: int = 200_000_000
    job_timeout: float = 600.0
    attempts: int = 3
    startup_timeout: float = 900.0
    heartbeat_timeout: float = 60.0
    stop_grace: float = 30.0


@dataclass(frozen=True)
class LoggingConfig:
    """Log rendering: JSON for journald, readable text on a terminal."""

    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration; relative paths are resolved against the config file's folder."""

    inbox: Path
    outbox: Path
    errors: Path
    work: Path
    archive: Path | None  # None means originals are deleted after success
    status_file: Path
    watch: WatchConfig = field(default_factory=WatchConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


_MISSING = object()


class _Section:
    """Reads one mapping of the YAML document, recording every problem and every unknown key."""

    def __init__(self, raw: object, prefix: str, problems: list[str], base: Path) -> None:
        self.prefix = prefix
        self.problems = problems
        self.base = base
        self.seen: set[str] = set()
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.problem("", f"expected a mapping, got {type(raw).__name__}")
            raw = {}
        self.raw: Mapping[object, object] = raw

    def key_path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix and key else self.prefix or key

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"At '{self.key_path(key) or '<root>'}': {message}")

    def get(self, key: str) -> object:
        self.seen.add(key)
        return self.raw.get(key, _MISSING)

    def section(self, key: str) -> _Section:
        value = self.get(key)
        return _Section(None if value is _MISSING else value, self.key_path(key), self.problems, self.base)

    def finish(self) -> None:
        for key in self.raw:
            if key not in self.seen:
                self.problem(str(key), "unknown key")

    def string(self, key: str, default: str, choices: tuple[str, ...] = ()) -> str:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or not value:
            self.problem(key, f"expected a non-empty string, got {value!r}")
            return default
        if choices and value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {value!r}")
            return default
        return value

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        value = self.get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"expected an integer, got {value!r}")
            return default
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(key, f"must be {bounds}, got {value}")
            return default
        return value

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        if self.raw.get(key) is None:
            self.seen.add(key)
            return None
        return self.integer(key, low, low, high)

    def choice_int(self, key: str, default: int, choices: tuple[int, ...]) -> int:
        value = self.integer(key, default, min(choices), max(choices))
        if value not in choices:
            self.problem(key, f"must be one of {', '.join(map(str, choices))}, got {value}")
            return default
        return value

    def number(self, key: str, default: float, low: float) -> float:
        value = self.get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, f"expected a number of seconds, got {value!r}")
            return default
        if value < low:
            self.problem(key, f"must be at least {low}, got {value}")
            return default
        return float(value)

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.problem(key, f"expected a list of glob patterns, got {value!r}")
            return default
        return tuple(value)

    def path(self, key: str, *, required: bool) -> Path | None:
        value = self.get(key)
        if value is _MISSING or value is None:
            if required:
                self.problem(key, "required folder is missing")
            return None
        if not isinstance(value, str) or not value:
            self.problem(key, f"expected a path, got {value!r}")
            return None
        return (self.base / Path(value).expanduser()).absolute()


def _read_watch(section: _Section) -> WatchConfig:
    d = WatchConfig()
    cfg = WatchConfig(
        mode=section.string("mode", d.mode, ("auto", "inotify", "polling")),
        poll_interval=section.number("poll_interval", d.poll_interval, 0.05),
        settle_seconds=section.number("settle_seconds", d.settle_seconds, 0.0),
        rescan_interval=section.number("rescan_interval", d.rescan_interval, 0.5),
        recursive=section.boolean("recursive", d.recursive),
        patterns=section.string_list("patterns", d.patterns),
        ignore=section.string_list("ignore", d.ignore),
    )
    section.finish()
    return cfg


def _read_model(section: _Section) -> ModelConfig:
    d = ModelConfig()
    cfg = ModelConfig(
        name=section.string("name", d.name),
        noise=section.choice_int("noise", d.noise, (-1, 0, 1, 2, 3)),
        scale=section.choice_int("scale", d.scale, (1, 2, 4)),
        tta=section.boolean("tta", d.tta),
    )
    section.finish()
    return cfg


def _read_engine(section: _Section) -> EngineConfig:
    d = EngineConfig()
    cfg = EngineConfig(
        device=section.string("device", d.device),
        tile=section.optional_integer("tile", 16, 4096),
        batch=section.integer("batch", d.batch, 1, 256),
        compile_cache=section.path("compile_cache", required=False),
        conv=cast(ConvAlgorithm, section.string("conv", d.conv, CONV_ALGORITHMS)),
    )
    section.finish()
    return cfg


def _read_output(section: _Section) -> OutputConfig:
    d = OutputConfig()
    name = section.string("name", d.name)
    try:
        fields = {parsed[1] for parsed in string.Formatter().parse(name) if parsed[1] is not None}
    except ValueError as exc:
        section.problem("name", f"not a valid name template: {exc}")
        fields = set()
    if not fields <= NAME_FIELDS:
        unknown = ", ".join(sorted(fields - NAME_FIELDS))
        section.problem("name", f"unknown placeholder(s) {unknown}; use {', '.join(sorted(NAME_FIELDS))}")
    if "/" in name or name.startswith("."):
        section.problem("name", "must not contain '/' or start with '.'")
    cfg = OutputConfig(
        format=section.string("format", d.format, ("png", "webp", "jpg")),
        quality=section.integer("quality", d.quality, 1, 100),
        png_level=section.integer("png_level", d.png_level, 0, 9),
        png_strategy=section.string("png_strategy", d.png_strategy, tuple(STRATEGIES)),
        name=name,
    )
    section.finish()
    return cfg


def _read_limits(section: _Section) -> LimitsConfig:
    d = LimitsConfig()
    cfg = LimitsConfig(
        max_pixels=section.integer("max_pixels", d.max_pixels, 1),
        max_bytes=section.integer("max_bytes", d.max_bytes, 1),
        job_timeout=section.number("job_timeout", d.job_timeout, 1.0),
        attempts=section.integer("attempts", d.attempts, 1, 100),
        startup_timeout=section.number("startup_timeout", d.startup_timeout, 1.0),
        heartbeat_timeout=section.number("heartbeat_timeout", d.heartbeat_timeout, 5.0),
        stop_grace=section.number("stop_grace", d.stop_grace, 0.0),
    )
    section.finish()
    return cfg


def _read_logging(section: _Section) -> LoggingConfig:
    d = LoggingConfig()
    cfg = LoggingConfig(
        format=section.string("format", d.format, ("auto", "json", "console")),
        level=section.string("level", d.level, ("debug", "info", "warning", "error")),
    )
    section.finish()
    return cfg


def parse_config(raw: object, base: Path) -> Config:
    """Build a Config from a parsed YAML document, raising ConfigError that lists every problem."""
    problems: list[str] = []
    root = _Section(raw, "", problems, base)
    folders = {key: root.path(key, required=True) for key in ("inbox", "outbox", "errors", "work")}
    archive_raw = root.get("archive")
    archive: Path | None = None
    if archive_raw != DELETE:
        root.seen.discard("archive")
        archive = root.path("archive", required=True)
    status_file = root.path("status_file", required=False)
    sections = (
        _read_watch(root.section("watch")),
        _read_model(root.section("model")),
        _read_engine(root.section("engine")),
        _read_output(root.section("output")),
        _read_limits(root.section("limits")),
        _read_logging(root.section("logging")),
    )
    root.finish()
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    inbox, outbox, errors, work = (folders[k] for k in ("inbox", "outbox", "errors", "work"))
    assert inbox and outbox and errors and work  # problems is empty, so every required folder was read
    watch, model, engine, output, limits, logging_cfg = sections
    return Config(
        inbox=inbox,
        outbox=outbox,
        errors=errors,
        work=work,
        archive=archive,
        status_file=status_file or work / "status.json",
        watch=watch,
        model=model,
        engine=engine,
        output=output,
        limits=limits,
        logging=logging_cfg,
    )


def layout_problems(config: Config) -> list[str]:
    """Folders placed inside the inbox, where srd would pick up its own files (checked before start)."""
    inbox = config.inbox.resolve()
    folders = {
        "outbox": config.outbox,
        "errors": config.errors,
        "work": config.work,
        "archive": config.archive,
    }
    folders["status_file"] = config.status_file
    return [
        f"At '{key}': {folder} is inside the inbox {config.inbox}; srd would pick up its own files"
        for key, folder in folders.items()
        if folder is not None and (folder.resolve() == inbox or inbox in folder.resolve().parents)
    ]


def load_config(path: Path) -> Config:
    """Read and validate a YAML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_config(raw, path.parent.absolute())


def check_config_command(path: Path) -> int:
    """`srd check-config FILE`: print every problem with its key path; exit 0 when the file is valid."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return exc.exit_code
    problems = layout_problems(config)
    if problems:
        print(f"{path}: invalid folder layout:\n  " + "\n  ".join(problems), file=sys.stderr)
        return FolderError.exit_code
    archive = config.archive if config.archive is not None else "delete originals"
    print(f"{path}: OK (inbox {config.inbox}, outbox {config.outbox}, archive {archive})")
    return 0
