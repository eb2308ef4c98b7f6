"""One error hierarchy for srd and the exit codes it maps to (sysexits.h), used by every entry point."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit status srd's commands use; systemd's unit keeps 64, 65, 73 and 78 out of Restart=."""

    OK = 0
    FAILURES = 1  # `srd upscale`: some inputs failed (each is printed); the rest were written
    NOT_RUNNING = 3  # `srd status`: the LSB "program is not running" status, as `systemctl status` uses
    USAGE = 64  # EX_USAGE: the command line asks for something impossible
    DATA = 65  # EX_DATAERR: a model or input that cannot be read
    SOFTWARE = 70  # EX_SOFTWARE: the worker cannot start (crashes while loading or compiling)
    CANT_CREATE = 73  # EX_CANTCREAT: a configured folder is missing, unwritable or inside the inbox
    IO = 74  # EX_IOERR: the inbox or its watcher was lost
    CONFIG = 78  # EX_CONFIG: the configuration is invalid (or names a model that cannot run)
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM (128 + 15), as a shell reports a process it ended


class Terminated(BaseException):
    """SIGTERM, raised in the main thread by `srd upscale`'s handler so that it unwinds as Ctrl-C does:
    the output being written is removed and what was left unfinished is said."""


class SrdError(Exception):
    """Base of every error srd raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILURES


class ConfigError(SrdError):
    """The configuration is invalid; the message lists every problem with its key path."""

    exit_code = ExitCode.CONFIG


class UsageError(SrdError):
    """The command line (or a setting) asks for something impossible."""

    exit_code = ExitCode.USAGE


class ModelError(SrdError):
    """A model cannot be found, parsed or built (unknown layer type, bad weights file)."""

    exit_code = ExitCode.DATA


class InputError(SrdError):
    """An input file cannot be processed for a clear, permanent reason; it goes to the errors folder."""

    exit_code = ExitCode.DATA


class UnsupportedFormatError(InputError):
    """The bytes are not an image format srd reads (text named .png, unknown format)."""


class CorruptImageError(InputError):
    """The file claims to be an image but cannot be decoded (truncated, damaged)."""


class ImageTooLargeError(InputError):
    """The image exceeds limits.max_pixels or limits.max_bytes (decompression bombs included)."""


class NotARegularFileError(InputError):
    """The inbox entry is a symlink, FIFO, device or folder; srd never reads through those."""


class FolderError(SrdError):
    """A configured folder is missing, not writable, or placed inside the inbox."""

    exit_code = ExitCode.CANT_CREATE


class WatchError(SrdError):
    """The inbox watcher died and could not be restarted, or the inbox disappeared."""

    exit_code = ExitCode.IO


class WorkerError(SrdError):
    """The worker process cannot be started (model fails to load, crashes during compilation)."""

    exit_code = ExitCode.SOFTWARE

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.SOFTWARE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
