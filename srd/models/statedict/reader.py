"""A weights file to a flat state dict: safetensors through the `safetensors` package (whose Rust reader
checks the header's offsets and sizes against the file), PyTorch checkpoints through srd's allow-listed
unpickler (srd.models.statedict.torch_pickle); then the training wrappers unwrapped and the prefixes of
DataParallel and of GAN generators stripped, as spandrel's canonicalize_state_dict does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError
from srd.models.statedict.torch_pickle import load_torch_checkpoint

StateDict = dict[str, npt.NDArray[np.float32]]
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
SUFFIXES = (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX)
# Where training code keeps the weights, most wanted first (an EMA copy is what BasicSR releases).
_WRAPPERS = ("params_ema", "params-ema", "params", "state_dict", "model", "net", "network", "generator")
_PREFIXES = ("module.", "netG.", "model.", "generator.")
_SAFETENSORS_TYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}
_BF16 = "BF16"


def _safetensors(data: bytes) -> dict[str, Any]:
    try:
        from safetensors import SafetensorError, deserialize
    except ImportError as exc:  # pragma: no cover - a dependency of srd
        raise ModelError(
            "reading .safetensors needs the safetensors package: pip install safetensors"
        ) from exc
    try:
        entries = deserialize(data)  # type: ignore[no-untyped-call]
    except SafetensorError as exc:
        raise ModelError(f"not a valid safetensors file: {exc}") from exc
    tensors: dict[str, Any] = {}
    for name, entry in entries:
        dtype, shape, raw = entry["dtype"], tuple(entry["shape"]), entry["data"]
        if dtype == _BF16:
            words = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            array = words.view(np.float32)
        elif dtype in _SAFETENSORS_TYPES:
            array = np.frombuffer(raw, _SAFETENSORS_TYPES[dtype])
        else:
            raise ModelError(f"safetensors tensor {name!r} has type {dtype}, which srd does not read")
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise ModelError(f"safetensors tensor {name!r}: {array.size} values for shape {shape}")
        tensors[name] = array.reshape(shape)
    return tensors


def _unwrapped(obj: Any) -> Mapping[str, Any]:
    """The mapping of tensors inside a checkpoint's training wrappers (at most a few levels deep)."""
    for _ in range(4):
        if not isinstance(obj, Mapping):
            break
        if any(isinstance(v, np.ndarray) for v in obj.values()):
            return obj
        inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if isinstance(obj, Mapping) and any(isinstance(v, np.ndarray) for v in obj.values()):
        return obj
    raise ModelError("the file holds no state dict of tensors (checked params_ema, params, state_dict, ...)")


def canonical_state_dict(obj: Any) -> StateDict:
    """The weights of a loaded checkpoint as {key: float32 array}: wrappers unwrapped, the keys' common
    DataParallel / generator prefix stripped, entries that are not arrays (step counters) dropped."""
    tensors = {str(k): v for k, v in _unwrapped(obj).items() if isinstance(v, np.ndarray)}
    for prefix in _PREFIXES:
        # "model." only where no key is the old ESRGAN layout's own "model.N..." (digits after it).
        if tensors and all(k.startswith(prefix) for k in tensors):
            stripped = {k[len(prefix) :]: v for k, v in tensors.items()}
            if prefix == "model." and all(k.split(".", 1)[0].isdigit() for k in stripped):
                continue
            tensors = stripped
    state: StateDict = {}
    for key, value in tensors.items():
        if value.dtype.kind not in "fiub":
            raise ModelError(f"tensor {key!r} has type {value.dtype}, not a number")
        state[key] = np.ascontiguousarray(value, dtype=np.float32)
    return state


def read_state_dict(path: Path) -> StateDict:
    """The state dict of a .pth/.pt/.ckpt/.bin (PyTorch) or .safetensors file; ModelError for a file
    that is not one, is damaged, or names Python globals outside the tensors' allow-list."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file: {exc}") from exc
    if not data:
        raise ModelError(f"model file {path} is empty")
    try:
        if path.suffix.lower() == SAFETENSORS_SUFFIX:
            return canonical_state_dict(_safetensors(data))
        return canonical_state_dict(load_torch_checkpoint(data))
    except ModelError as exc:
        raise ModelError(f"model file {path}: {exc}") from exc
