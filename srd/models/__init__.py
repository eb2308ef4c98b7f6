"""Model families as data (waifu2x, Real-CUGAN, Real-ESRGAN, RealSR), the ncnn and waifu2x JSON readers,
and the registry that loads a pass of a model named or given as a path."""

from srd.models.family import DEFAULT_TILE, TILE_DEPENDENT_TILE, Channels, ModelFamily, Pipeline
from srd.models.ncnn import LAYER_READERS, load_ncnn, parse_param
from srd.models.registry import BUILTINS, LoadedModel, load_step
from srd.models.waifu2x_json import parse_json_model

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
