"""ONE settings schema for the daemon, the CLI and the worker: pydantic models that reject unknown keys and
report every problem at once as "At 'key.path': message" (borgmatic's convention).

The daemon reads the whole `Config` from YAML (`load_config`); `srd upscale` builds the same `ModelSettings`
and `EngineSettings` from its options; the worker receives them as they are. Defaults live here only.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from srd.errors import ConfigError
from srd.imaging.formats import DEFAULT_PATTERNS, WRITE_NAMES
from srd.imaging.png import DEFAULT_LEVEL, DEFAULT_STRATEGY, STRATEGIES
from srd.nn.graph import DEFAULT_CONV_ALGORITHM, ConvAlgorithm

DEFAULT_MODEL = "upconv7-art"
DEFAULT_IGNORE = (".*", "*.part", "*.tmp", "*.crdownload")
NAME_FIELDS = frozenset({"stem", "scale", "noise", "model"})
DELETE = "delete"
NoiseLevel = Literal[-1, 0, 1, 2, 3]
Scale = Literal[1, 2, 3, 4]
# YAML lists become tuples and strings become paths; every scalar is otherwise taken strictly (no "yes" for
# true, no "5" for 5).
Patterns = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(strict=False)]
Seconds = Annotated[float, Field(strict=False)]
# The dtype the network computes in (engine.precision): bfloat16 and float16 halve memory traffic and use a
# GPU's tensor cores at full rate; weights and activations are cast, pixels stay float32 outside the network.
Precision = Literal["float32", "bfloat16", "float16"]


def parse_colour(text: str) -> tuple[float, float, float]:
    """`#rrggbb` (or `#rgb`) as RGB in 0..1; ValueError otherwise."""
    digits = text.removeprefix("#")
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    if not text.startswith("#") or len(digits) != 6:
        raise ValueError(f"expected a colour like #ffffff, got {text!r}")
    try:
        r, g, b = (int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    except ValueError:
        raise ValueError(f"expected a colour like #ffffff, got {text!r}") from None
    return r, g, b


class Section(BaseModel):
    """A frozen mapping of the YAML document: unknown keys are errors, scalars are not coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class WatchSettings(Section):
    """How inbox files are nominated and when they count as completely written."""

    mode: Literal["auto", "inotify", "polling"] = "auto"
    poll_interval: Seconds = Field(2.0, ge=0.05)
    settle_seconds: Seconds = Field(2.0, ge=0.0)
    rescan_interval: Seconds = Field(60.0, ge=0.5)
    recursive: bool = True
    patterns: Patterns = DEFAULT_PATTERNS
    ignore: Patterns = DEFAULT_IGNORE


class ModelSettings(Section):
    """Which network runs: a built-in name or a model path, its noise level, the scale, TTA, and how alpha
    is upscaled ("reference": as the model family's reference program does; "model": by the network)."""

    name: str = Field(DEFAULT_MODEL, min_length=1)
    noise: NoiseLevel = -1
    scale: Scale = 2
    tta: bool = False
    alpha: Literal["reference", "model"] = "reference"
    syncgap: Literal[0, 1, 2, 3] = 3

    @property
    def model_id(self) -> str:
        """How logs and reports name this model setting."""
        return f"{self.name} noise={self.noise} scale={self.scale}" + (" tta" if self.tta else "")


