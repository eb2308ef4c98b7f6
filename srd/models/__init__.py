"""Model families as data (waifu2x, Real-CUGAN, Real-ESRGAN, RealSR), the ncnn and waifu2x JSON readers,
community models (srd.models.community), and the registry that loads a pass of a model named or given as
a path. The JAX-free names (the families, the catalog) load eagerly; the readers and the registry, which
trace networks with JAX, on first use, so `srd models` does not import JAX."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from srd.models.catalog import BUILTINS
from srd.models.family import DEFAULT_TILE, TILE_DEPENDENT_TILE, Channels, ModelFamily, Pipeline

if TYPE_CHECKING:
    from srd.models.ncnn import LAYER_READERS, load_ncnn, parse_param
    from srd.models.registry import LoadedModel, load_step
    from srd.models.waifu2x_json import parse_json_model

_LAZY = {
    "LAYER_READERS": "srd.models.ncnn",
    "load_ncnn": "srd.models.ncnn",
    "parse_param": "srd.models.ncnn",
    "LoadedModel": "srd.models.registry",
    "load_step": "srd.models.registry",
    "parse_json_model": "srd.models.waifu2x_json",
}

__all__ = [
    "BUILTINS",
    "DEFAULT_TILE",
    "LAYER_READERS",
    "TILE_DEPENDENT_TILE",
    "Channels",
    "LoadedModel",
    "ModelFamily",
    "Pipeline",
    "load_ncnn",
    "load_step",
    "parse_json_model",
    "parse_param",
]


def __getattr__(name: str) -> object:
    """Load the JAX-dependent names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'srd.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
