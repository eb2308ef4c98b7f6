"""The native Winograd F(6x6, 3x3) convolution (srd/_native, an XLA FFI custom call) from JAX.

On the CPU, a stride-1 3x3 convolution can run as `srd_winograd_f63`: 5x fewer multiplies than direct
convolution, with the transforms and the 64 matmuls of a block of tiles kept in cache (see
srd/_native/wino_kernel.inc). Channel counts are padded inside the kernel (inputs to a multiple of 16,
outputs to 32), so layers with 1 or 3 channels run natively too. Weights are transformed and
packed once at load (`pack_kernel`). The extension is optional at build time; `available()` says
whether it was built and loads. `NATIVE` and `NATIVE_BF16` (srd.nn.conv.native_backend) are the conv
backends built on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.extensions import load_extension
from srd.nn.conv.bfloat16 import pack_pairs
from srd.nn.conv.narrow import TARGET as DIRECT_TARGET
from srd.nn.conv.operands import (
    ACTIVATIONS,
    activation_operand,
    epilogue_operand,
    extent_operand,
    output_dtype,
)
from srd.nn.conv.patch import TARGET as PATCH_TARGET
from srd.nn.conv.patch import TARGET_BF16 as PATCH_TARGET_BF16
from srd.nn.conv.winograd_transforms import transform_kernel

TARGET = "srd_winograd_f63"
TARGET_BF16 = "srd_winograd_f63_bf16"
ISA_CODES = {"auto": 0, "generic": 1, "avx2": 2, "avx512": 3, "amx": 4, "avx512bf16": 5}
BF16_ISAS = ("amx", "avx512bf16")  # the variants that take pack_kernel_bf16's weights
ACTIVATION_CODES = {activation.value: code for code, activation in enumerate(ACTIVATIONS)}
IN_MULTIPLE = 16  # the kernel's packed input channels
OUT_PANEL = 32  # its packed output channels (one register block's width)
NARROW_PANEL = 16  # the float32 kernel's panel for layers with at most 16 outputs (the image's 3, 12 phases)
IN_MULTIPLE_BF16 = 32  # the AMX kernel's: one tile row is 32 bfloat16 input channels


@cache
def _module() -> ModuleType | None:
    module = load_extension("_winograd")
    if module is None:
        return None
    jax.ffi.register_ffi_target(TARGET, module.handler(), platform="cpu")
    jax.ffi.register_ffi_target(TARGET_BF16, module.handler_bf16(), platform="cpu")
    jax.ffi.register_ffi_target(DIRECT_TARGET, module.handler_direct(), platform="cpu")
    jax.ffi.register_ffi_target(PATCH_TARGET, module.handler_patch(), platform="cpu")
    jax.ffi.register_ffi_target(PATCH_TARGET_BF16, module.handler_patch_bf16(), platform="cpu")
    return module


def available() -> bool:
    """Whether the native kernel was built and is registered with XLA."""
    return _module() is not None


def isa_supported(isa: str) -> bool:
    """Whether this CPU runs the kernel variant for `isa` ("generic", "avx2", "avx512")."""
    module = _module()
    return module is not None and bool(module.isa_supported(ISA_CODES[isa]))


def block_budget() -> int:
    """Bytes of transformed input and products (V and M) one block of tiles may take: half this CPU's
    L2 cache, 256 KiB to 1 MiB, or SRD_WINOGRAD_BLOCK_BYTES; read once per process."""
    module = _module()
    if module is None:
        raise RuntimeError("srd's native Winograd kernel is not built")
    return int(module.block_budget())


def plan_blocks(cin_padded: int, cout_padded: int, tiles: int, threads: int, isa: str) -> tuple[int, int]:
    """(tiles per block, output channels per pass) the kernel plans for a layer of these padded channel
    counts and 6x6 tiles on `threads` threads with `isa` (a bfloat16 one: "amx", "avx512bf16"): blocks
    sized to L2; for float32 layers whose weights outgrow L2, wide blocks or a few output channels per
    pass; at least four blocks per thread where the tiles allow."""
    module = _module()
    if module is None:
        raise RuntimeError("srd's native Winograd kernel is not built")
    tiles_per_block, group = module.plan_blocks(cin_padded, cout_padded, tiles, threads, ISA_CODES[isa])
    return int(tiles_per_block), int(group)


def layer_time() -> tuple[float, int, float]:
    """Seconds of wall time the native 3x3 layers (Winograd, and direct: srd.nn.conv.narrow) took in this
    process so far, how many of them ran, and seconds in the 2x2 stride-2 layers (srd.nn.conv.patch):
    the difference over a network call is those layers' share of it (bench/profile_layers.py)."""
    module = _module()
    if module is None:
        raise RuntimeError("srd's native Winograd kernel is not built")
    ns, layers, patch_ns = module.layer_time()
    return ns / 1e9, int(layers), patch_ns / 1e9


def bf16_supported() -> bool:
    """Whether a bfloat16 kernel can run here: AMX-BF16 (with the OS's permission to use it) or AVX512-BF16.
    "auto" picks AMX when it can."""
    return any(isa_supported(isa) for isa in BF16_ISAS)


def best_isa() -> str:
    """The float32 kernel variant "auto" picks on this CPU."""
    module = _module()
    if module is None:
        raise RuntimeError("srd's native Winograd kernel is not built")
    code = int(module.best_isa())
    return next(name for name, value in ISA_CODES.items() if value == code)


