"""srd: a super-resolution daemon running waifu2x-family networks on JAX, and a Python API.

`srd.Upscaler` and `srd.list_models()` (srd/api.py) are loaded on first use, so `import srd` and `srd --help`
never import JAX or the models.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("srd")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from srd.api import ModelInfo, Upscaler, list_models

__all__ = ["ModelInfo", "Upscaler", "__version__", "list_models"]
_API = frozenset({"ModelInfo", "Upscaler", "list_models"})


def __getattr__(name: str) -> Any:
    """`srd.Upscaler`, `srd.list_models` and `srd.ModelInfo`, imported from srd.api when first asked for."""
    if name in _API:
        from srd import api

        return getattr(api, name)
    raise AttributeError(f"module 'srd' has no attribute {name!r}")
