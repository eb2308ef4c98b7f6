"""One error hierarchy for srd; each class carries the exit code the CLI maps it to."""

from __future__ import annotations


class SrdError(Exception):
    """Base of every error srd raises on purpose."""

    exit_code: int = 1


class ConfigError(SrdError):
    """The configuration is invalid; the message lists every problem with its key path."""

    exit_code = 78  # EX_CONFIG from sysexits.h; systemd's unit excludes it from Restart=


class UsageError(SrdError):
    """The command line asks for something impossible."""

    exit_code = 64  # EX_USAGE


class ModelError(SrdError):
    """A model cannot be found, parsed or built (unknown layer type, bad weights file)."""

    exit_code = 65  # EX_DATAERR


class InputError(SrdError):
    """An input file cannot be processed for a clear, permanent reason; it goes to the errors folder."""

    exit_code = 65


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

    exit_code = 73  # EX_CANTCREAT


class WatchError(SrdError):
    """The inbox watcher died and could not be restarted, or the inbox disappeared."""

    exit_code = 74  # EX_IOERR


class WorkerError(SrdError):
    """The worker process cannot be started (model fails to load, crashes during compilation)."""

    exit_code = 70  # EX_SOFTWARE

    def __init__(self, message: str, exit_code: int = 70) -> None:
        super().__init__(message)
        self.exit_code = exit_code
