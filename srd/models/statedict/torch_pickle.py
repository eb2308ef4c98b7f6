"""Read PyTorch's checkpoint files (`torch.save`) without PyTorch and without running their code.

A checkpoint is a pickle. Unpickling calls whatever globals the file names, so a hostile file could run
anything; this reader resolves only an allow-list of globals, each to a function of ours that builds plain
values or numpy arrays (a tensor becomes an array over the bytes of its storage, bounds-checked), and
refuses every other global with a ModelError naming it. Two container formats exist:

- zip (torch >= 1.6): `<name>/data.pkl` plus one entry per storage, `<name>/data/<key>`;
- legacy (before 1.6): a magic number, protocol and system-info pickles, the main pickle, a pickled list
  of storage keys, then each storage's element count (int64) and raw bytes, in that list's order.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch's typed storage classes, by the name the pickle gives them: the element type of their bytes.
# BFloat16 has no numpy type: its 16-bit words are widened to float32 when the tensor is built.
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True)
class StorageType:
    """A storage class the pickle names (torch.FloatStorage, ...): only its element type matters."""

    name: str

    @property
    def dtype(self) -> str:
        return _STORAGE_DTYPES[self.name]

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


@dataclass
class Storage:
    """One storage's bytes and element type (legacy files fill `data` after the main pickle)."""

    kind: StorageType
    numel: int
    data: bytes | None = None

    def elements(self) -> npt.NDArray[Any]:
        if self.data is None:
            raise ModelError("a tensor's storage is missing from the file")
        if len(self.data) < self.numel * self.kind.itemsize:
            raise ModelError(
                f"a tensor storage holds {len(self.data)} bytes, fewer than its {self.numel} elements need"
            )
        raw = self.data[: self.numel * self.kind.itemsize]
        if self.kind.dtype == "bfloat16":
            words = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
            return words.view(np.float32)
        return np.frombuffer(raw, self.kind.dtype)


@dataclass(frozen=True)
class _StorageView:
    """A legacy file's view into part of a storage (offset and size in elements)."""

    base: Storage
    offset: int
    size: int


def _as_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ModelError(f"a tensor's {what} is not a tuple of non-negative integers: {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class _PendingTensor:
    """A tensor as the pickle describes it; built once every storage's bytes are known (a legacy file
    stores them after the pickle)."""

    storage: Storage | _StorageView
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def build(self) -> npt.NDArray[Any]:
        """The strided view of the storage, copied, after checking that every element it reads lies
        inside the storage (a hostile file must not make it read past it)."""
        start = self.offset
        if isinstance(self.storage, _StorageView):
            base, start = self.storage.base, start + self.storage.offset
        else:
            base = self.storage
        elements = base.elements()
        if int(np.prod(self.shape, dtype=np.int64)) == 0:
            return np.zeros(self.shape, elements.dtype)
        last = start + sum((n - 1) * s for n, s in zip(self.shape, self.strides, strict=True))
        if last >= elements.size:
            raise ModelError(
                f"a tensor of shape {self.shape} reads element {last} of a storage of {elements.size}:"
                " the file is damaged or lies about its sizes"
            )
        itemsize = elements.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            elements[start:], self.shape, tuple(s * itemsize for s in self.strides), writeable=False
        )
        return np.array(view)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _PendingTensor:
    """torch._utils._rebuild_tensor_v2: a tensor over a storage, built later by `_built`."""
    if not isinstance(storage, Storage | _StorageView) or not isinstance(offset, int) or offset < 0:
        raise ModelError("a tensor is not built from a storage and an offset")
    shape = _as_int_tuple(size, "size")
    strides = _as_int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise ModelError(f"a tensor has {len(shape)} dimensions but {len(strides)} strides")
    return _PendingTensor(storage, offset, shape, strides)


