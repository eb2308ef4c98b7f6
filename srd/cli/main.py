"""The `srd` command line: a thin layer that parses arguments and maps srd errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from srd.errors import ExitCode, SrdError
from srd.imaging.formats import WRITE_NAMES
from srd.nn.graph import CONV_ALGORITHMS
from srd.settings import DEFAULT_MODEL


def _build_parser() -> argparse.ArgumentParser:
    from srd import __version__

    parser = argparse.ArgumentParser(prog="srd", description="Super-resolution daemon (waifu2x on JAX).")
    parser.add_argument("--version", action="version", version=f"srd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upscale", help="upscale image files or folders once, then exit")
    up.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders (recursive)"
    )
    up.add_argument(
        "-o", "--outdir", type=Path, default=None, help="output folder (default: beside each input)"
    )
    up.add_argument(
        "-m", "--model", default=DEFAULT_MODEL, help="built-in model name or a model path (see `srd models`)"
    )
    up.add_argument(
        "-n", "--noise", type=int, default=-1, choices=[-1, 0, 1, 2, 3], help="noise reduction level"
    )
    up.add_argument("-s", "--scale", type=int, default=2, choices=[1, 2, 4], help="scale factor")
    up.add_argument(
        "--size", default=None, metavar="WxH", help="exact output size (Lanczos from the next 2^k result)"
    )
    up.add_argument("--tile", type=int, default=None, help="tile size in input pixels (default: per model)")
    up.add_argument("--batch", type=int, default=1, help="tiles per network call")
    up.add_argument(
        "--tta", action="store_true", help="8-way test-time augmentation (8x slower, slightly better)"
    )
    up.add_argument("-f", "--format", default="png", choices=list(WRITE_NAMES), help="output format")
    up.add_argument("-q", "--quality", type=int, default=95, help="JPEG/WebP quality")
    up.add_argument("--overwrite", action="store_true", help="replace existing output files")
    up.add_argument("--device", default="auto", help="JAX platform: auto, cpu, gpu or tpu")

    up.add_argument(
        "--conv",
        default="auto",
        choices=list(CONV_ALGORITHMS),
        help="3x3 convolution algorithm: native (srd's Winograd F(6x6,3x3) CPU kernel), native-bf16 (the"
        " same with bfloat16 matmuls on AMX: faster, ~0.03 dB less PSNR), direct (lax.conv), winograd"
        " (F(4x4,3x3) in jnp, slow); auto = native on the CPU when built, else direct",
    )
    up.add_argument(
        "--cache-dir",
        default=None,
        help="JAX compilation cache (default: $XDG_CACHE_HOME/srd/jax; 'none' disables it)",
    )

    sub.add_parser("models", help="list the available models")

    run = sub.add_parser("run", help="run the watch-folder daemon in the foreground")
    run.add_argument("--config", type=Path, required=True, help="YAML configuration file")

    check = sub.add_parser("check-config", help="validate a configuration file and print every problem")
    check.add_argument("config", type=Path)

    status = sub.add_parser("status", help="print the running daemon's queue and counters")
    status.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    return parser


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

        return run_daemon(args.config)
    if args.command == "check-config":
        from srd.cli.check_config import check_config_command

        return check_config_command(args.config)
    if args.command == "status":
        from srd.cli.status import status_command

        return status_command(args.config)
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