class EngineSettings(Section):
    """Where and in what shapes the network runs."""

    device: str = Field("auto", min_length=1)
    tile: int | None = Field(None, ge=16, le=4096)
    batch: int = Field(1, ge=1, le=256)
    compile_cache: Annotated[Path | None, Field(strict=False)] = None
    conv: ConvAlgorithm = DEFAULT_CONV_ALGORITHM
    precision: Precision = "float32"

    @field_validator("compile_cache")
    @classmethod
    def _resolve_cache(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base", Path.cwd())
        return None if value is None else (base / value.expanduser()).absolute()


class OutputSettings(Section):
    """The encoded output file."""

    format: str = "png"
    quality: int = Field(95, ge=1, le=100)
    png_level: int = Field(DEFAULT_LEVEL, ge=0, le=9)
    png_strategy: str = DEFAULT_STRATEGY
    name: str = Field("{stem}", min_length=1)
    background: str = "#ffffff"

    @property
    def background_rgb(self) -> tuple[float, float, float]:
        """`background` as RGB in 0..1."""
        return parse_colour(self.background)

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        parse_colour(value)
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in WRITE_NAMES:
            raise ValueError(f"must be one of {', '.join(WRITE_NAMES)}, got {value!r}")
        return value

    @field_validator("png_strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"must be one of {', '.join(STRATEGIES)}, got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _name_template(cls, value: str) -> str:
        try:
            fields = {parsed[1] for parsed in string.Formatter().parse(value) if parsed[1] is not None}
        except ValueError as exc:
            raise ValueError(f"not a valid name template: {exc}") from None
        if not fields <= NAME_FIELDS:
            unknown = ", ".join(sorted(fields - NAME_FIELDS))
            raise ValueError(f"unknown placeholder(s) {unknown}; use {', '.join(sorted(NAME_FIELDS))}")
        if "/" in value or value.startswith("."):
            raise ValueError("must not contain '/' or start with '.'")
        return value


class LimitsSettings(Section):
    """Bounds that keep one bad file or a hung worker from stalling the daemon."""

    max_pixels: int = Field(64_000_000, ge=1)
    max_bytes: int = Field(200_000_000, ge=1)
    job_timeout: Seconds = Field(600.0, ge=1.0)
    attempts: int = Field(3, ge=1, le=100)
    startup_timeout: Seconds = Field(900.0, ge=1.0)
    heartbeat_timeout: Seconds = Field(60.0, ge=5.0)
    stop_grace: Seconds = Field(30.0, ge=0.0)


class LoggingSettings(Section):
    """Log rendering: JSON for journald, readable text on a terminal."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


FolderPath = Annotated[Path, Field(strict=False)]


class Config(Section):
    """The whole daemon configuration; relative paths are resolved against the config file's folder."""

    inbox: FolderPath
    outbox: FolderPath
    errors: FolderPath
    work: FolderPath
    archive: FolderPath | None  # None (written `delete`) means originals are deleted after success
    status_file: FolderPath = Path("status.json")  # default: <work>/status.json
    watch: WatchSettings = WatchSettings()
    model: ModelSettings = ModelSettings()
    engine: EngineSettings = EngineSettings()
    output: OutputSettings = OutputSettings()
    limits: LimitsSettings = LimitsSettings()
    logging: LoggingSettings = LoggingSettings()

    @field_validator("archive", mode="before")
    @classmethod
    def _archive_or_delete(cls, value: object) -> object:
        return None if value == DELETE else value

    @field_validator("inbox", "outbox", "errors", "work", "archive", "status_file", mode="before")
    @classmethod
    def _non_empty_path(cls, value: object) -> object:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"expected a path, got {value!r}")
        return value

    @field_validator("inbox", "outbox", "errors", "work", "archive", "status_file")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base", Path.cwd())
        return None if value is None else (base / value.expanduser()).absolute()

    @model_validator(mode="before")
    @classmethod
    def _default_status_file(cls, raw: object) -> object:
        if isinstance(raw, dict) and raw.get("status_file") is None and isinstance(raw.get("work"), str):
            return {**raw, "status_file": str(Path(raw["work"]) / "status.json")}
        return raw


def _key_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing (the path of this folder)"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {type(error['input']).__name__}"
    message = str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    return message if kind == "value_error" else f"{message}, got {error['input']!r}"


def describe(exc: ValidationError) -> list[str]:
    """Every problem of a validation error as "At 'key.path': message", in document order."""
    return [f"At '{_key_path(error['loc'])}': {_message(error)}" for error in exc.errors()]


def parse_config(raw: object, base: Path) -> Config:
    """Build a Config from a parsed YAML document, raising ConfigError that lists every problem."""
    if raw is None:
        raw = {}
    try:
        return Config.model_validate(raw, context={"base": base})
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(describe(exc))) from None


def layout_problems(config: Config) -> list[str]:
    """Folders placed inside the inbox, where srd would pick up its own files (checked before start)."""
    inbox = config.inbox.resolve()
    folders = {
        "outbox": config.outbox,
        "errors": config.errors,
        "work": config.work,
        "archive": config.archive,
        "status_file": config.status_file,
    }
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
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    try:
        return parse_config(raw, path.parent.absolute())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's problem and where, without its `in "<unicode string>"` noise."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(exc)


CONFIG_SEARCH_PATH = (Path("/etc/srd/config.yaml"), Path("srd.yaml"))


def default_config_path() -> Path:
    """The config file used when none is named: /etc/srd/config.yaml, else ./srd.yaml."""
    for candidate in CONFIG_SEARCH_PATH:
        if candidate.is_file():
            return candidate
    looked = " and ".join(str(c) for c in CONFIG_SEARCH_PATH)
    raise ConfigError(f"no config file given and none found (looked for {looked}); pass --config FILE")
