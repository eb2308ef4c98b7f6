"""Find a model by built-in name or path and load one pass of it: the packaged families, waifu2x JSON
files, ncnn .param/.bin files, folders of either named as waifu2x names them, and community models
(PyTorch .pth/.ckpt and .safetensors files, srd.models.community).

A model "step" is one network pass: a noise level and a scale of 1 or 2.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from srd.errors import ModelError
from srd.models.catalog import BUILTINS
from srd.models.family import (
    COMMUNITY_TILE,
    ModelFamily,
    Pipeline,
    community_pipeline,
    graph_defaults,
    graph_pipeline,
)
from srd.models.ncnn import load_ncnn
from srd.models.waifu2x import file_noise, file_pre_upscale, folder_stem
from srd.models.waifu2x_json import parse_json_model
from srd.nn.geometry import FEW_PROBES, infer_geometry
from srd.nn.graph import NetworkSpec, Weights
from srd.nn.ops import Op


@dataclass(frozen=True)
class LoadedModel:
    """One network ready to run, plus how the pipeline must feed it and the tile it defaults to."""

    label: str
    spec: NetworkSpec
    weights: Weights
    noise: int
    pipeline: Pipeline
    default_tile: int
    # What was detected about a community model file: (name, value), e.g. ("blocks", "23").
    hyperparameters: tuple[tuple[str, str], ...] = ()

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


def _community_step(path: Path, noise: int) -> LoadedModel:
    """A community model file: its network as detected, run as the ESRGAN family's programs run theirs
    (one file read per file version: `srd upscale` asks for its scale before the engine loads it)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"cannot read model file: {exc}") from exc
    return _community_cached(path.resolve(), stat.st_mtime_ns, stat.st_size, noise)


@functools.lru_cache(maxsize=4)
def _community_cached(path: Path, mtime_ns: int, size: int, noise: int) -> LoadedModel:
    if noise >= 0:
        raise ModelError(
            f"model file {path} has no noise levels: leave the noise level at -1 (its training decides"
            " what it removes)"
        )
    from srd.models.community import read_network  # the architectures load when a file needs them

    net = read_network(path)
    if net.in_channels not in (1, 3) or net.out_channels != net.in_channels:
        raise ModelError(
            f"model file {path}: {net.describe()} maps {net.in_channels} channels to {net.out_channels};"
            " srd runs models of 3 (RGB) or 1 (gray) channels in and out"
        )
    try:  # a 23-block RRDB traces for 0.15 s a probe: the few that tell its alignment
        spec = infer_geometry(
            net.arch, net.ops, net.weights, "input", net.output, net.in_channels, FEW_PROBES
        )
    except ValueError as exc:
        raise ModelError(f"model {path}: {exc}") from exc
    if spec.scale != net.scale:
        raise ModelError(f"model file {path}: detected {net.scale}x but the network computes {spec.scale}x")
    label = f"{path.name}: {net.describe()}"
    pipeline = community_pipeline(spec)
    return LoadedModel(label, spec, net.weights, -1, pipeline, COMMUNITY_TILE, net.hyperparameters)


def _file_step(path: Path, noise: int) -> LoadedModel:
    from srd.models.community import is_community_file

    if is_community_file(path):
        return _community_step(path, noise)
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
    raise ModelError(
        f"model file {path} is not a model srd reads (.json, .param, .pth, .pt, .ckpt, .safetensors)"
    )


def folder_has_pass(folder: Path, noise: int, scale: int) -> bool:
    """Whether a waifu2x-style model folder has the file of this pass (.param or .json)."""
    stem = folder_stem(noise, scale)
    return any((folder / f"{stem}{suffix}").is_file() for suffix in (".param", ".json"))


def _folder_step(folder: Path, noise: int, scale: int) -> LoadedModel:
    stem = folder_stem(noise, scale)
    for suffix in (".param", ".json"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return _file_step(candidate, noise)
    raise ModelError(f"model folder {folder} has no {stem}.param or {stem}.json (noise {noise}, {scale}x)")


def is_community_model(model: str) -> bool:
    """Whether `model` names a community model file (.pth, .ckpt, .safetensors, ...) rather than a
    built-in, a waifu2x/ncnn file or a folder."""
    if model in BUILTINS:  # (a built-in's run never imports the community architectures)
        return False
    from srd.models.community import is_community_file

    return is_community_file(Path(model))


def native_scale(model: str, noise: int = -1) -> int:
    """The scale a model runs at when none is asked for: a community file's own, a built-in family's
    largest at this noise level where it has no 2x pass (the x4-only models), else 2."""
    if is_community_model(model):
        return load_step(model, -1, 0).scale
    family = BUILTINS.get(model)
    if family is not None:
        scales = family.native_scales(noise) or family.native_scales(-1)
        if scales and 2 not in scales:
            return max(scales)
    return 2


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
