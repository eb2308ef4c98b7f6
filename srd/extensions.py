"""srd's compiled extensions (srd/_native, built by setup.py), each optional: a build without a compiler
has none of them, and every caller falls back to its pure Python/JAX equivalent."""

from __future__ import annotations

import importlib
from types import ModuleType


def load_extension(name: str) -> ModuleType | None:
    """The extension module `srd.<name>` (e.g. "_pngfilter"), or None where it was not built."""
    try:
        # import_module, not `from srd import`: srd/__init__.py's lazy __getattr__ would type it as Any
        return importlib.import_module(f"srd.{name}")
    except ImportError:
        return None
