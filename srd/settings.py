"""ONE settings schema for the daemon, the CLI and the worker: pydantic models that reject unknown keys and
report every problem at once as "At 'key.path': message" (borgmatic's convention).

The daemon reads the whole `Config` from YAML (`load_config`); `srd upscale` builds the same `ModelSettings`
and `EngineSettings` from its options; the worker receives them as they are. Defaults live here only.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
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
from srd.imaging.formats import ANIMATION_NAMES, DEFAULT_PATTERNS, WRITE_NAMES
from srd.imaging.png_options import DEFAULT_LEVEL, DEFAULT_STRATEGY, STRATEGY_NAMES
from srd.nn.graph import DEFAULT_CONV_ALGORITHM, ConvAlgorithm

DEFAULT_MODEL = "upconv7-art"
DEFAULT_IGNORE = (".*", "*.part", "*.tmp", "*.crdownload")
NAME_FIELDS = frozenset({"stem", "scale", "noise", "model"})
DELETE = "delete"
NoiseLevel = Literal[-1, 0, 1, 2, 3]
Scale = Literal[1, 2, 3, 4, 8]  # 8: community models trained for it (8x_NMKD-Faces)
# YAML lists become tuples and strings become paths; every scalar is otherwise taken strictly (no "yes" for
# true, no "5" for 5).
Patterns = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(strict=False)]
Seconds = Annotated[float, Field(strict=False)]
# The dtype the network computes in (engine.precision): bfloat16 and float16 halve memory traffic and use a
# GPU's tensor cores at full rate; weights and activations are cast, pixels stay float32 outside the network.
Precision = Literal["float32", "bfloat16", "float16"]
DeviceIds = Annotated[tuple[Annotated[int, Field(ge=0)], ...], Field(strict=False, min_length=1)]


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
    # One supervised worker process per device: `auto` (every NVIDIA GPU the host has, else `workers`
    # CPU workers), a count (devices 0..N-1) or a list of device ids.
    devices: Literal["auto"] | Annotated[int, Field(ge=1, le=64)] | DeviceIds = "auto"
    workers: int = Field(1, ge=1, le=64)  # CPU workers sharing the cores (with `devices: auto` on a CPU)

    @field_validator("compile_cache")
    @classmethod
    def _resolve_cache(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base", Path.cwd())
        return None if value is None else (base / value.expanduser()).absolute()


VideoContainer = Literal["same", "mp4", "mkv", "webm", "mov", "avi"]


class VideoSettings(Section):
    """How an upscaled video is encoded (srd/video): the codec, its quality (CRF; lower is better) and
    speed preset, the pixel format, the container (`same`: the input's, or Matroska where that cannot hold
    the codec), and the length of the segments a job is cut into (each one durable in work/, so that a
    restart resumes at the first unfinished one)."""

    codec: str = "libx264"
    crf: int = Field(18, ge=0, le=63)
    preset: str = "medium"
    pix_fmt: str = "yuv420p"
    container: VideoContainer = "same"
    segment_seconds: Seconds = Field(10.0, ge=0.1)

    @model_validator(mode="after")
    def _codec_exists(self) -> VideoSettings:
        if {"codec", "pix_fmt"} & self.model_fields_set:  # the defaults need no PyAV import to check
            from srd.video import check_encoder

            check_encoder(self.codec, self.pix_fmt)
        return self


class OutputSettings(Section):
    """The encoded output file: `format` for still images (`same`: the input's format where srd writes it,
    PNG otherwise), `animation` for animated inputs (`same`, png = APNG, webp or gif)."""

    format: str = "png"
    animation: str = "same"
    quality: int = Field(95, ge=1, le=100)
    webp_lossless: bool = False
    metadata: Literal["keep", "strip"] = "keep"
    tiff_pages: Literal["first", "all", "separate"] = "first"
    png_level: int = Field(DEFAULT_LEVEL, ge=0, le=9)
    png_strategy: str = DEFAULT_STRATEGY
    name: str = Field("{stem}", min_length=1)
    background: str = "#ffffff"
    video: VideoSettings = VideoSettings()

    @property
    def background_rgb(self) -> tuple[float, float, float]:
        """`background` as RGB in 0..1."""
        return parse_colour(self.background)

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        parse_colour(value)
        return value

    @field_validator("format", "animation", "png_strategy")
    @classmethod
    def _one_of_the_names(cls, value: str, info: ValidationInfo) -> str:
        names = {"format": WRITE_NAMES, "animation": ANIMATION_NAMES, "png_strategy": STRATEGY_NAMES}[
            info.field_name or ""
        ]
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}, got {value!r}")
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
    max_frames: int = Field(1000, ge=1)
    max_video_seconds: Seconds = Field(10_800.0, ge=1.0)  # a video's duration
    job_timeout: Seconds = Field(600.0, ge=1.0)
    attempts: int = Field(3, ge=1, le=100)
    startup_timeout: Seconds = Field(900.0, ge=1.0)
    heartbeat_timeout: Seconds = Field(60.0, ge=5.0)
    stop_grace: Seconds = Field(30.0, ge=0.0)


class LoggingSettings(Section):
    """Log rendering: JSON for journald, readable text on a terminal."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class QueueSettings(Section):
    """Where claimed jobs go: the local worker pool (no server), or Celery workers on other hosts."""

    backend: Literal["local", "celery"] = "local"
    broker: str | None = None  # redis://host:6379/0 or amqp://user:password@host//; required for celery
    name: str = Field("srd", min_length=1)  # the Celery queue (and task-name prefix) of this srd instance
    # Seconds an unacknowledged task waits before the broker hands it to another worker (Redis); null picks
    # limits.job_timeout x limits.attempts + limits.startup_timeout, and a value must exceed the first term.
    visibility_timeout: Seconds | None = Field(None, ge=1.0)
    max_queued: int = Field(64, ge=1)  # jobs sent to the broker and not yet ended, at most

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
            raise ValueError(f"expected a redis:// or amqp:// URL, got {value!r}")
        return value


