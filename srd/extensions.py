"""srd's compiled extensions (srd/_native, built by setup.py), each optional: a build without a compiler
has none of them, and every caller falls back to its pure Python/JAX equivalent, several times slower, so
a missing extension is said once per process (a RuntimeWarning) rather than left to be found in a
profile: most often srd was imported from a source checkout that was never built (`python -c "import srd"`
in the repository root finds its srd/ before the installed one)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from types import ModuleType

_PACKAGE = Path(__file__).resolve().parent
_warned: set[str] = set()  # holds "said" once a missing extension was warned about


def _warn_missing(name: str) -> None:
    if _warned:
        return
    _warned.add("said")
    if (_PACKAGE.parent / "setup.py").is_file():
        why = (
            f"srd is imported from the source tree {_PACKAGE}, whose compiled extensions are not built;"
            " run from outside the checkout to use the installed srd, or build them in place with"
            " `python setup.py build_ext --inplace`"
        )
    else:
        why = "srd was installed without a C++17 compiler; reinstall with one (g++ or clang)"
    warnings.warn(
        f"srd's compiled extension srd.{name} is missing, so srd runs its slower fallbacks (the CPU"
        f" convolutions about 2-7x slower): {why}",
        RuntimeWarning,
        stacklevel=3,
    )


def load_extension(name: str) -> ModuleType | None:
    """The extension module `srd.<name>` (e.g. "_pngfilter"), or None where it was not built (then a
    RuntimeWarning, once per process, says so and why)."""
    try:
        # import_module, not `from srd import`: srd/__init__.py's lazy __getattr__ would type it as Any
        return importlib.import_module(f"srd.{name}")
    except ImportError:
        _warn_missing(name)
        return None