def _built(value: Any, depth: int = 0) -> Any:
    """`value` with every pending tensor in its dicts, lists and tuples built as an array."""
    if depth > 64:
        raise ModelError("the checkpoint nests containers too deeply")
    if isinstance(value, _PendingTensor):
        return value.build()
    if isinstance(value, dict):
        return {k: _built(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_built(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_built(v, depth + 1) for v in value)
    return value


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    """torch._utils._rebuild_parameter(_with_state): a Parameter is its tensor."""
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    """torch._tensor._rebuild_from_type_v2: a tensor (or Parameter) rebuilt by an allowed function."""
    if not callable(func) or new_type not in (_TENSOR, _PARAMETER) or not isinstance(args, tuple):
        raise ModelError("a tensor subclass that srd does not read")
    return func(*args)


@dataclass(frozen=True)
class _Marker:
    """A class the pickle names only to pass along (torch.Tensor, torch.nn.Parameter)."""

    name: str


_TENSOR = _Marker("torch.Tensor")
_PARAMETER = _Marker("torch.nn.parameter.Parameter")


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy.core.multiarray.scalar: a numpy scalar from its dtype and bytes (training statistics)."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise ModelError("a numpy scalar srd does not read")
    if len(data) != dtype.itemsize:
        raise ModelError("a numpy scalar of the wrong size")
    return np.frombuffer(data, dtype)[0]


def _numpy_dtype(name: Any, *_: Any) -> np.dtype[Any]:
    if not isinstance(name, str):
        raise ModelError("a numpy dtype srd does not read")
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise ModelError("a numpy object dtype")
    return dtype


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """_codecs.encode, as protocol-2 pickles spell bytes (a numpy scalar's): latin-1 text only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ModelError("an encoded string srd does not read")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_bytes,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): _TENSOR,
    ("torch.nn.parameter", "Parameter"): _PARAMETER,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    **{("torch", name): StorageType(name) for name in _STORAGE_DTYPES},
}


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-list and hands storages to `load_storage`."""

    def __init__(self, stream: IO[bytes], load_storage: Callable[[tuple[Any, ...]], Any]) -> None:
        super().__init__(stream)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise ModelError(
                f"the checkpoint names the Python global {module}.{name}, which srd refuses to load: a"
                " model file needs only tensors and plain containers (loading other globals could run"
                " code from the file)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise ModelError(f"the checkpoint refers to an unknown persistent object {pid!r:.80}")
        return self._load_storage(pid)


def _unpickle(data: bytes | IO[bytes], load_storage: Callable[[tuple[Any, ...]], Any]) -> Any:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        return _SafeUnpickler(stream, load_storage).load()
    except ModelError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ModelError(f"the checkpoint's pickle is damaged: {exc}") from exc
    except (AttributeError, ImportError, struct.error, MemoryError, RecursionError) as exc:
        raise ModelError(f"the checkpoint's pickle cannot be read: {exc}") from exc


def _storage_pid(pid: tuple[Any, ...]) -> tuple[StorageType, str, int]:
    if len(pid) < 5 or not isinstance(pid[1], StorageType) or not isinstance(pid[4], int) or pid[4] < 0:
        raise ModelError(f"the checkpoint has a malformed storage reference {pid!r:.80}")
    return pid[1], str(pid[2]), pid[4]


def _load_zip(archive: zipfile.ZipFile) -> Any:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ModelError("a zip file that is not a PyTorch checkpoint (no single <name>/data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    storages: dict[str, Storage] = {}

    def load_storage(pid: tuple[Any, ...]) -> Storage:
        kind, key, numel = _storage_pid(pid)
        if key not in storages:
            try:
                data = archive.read(f"{prefix}data/{key}")
            except KeyError as exc:
                raise ModelError(f"the checkpoint lacks its storage data/{key}") from exc
            storages[key] = Storage(kind, numel, data)
        return storages[key]

    return _unpickle(archive.read(pickles[0]), load_storage)


def _load_legacy(stream: IO[bytes]) -> Any:
    def no_storage(pid: tuple[Any, ...]) -> None:
        raise ModelError("the checkpoint's header refers to tensor data")

    if _unpickle(stream, no_storage) != _LEGACY_MAGIC:
        raise ModelError("not a PyTorch checkpoint (neither a zip nor the legacy magic number)")
    if _unpickle(stream, no_storage) != _LEGACY_PROTOCOL:
        raise ModelError("a legacy PyTorch checkpoint of an unknown protocol version")
    info = _unpickle(stream, no_storage)
    if not isinstance(info, dict) or not info.get("little_endian", True):
        raise ModelError("a legacy PyTorch checkpoint saved on a big-endian machine")
    storages: dict[str, Storage] = {}

    def load_storage(pid: tuple[Any, ...]) -> Storage | _StorageView:
        kind, key, numel = _storage_pid(pid)
        base = storages.setdefault(key, Storage(kind, numel))
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return base
        if not isinstance(view, tuple) or len(view) != 3:
            raise ModelError("a legacy storage view that srd does not read")
        _, offset, size = view
        if not isinstance(offset, int) or not isinstance(size, int) or offset < 0 or size < 0:
            raise ModelError("a legacy storage view with a bad offset or size")
        return _StorageView(base, offset, size)

    result = _unpickle(stream, load_storage)
    keys = _unpickle(stream, no_storage)
    if not isinstance(keys, list):
        raise ModelError("a legacy PyTorch checkpoint without its list of storages")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise ModelError(f"a legacy checkpoint lists storage {key!r}, which no tensor uses")
        header = stream.read(8)
        if len(header) != 8:
            raise ModelError("the checkpoint is truncated: a tensor's data is missing")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise ModelError(f"a legacy storage holds {count} elements, its tensors say {storage.numel}")
        nbytes = count * storage.kind.itemsize
        storage.data = stream.read(nbytes)
        if len(storage.data) != nbytes:
            raise ModelError("the checkpoint is truncated: a tensor's data is cut short")
    if any(s.data is None for s in storages.values()):
        raise ModelError("a legacy checkpoint lacks the data of some of its tensors")
    return result


def load_torch_checkpoint(data: bytes) -> Any:
    """The object a `torch.save` file holds, with every tensor as a numpy array (bfloat16 as float32);
    ModelError for anything that is not such a file or that names a global outside the allow-list."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return _built(_load_zip(archive))
        except zipfile.BadZipFile as exc:
            raise ModelError(f"a damaged PyTorch checkpoint (zip): {exc}") from exc
        except (OSError, EOFError, zipfile.LargeZipFile) as exc:
            raise ModelError(f"a PyTorch checkpoint (zip) that cannot be read: {exc}") from exc
    return _built(_load_legacy(io.BytesIO(data)))


__all__ = ["load_torch_checkpoint"]