FolderPath = Annotated[Path, Field(strict=False)]


def _resolve_against_config(value: Path | None, info: ValidationInfo) -> Path | None:
    base = (info.context or {}).get("base", Path.cwd())
    return None if value is None else (base / value.expanduser()).absolute()


class WebSettings(Section):
    """`srd web`, the status page and its metrics (a separate read-only process), and what the daemon
    keeps for it: the finished jobs' history and their before/after thumbnails."""

    socket: Annotated[Path | None, Field(strict=False)] = None  # default: web.sock beside status_file
    socket_mode: str = "0660"
    socket_group: str | None = None
    listen: str | None = None  # "127.0.0.1:PORT"; off by default
    allow_remote: bool = False
    allowed_hosts: Patterns = ()
    actions: bool = False
    token_file: Annotated[Path | None, Field(strict=False)] = None
    history: int = Field(200, ge=0, le=10_000)
    thumbnails: bool = True
    thumbnail_size: int = Field(320, ge=32, le=1024)

    @field_validator("socket", "token_file")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_against_config(value, info)

    @field_validator("socket_mode")
    @classmethod
    def _octal_mode(cls, value: str) -> str:
        try:
            mode = int(value, 8)
        except ValueError:
            raise ValueError(f'expected an octal mode like "0660", got {value!r}') from None
        if not 0 <= mode <= 0o777:
            raise ValueError(f'expected an octal mode like "0660", got {value!r}')
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    @model_validator(mode="after")
    def _remote_needs_consent(self) -> WebSettings:
        if self.listen is not None and not self.allow_remote:
            host, _ = parse_listen(self.listen)
            if host not in LOOPBACK_HOSTS:
                raise ValueError(
                    f"listen {self.listen!r} is not a loopback address; set allow_remote: true only behind"
                    " a reverse proxy with authentication (SECURITY.md)"
                )
        return self

    @property
    def notes(self) -> list[str]:
        """Settings that are valid but do less than they seem to (`srd check-config` says them)."""
        if self.listen is not None and self.actions and self.token_file is None:
            return [
                f"At 'web.actions': on over the UNIX socket only: over TCP ({self.listen}) every Retry and"
                " Delete is refused (403) without web.token_file"
            ]
        return []

    @property
    def mode(self) -> int:
        return int(self.socket_mode, 8)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def parse_listen(text: str) -> tuple[str, int]:
    """ "HOST:PORT" (IPv6 as "[::1]:PORT") as (host, port); ValueError otherwise. Port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8765, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class Config(Section):
    """The whole daemon configuration; relative paths are resolved against the config file's folder."""

    inbox: FolderPath
    outbox: FolderPath
    errors: FolderPath
    work: FolderPath
    archive: FolderPath | None  # None (written `delete`) means originals are deleted after success
    status_file: FolderPath = Path("status.json")  # default: <work>/status.json
    metrics_file: FolderPath | None = None  # a node_exporter textfile (.prom), rewritten with status_file
    watch: WatchSettings = WatchSettings()
    model: ModelSettings = ModelSettings()
    engine: EngineSettings = EngineSettings()
    output: OutputSettings = OutputSettings()
    limits: LimitsSettings = LimitsSettings()
    logging: LoggingSettings = LoggingSettings()
    queue: QueueSettings = QueueSettings()

    @property
    def visibility_timeout(self) -> float:
        """How long the broker waits for a task's acknowledgement before redelivering it."""
        limits = self.limits
        chosen = self.queue.visibility_timeout
        return chosen if chosen is not None else limits.job_timeout * limits.attempts + limits.startup_timeout

    @model_validator(mode="after")
    def _queue_needs(self) -> Config:
        queue, limits = self.queue, self.limits
        if queue.backend == "celery" and queue.broker is None:
            raise ValueError("queue.broker is required with queue.backend: celery")
        longest = limits.job_timeout * limits.attempts
        if queue.visibility_timeout is not None and queue.visibility_timeout <= longest:
            raise ValueError(
                "queue.visibility_timeout must exceed limits.job_timeout x limits.attempts"
                f" ({longest:g} s), or a running job would be delivered twice"
            )
        return self

    web: WebSettings = WebSettings()

    @property
    def state_dir(self) -> Path:
        """The daemon's own state: status_file's folder, which also holds the job history (.srd-history)."""
        return self.status_file.parent

    @field_validator("archive", mode="before")
    @classmethod
    def _archive_or_delete(cls, value: object) -> object:
        return None if value == DELETE else value

    @field_validator(
        "inbox", "outbox", "errors", "work", "archive", "status_file", "metrics_file", mode="before"
    )
    @classmethod
    def _non_empty_path(cls, value: object) -> object:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"expected a path, got {value!r}")
        return value

    @field_validator("inbox", "outbox", "errors", "work", "archive", "status_file", "metrics_file")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_against_config(value, info)

    @model_validator(mode="before")
    @classmethod
    def _default_status_file(cls, raw: object) -> object:
        if isinstance(raw, dict) and raw.get("status_file") is None and isinstance(raw.get("work"), str):
            return {**raw, "status_file": str(Path(raw["work"]) / "status.json")}
        return raw


