"""The `srd` command line: a thin layer that parses arguments and maps srd errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from srd.cli.upscale_options import add_upscale_parser
from srd.errors import ExitCode, SrdError


def _build_parser() -> argparse.ArgumentParser:
    from srd import __version__

    parser = argparse.ArgumentParser(prog="srd", description="Super-resolution daemon (waifu2x on JAX).")
    parser.add_argument("--version", action="version", version=f"srd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    add_upscale_parser(sub)

    sub.add_parser("models", help="list the available models")

    config_help = "YAML configuration file (default: /etc/srd/config.yaml, else ./srd.yaml)"
    run = sub.add_parser("run", help="run the watch-folder daemon in the foreground")
    run.add_argument("--config", type=Path, default=None, help=config_help)

    check = sub.add_parser(
        "check-config", help="run every start-up check on a config and print every problem"
    )
    check.add_argument("config_file", type=Path, nargs="?", default=None, metavar="FILE", help=config_help)
    check.add_argument("--config", type=Path, default=None, help="the same as FILE")

    status = sub.add_parser("status", help="print the running daemon's queue and counters")
    status.add_argument("--config", type=Path, default=None, help=config_help)
    return parser


def _config_path(args: argparse.Namespace) -> Path:
    from srd.settings import default_config_path

    named: Path | None = getattr(args, "config_file", None) or args.config
    return named if named is not None else default_config_path()


def _dispatch(args: argparse.Namespace) -> int:
    # Imports are local so that `srd --help`, `srd status` and the daemon's own process never import JAX.
    if args.command == "upscale":
        from srd.runtime import configure_runtime

        configure_runtime()  # before srd.cli.upscale imports JAX
        from srd.cli.upscale import upscale_command

        return upscale_command(args)
    if args.command == "models":
        from srd.models.registry import print_models

        return print_models()
    if args.command == "run":
        from srd.daemon.service import run_daemon

        return run_daemon(_config_path(args))
    if args.command == "check-config":
        from srd.cli.check_config import check_config_command

        return check_config_command(_config_path(args))
    if args.command == "status":
        from srd.cli.status import status_command

        return status_command(_config_path(args))
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


if __name__ == "__main__":
    sys.exit(main())