def pack_kernel(w: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """HWIO 3x3 weights -> U = G g G^T of F(6,3), packed as [64][ceil(O/P)][I'][P], I' = I rounded up
    to 16, P the panel width: 32, or 16 for O <= 16 (the kernel then multiplies twice the tiles at a
    time instead of padding 3 outputs to 32); the padding is zeros."""
    u = transform_kernel(w, 6)  # 64 x I x O
    positions, cin, cout = u.shape
    panel = NARROW_PANEL if cout <= NARROW_PANEL else OUT_PANEL
    cin_padded = -(-cin // IN_MULTIPLE) * IN_MULTIPLE
    cout_padded = -(-cout // panel) * panel
    u = np.pad(u, ((0, 0), (0, cin_padded - cin), (0, cout_padded - cout)))
    panels = u.reshape(positions, cin_padded, cout_padded // panel, panel)
    return np.ascontiguousarray(panels.transpose(0, 2, 1, 3))


def pack_kernel_bf16(w: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """HWIO 3x3 weights -> U = G g G^T of F(6,3) in bfloat16, packed for AMX: [64][O' / 16][I' / 2][16 x 2]
    (pairs of input channels next to each other for each of 16 outputs), O' = O rounded up to 32 and
    I' = I rounded up to 32; the padding is zeros."""
    u = transform_kernel(w, 6)  # 64 x I x O
    _, cin, cout = u.shape
    cin_padded = -(-cin // IN_MULTIPLE_BF16) * IN_MULTIPLE_BF16
    cout_padded = -(-cout // OUT_PANEL) * OUT_PANEL
    return pack_pairs(np.pad(u, ((0, 0), (0, cin_padded - cin), (0, cout_padded - cout))))


MAX_PARTS = 8  # input parts one call reads as their concatenation (wino_layer.h kMaxParts)


def can_take_parts(channels: Sequence[int]) -> bool:
    """Whether conv3x3 reads inputs of these channel counts as their concatenation: at most MAX_PARTS,
    every one but the last a multiple of 16 (so no vector of channels straddles two)."""
    return 1 <= len(channels) <= MAX_PARTS and all(c % IN_MULTIPLE == 0 for c in channels[:-1])


def conv3x3(
    x: jax.Array | Sequence[jax.Array],
    packed: jax.Array,
    bias: jax.Array | None,
    out_channels: int,
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    activation: str = "none",
    slope: float = 0.0,
    isa: str = "auto",
    block: int = 0,
    valid: jax.Array | None = None,
    slopes: jax.Array | None = None,
    addend: tuple[jax.Array, int, int] | None = None,
    out_dtype: npt.DTypeLike = np.float32,
) -> jax.Array:
    """act(conv3x3(x, w) + bias), NHWC, zero padding `pads` (top, bottom, left, right). Inputs (and the
    addend) are read as float32 or bfloat16, whichever they are; the output is `out_dtype` (float32 or
    bfloat16, rounded to nearest even).

    `x` is one blob or several (see can_take_parts) read as their concatenation along channels, which
    is then never made. `valid` (int32, N x 2) zeroes each image's input past its valid rows and columns
    (srd.nn.extents) inside the kernel, instead of a masked copy of the input. `slopes` (out_channels
    values) replaces `activation` by a PReLU with those slopes, fused as the other activations are.
    `addend` (blob, top, left), with one input blob, adds that blob's pixels from (top, left) on to the
    input as the kernel reads it (a U-Net's cropped skip connection), so the sum is never made.
    `packed` from pack_kernel runs in float32 on `isa`; from pack_kernel_bf16 (uint16) in bfloat16 on
    `isa` "amx" or "avx512bf16" ("auto": AMX where usable).
    """
    if _module() is None:
        raise RuntimeError("srd's native Winograd kernel is not built")
    parts = [x] if isinstance(x, jax.Array) else list(x)
    if not can_take_parts([p.shape[-1] for p in parts]):
        raise ValueError(f"conv3x3 cannot read parts of {[p.shape[-1] for p in parts]} channels as one input")
    top, bottom, left, right = pads
    n, h, w, _ = parts[0].shape
    shape = (n, h + top + bottom - 2, w + left + right - 2, out_channels)
    out = jax.ShapeDtypeStruct(shape, output_dtype(out_dtype, "conv3x3"))  # type: ignore[no-untyped-call]
    b, code = epilogue_operand(bias, slopes, out_channels, ACTIVATION_CODES[activation], "conv3x3")
    extent = extent_operand(valid)
    attributes = {
        "pad_top": np.int64(top),
        "pad_left": np.int64(left),
        "activation": np.int64(code),
        "slope": np.float32(slope),
        "isa": np.int64(ISA_CODES[isa]),
        "block": np.int64(block),
    }
    target = TARGET_BF16 if packed.dtype == jnp.uint16 else TARGET
    inputs = [activation_operand(p) for p in parts]
    attributes |= {"addend": np.int64(0), "add_top": np.int64(0), "add_left": np.int64(0)}
    if addend is not None:
        blob, add_top, add_left = addend
        if len(parts) != 1 or blob.shape[0] != n or blob.shape[3] != parts[0].shape[3]:
            raise ValueError(f"conv3x3: an addend of {blob.shape} for input parts {[p.shape for p in parts]}")
        if add_top < 0 or add_left < 0 or blob.shape[1] < h + add_top or blob.shape[2] < w + add_left:
            raise ValueError(
                f"conv3x3: an addend of {blob.shape} at ({add_top}, {add_left}) misses the input"
            )
        inputs.append(activation_operand(blob))
        attributes |= {"addend": np.int64(1), "add_top": np.int64(add_top), "add_left": np.int64(add_left)}
    result: jax.Array = jax.ffi.ffi_call(target, out)(extent, packed, b, *inputs, **attributes)
    return result
