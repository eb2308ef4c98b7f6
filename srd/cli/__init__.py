"""The `srd` command line: one module per command, `main` the console script."""

from srd.cli.main import main

__all__ = ["main"]
