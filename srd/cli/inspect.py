"""`srd models --inspect FILE`: what a model file is, as srd reads it (its architecture and hyperparameters
detected from the weights for a community model), and what it costs to run."""

from __future__ import annotations

from pathlib import Path

from srd.errors import ModelError
from srd.models.registry import LoadedModel, is_community_model, load_step
from srd.nn.cost import gflop_per_output_mpx


def _load(path: Path) -> LoadedModel:
    if not path.is_file():
        raise ModelError(f"no such model file: {path}")
    if is_community_model(str(path)):
        return load_step(str(path), -1, 0)
    return load_step(str(path), -1, 2)


def inspect_command(path: Path) -> int:
    """Print the model file's architecture, scale, channels, hyperparameters and GFLOP per output
    megapixel; a ModelError (exit 65) for a file srd cannot read."""
    model = _load(path)
    spec = model.spec
    print(f"file          {path}")
    print(f"architecture  {spec.arch}")
    print(f"scale         {model.scale}x")
    print(f"channels      {spec.in_channels} in, {spec.out_channels} out")
    width = max([12, *(len(name) + 1 for name, _ in model.hyperparameters)])  # a column past the longest
    for name, value in model.hyperparameters:
        print(f"  {name:<{width}}{value}")
    weights = sum(a.size for layer in model.weights.values() for a in layer.values())
    print(f"parameters    {weights / 1e6:.2f} M")
    print(f"GFLOP/Mpx     {gflop_per_output_mpx(spec, model.weights):.1f} (per output megapixel)")
    print(f"default tile  {model.default_tile} px, {model.pipeline.context or spec.context} px context")
    return 0