def _key_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def problem_message(error: Any) -> str:
    """One pydantic error as srd says it: pydantic's "Value error, " prefix dropped, the value given
    named once (a validator's own message already names it)."""
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
    return [f"At '{_key_path(error['loc'])}': {problem_message(error)}" for error in exc.errors()]


def parse_config(raw: object, base: Path) -> Config:
    """Build a Config from a parsed YAML document, raising ConfigError that lists every problem."""
    if raw is None:
        raw = {}
    try:
        return Config.model_validate(raw, context={"base": base})
    except ValidationError as exc:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(describe(exc))) from None


_LAYOUT_KEYS = ("outbox", "errors", "work", "archive", "status_file", "metrics_file")


def _inside_inbox(inbox: Path, folders: Mapping[str, Path | None]) -> list[str]:
    resolved = inbox.resolve()
    return [
        f"At '{key}': {folder} is inside the inbox {inbox}; srd would pick up its own files"
        for key, folder in folders.items()
        if folder is not None and (folder.resolve() == resolved or resolved in folder.resolve().parents)
    ]


def layout_problems(config: Config) -> list[str]:
    """Folders placed inside the inbox, where srd would pick up its own files (checked before start)."""
    return _inside_inbox(config.inbox, {key: getattr(config, key) for key in _LAYOUT_KEYS})


def raw_layout_problems(path: Path) -> list[str]:
    """`layout_problems` of a config file that fails the schema, from the folder keys it does spell out
    as strings, so that `srd check-config` reports them beside the schema's problems."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("inbox"), str):
        return []
    base = path.parent.absolute()

    def resolved(value: object) -> Path | None:
        return base / Path(value).expanduser() if isinstance(value, str) and value else None

    inbox = resolved(raw["inbox"])
    assert inbox is not None
    return _inside_inbox(inbox, {key: resolved(raw.get(key)) for key in _LAYOUT_KEYS})


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
