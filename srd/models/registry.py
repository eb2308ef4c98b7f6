"""Find a model by built-in name or path and load one pass of it: the packaged families, waifu2x JSON
files, ncnn .param/.bin files, and folders of either named as waifu2x names them.

A model "step" is one network pass: a noise level and a scale of 1 or 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from srd.errors import ModelError
from srd.models import realcugan, realesrgan, waifu2x
from srd.models.family import ModelFamily, Pipeline, graph_defaults, graph_pipeline
from srd.models.ncnn import load_ncnn
from srd.models.waifu2x import file_noise, file_pre_upscale, folder_stem
from srd.models.waifu2x_json import parse_json_model
from srd.nn.geometry import infer_geometry
from srd.nn.graph import NetworkSpec, Weights
from srd.nn.ops import Op

BUILTINS: dict[str, ModelFamily] = {
    family.name: family for family in (*waifu2x.FAMILIES, *realcugan.FAMILIES, *realesrgan.FAMILIES)
}


@dataclass(frozen=True)
class LoadedModel:
    """One network ready to run, plus how the pipeline must feed it and the tile it defaults to."""

    label: str
    spec: NetworkSpec
    weights: Weights
    noise: int
    pipeline: Pipeline
    default_tile: int

    @property
    def scale(self) -> int:
        return self.spec.scale * self.pre_upscale

    @property
    def pre_upscale(self) -> int:
        return self.pipeline.pre_upscale

    @property
    def luminance(self) -> bool:
        return self.pipeline.luminance


def _geometry(
    label: str, arch: str, ops: tuple[Op, ...], weights: Weights, inp: str, out: str, ch: int
) -> NetworkSpec:
    try:
        return infer_geometry(arch, ops, weights, inp, out, ch)
    except ValueError as exc:
        raise ModelError(f"model {label}: {exc}") from exc


def _ncnn_spec(label: str, arch: str, param_text: str, bin_data: bytes) -> tuple[NetworkSpec, Weights]:
    graph = load_ncnn(param_text, bin_data)
    spec = _geometry(label, arch, graph.ops, graph.weights, graph.input, graph.output, graph.in_channels)
    return spec, graph.weights


def _builtin_step(family: ModelFamily, noise: int, scale: int) -> LoadedModel:
    stem = family.stem(noise, scale)
    folder = resources.files(family.package).joinpath("models")
    param = folder.joinpath(f"{stem}.param").read_text(encoding="utf-8")
    data = folder.joinpath(f"{stem}.bin").read_bytes()
    label = f"{family.name} noise={noise} scale={scale}"
    spec, weights = _ncnn_spec(label, family.arch, param, data)
    return LoadedModel(label, spec, weights, noise, family.pipeline_of(scale), family.default_tile)


def _from_graph(label: str, spec: NetworkSpec, weights: Weights, noise: int, pre_upscale: int) -> LoadedModel:
    """A model known only by its file: its defaults follow from what its graph is."""
    _, tile = graph_defaults(spec)
    return LoadedModel(label, spec, weights, noise, graph_pipeline(spec, pre_upscale), tile)


def _file_step(path: Path, noise: int) -> LoadedModel:
    noise_of_file = file_noise(path.name)
    if noise not in (-1, noise_of_file):
        raise ModelError(f"model file {path} is for noise level {noise_of_file}, not {noise}")
    pre = file_pre_upscale(path.name)
    try:
        if path.suffix == ".json":
            model = parse_json_model(path.read_bytes())
            ops = model.ops
            spec = _geometry(
                str(path), model.arch, ops, model.weights, "input", ops[-1].output, model.in_channels
            )
            return _from_graph(str(path), spec, model.weights, noise_of_file, pre)
        if path.suffix == ".param":
            text, data = path.read_text(encoding="utf-8"), path.with_suffix(".bin").read_bytes()
            spec, weights = _ncnn_spec(str(path), "ncnn", text, data)
            return _from_graph(str(path), spec, weights, noise_of_file, pre)
    except OSError as exc:
        raise ModelError(f"cannot read model file: {exc}") from exc
    raise ModelError(f"model file {path} is neither .json nor .param")


def _folder_step(folder: Path, noise: int, scale: int) -> LoadedModel:
    stem = folder_stem(noise, scale)
    for suffix in (".param", ".json"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return _file_step(candidate, noise)
    raise ModelError(f"model folder {folder} has no {stem}.param or {stem}.json (noise {noise}, {scale}x)")


def load_step(model: str, noise: int, scale: int) -> LoadedModel:
    """Load the network for one pass (noise level, 1x or 2x) of a built-in name, file or folder."""
    family = BUILTINS.get(model)
    if family is not None:
        return _builtin_step(family, noise, scale)
    path = Path(model)
    if path.is_dir():
        return _folder_step(path, noise, scale)
    if path.is_file():
        return _file_step(path, noise)
    raise ModelError(
        f"unknown model {model!r}: not a built-in ({', '.join(BUILTINS)}) and no such file or folder"
    )
