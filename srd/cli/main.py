"""The `srd` command line: a thin layer that parses arguments and maps srd errors to exit codes."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from srd.cli.upscale_options import add_upscale_parser
from srd.errors import ExitCode, SrdError, Terminated

EXIT_CODES = (
    "exit codes: 0 ok; 1 some inputs failed (upscale); 3 not running (status); 64 usage error; "
    "65 unreadable model or input; 70 the worker cannot start; 73 folder problem; 74 inbox or watcher lost; "
    "78 bad configuration; 130 interrupted (Ctrl-C); 143 stopped by SIGTERM (upscale)"
)
CONFIG_HELP = "YAML configuration file (default: /etc/srd/config.yaml, else ./srd.yaml)"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has a value (not None, not a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EXIT_CODES,
        formatter_class=HelpFormatter,
    )
    return parser


def _build_parser() -> argparse.ArgumentParser:
    from srd import __version__

    parser = argparse.ArgumentParser(
        prog="srd", description="Super-resolution daemon (waifu2x on JAX).", epilog=EXIT_CODES
    )
    parser.add_argument("--version", action="version", version=f"srd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_upscale_parser(sub, EXIT_CODES, HelpFormatter)
    models = _command(
        sub,
        "models",
        "list the available models, or inspect a model file",
        "List the built-in models with their scales and noise levels, and the model files srd reads; with"
        " --inspect FILE, say what a model file is: its architecture, scale, channels, hyperparameters and"
        " GFLOP per output megapixel.",
    )
    models.add_argument(
        "--inspect",
        type=Path,
        default=None,
        metavar="FILE",
        help="a .pth, .ckpt, .safetensors, .json or .param model file",
    )
    run = _command(
        sub,
        "run",
        "run the watch-folder daemon in the foreground",
        "Watch the config's inbox and upscale every image dropped into it: results in the outbox, failed"
        " originals in the errors folder with NAME.error.json saying why. Runs until SIGTERM or Ctrl-C"
        " (jobs in flight get limits.stop_grace to finish). Under systemd it reports READY, STATUS and"
        " WATCHDOG (see systemd/srd.service).",
    )
    run.add_argument("--config", type=Path, default=None, help=CONFIG_HELP)
    worker = _command(
        sub,
        "worker",
        "run jobs from the broker on this host (queue.backend celery)",
        "Consume the jobs `srd run` sends to the broker named by queue.broker and run each through a"
        " supervised worker process, one per device (engine.devices), publishing into the shared outbox."
        " Every host mounts the same folders at the same paths. Runs until SIGTERM (the jobs running"
        " finish first; see systemd/srd-worker.service). Needs `pip install 'srd[celery]'`.",
    )
    worker.add_argument("--config", type=Path, default=None, help=CONFIG_HELP)
    check = _command(
        sub,
        "check-config",
        "run every start-up check on a config, print every problem",
        "Check a config as `srd run` would at start-up, short of compiling: the schema, the folders,"
        " the model for its noise and scale, the device and the convolution algorithm. Every problem is"
        " printed with its key; the exit code is the one `srd run` would exit with.",
    )
    check.add_argument("config_file", type=Path, nargs="?", default=None, metavar="FILE", help=CONFIG_HELP)
    check.add_argument("--config", type=Path, default=None, help="the same as FILE")
    status = _command(
        sub,
        "status",
        "print the running daemon's queue and counters",
        "Read the status file the daemon keeps current (status_file in the config): state, queue,"
        " jobs in flight, done and failed counts, the last error.",
    )
    status.add_argument("--config", type=Path, default=None, help=CONFIG_HELP)
    web = _command(
        sub,
        "web",
        "serve the status page and /metrics (read-only, separate from the daemon)",
        "Serve a status page (queue, jobs in flight with progress, finished jobs with before/after"
        " thumbnails, errors with their reason), /api/status, /api/jobs, /metrics (Prometheus), /healthz"
        " and /readyz, from the state folder the daemon keeps. Listens on the UNIX socket web.socket"
        " (default: web.sock beside status_file), on web.listen when set, or on the sockets systemd passes"
        " (systemd/srd-web.socket). Runs until SIGTERM or Ctrl-C.",
    )
    web.add_argument("--config", type=Path, default=None, help=CONFIG_HELP)
    return parser


def _config_path(args: argparse.Namespace) -> Path:
    from srd.settings import default_config_path

    named: Path | None = getattr(args, "config_file", None) or args.config
    return named if named is not None else default_config_path()


# The commands that take only the config file: the module and function that run each, imported on use.
_CONFIG_COMMANDS = {
    "run": ("srd.daemon.service", "run_daemon"),
    "worker": ("srd.cli.worker", "worker_command"),
    "check-config": ("srd.cli.check_config", "check_config_command"),
    "status": ("srd.cli.status", "status_command"),
    "web": ("srd.cli.web", "web_command"),
}


def _dispatch(args: argparse.Namespace) -> int:
    # Imports are local so that `srd --help`, `srd status` and the daemon's own process never import JAX.
    if args.command == "upscale":
        from srd.runtime import configure_runtime

        configure_runtime()  # before srd.cli.upscale imports JAX
        from srd.cli.upscale import upscale_command

        return upscale_command(args)
    if args.command == "models":
        if args.inspect is not None:
            from srd.runtime import configure_runtime

            configure_runtime()  # before srd.cli.inspect imports JAX
            from srd.cli.inspect import inspect_command

            return inspect_command(args.inspect)
        from srd.cli.models import models_command

        return models_command()
    if args.command in _CONFIG_COMMANDS:
        module, name = _CONFIG_COMMANDS[args.command]
        command: Callable[[Path], int] = getattr(importlib.import_module(module), name)
        return command(_config_path(args))
    raise AssertionError(f"unhandled command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `srd` console script; every exit status is an ExitCode."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version exit 0, usage mistakes exit 2
        return ExitCode.OK if exc.code in (0, None) else ExitCode.USAGE
    try:
        return _dispatch(args)
    except SrdError as exc:
        print(f"srd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Terminated:
        return ExitCode.TERMINATED
    except BrokenPipeError:  # `srd models | head`: the reader has gone; nothing left to say
        sys.stderr.close()
        return ExitCode.OK


def console_main() -> int:
    """The `srd` console script and `python -m srd`: `main`, then the process ends. At exit the interpreter
    would run the cycle collector over every object JAX's and srd's imports made (about 100k): 0.2 s of a
    one-shot `srd upscale`. Frozen, they are left to the OS with the process (files are all closed and
    flushed by then; only `main`'s callers in-process, such as the tests, keep collecting)."""
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console_main())
