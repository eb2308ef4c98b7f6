"""The native Winograd F(6x6, 3x3) convolution (srd/_native, an XLA FFI custom call) from JAX.

On the CPU, a stride-1 3x3 convolution can run as `srd_winograd_f63`: 5x fewer multiplies than direct
convolution, with the transforms and the 64 matmuls of a block of tiles kept in cache (see
srd/_native/wino_kernel.inc). Channel counts are padded inside the kernel (inputs to a multiple of 16,
outputs to 32), so layers with 1 or 3 channels run natively too. Weights are transformed and
packed once at load (`pack_kernel`). The extension is optional at build time; `available()` says
whether it was built and loads. `NATIVE` and `NATIVE_BF16` are the conv backends built on it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.conv.base import PreparedKernels, epilogue_for
from srd.nn.conv.bfloat16 import pack_pairs
from srd.nn.conv.narrow import TARGET as DIRECT_TARGET
from srd.nn.conv.narrow import conv3x3_direct, narrow_fits, pack_narrow
from srd.nn.conv.operands import (
    ACTIVATIONS,
    BFLOAT16,
    FLOAT32,
    activation_operand,
    epilogue_operand,
    extent_operand,
    output_dtype,
)
from srd.nn.conv.patch import TARGET as PATCH_TARGET
from srd.nn.conv.patch import TARGET_BF16 as PATCH_TARGET_BF16
from srd.nn.conv.patch import (
    bf16_fits,
    pack_down,
    pack_down_bf16,
    pack_up,
    pack_up_bf16,
    patch_matmul,
    patch_mode,
)
from srd.nn.conv.subpixel import (
    depth_to_space,
    prepare_subpixel_matmul,
    subpixel_kernel,
    subpixel_offsets,
    subpixel_or_direct,
)
from srd.nn.conv.winograd_transforms import transform_kernel
from srd.nn.graph import ConvAlgorithm
from srd.nn.ops.base import Activation, Extent, HostLayerWeights, LayerWeights
from srd.nn.ops.conv import Conv

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
    try:
        # import_module, not `from srd import`: srd/__init__.py's lazy __getattr__ would type it as Any
        module = importlib.import_module("srd._winograd")
    except ImportError:
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


# "native-bf16" runs a layer in bfloat16 only when it has this many input and output channels: the big
# layers, where the matmuls dominate. The first and last layers (1-3 image channels in or out; the last
# one's rounding lands straight in the output pixels) stay float32: measured on Set14, bfloat16 everywhere
# cost 0.06-0.07 dB PSNR. Every layer with this many outputs writes its activations in bfloat16 too (the
# next layer reads them as they are): half the memory traffic of those memory-bound layers, for
# 0.003-0.006 dB more (Set5 / Set14, cunet and upconv7; bench/quality.py).
BF16_MIN_CHANNELS = 32


def uses_native(op: Conv) -> bool:
    """Whether "native" runs this layer with srd's Winograd F(6x6, 3x3) kernel (else lax.conv)."""
    square3 = op.kernel == (3, 3) and op.stride == (1, 1) and not op.transposed
    return square3 and op.activation.value in ACTIVATION_CODES


def native_subpixel_kernel(op: Conv, w: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """For "native": a transposed convolution's sub-pixel form when that is a 3x3 stride-1 convolution
    needing no extra padding (upconv_7's and cunet's 4x4 stride-2 layers), else None."""
    if not op.transposed or op.activation.value not in ACTIVATION_CODES:
        return None
    if subpixel_offsets(op.kernel, op.stride, op.pads) != (0, 0):
        return None
    kernel = np.asarray(subpixel_kernel(jnp.asarray(w), op.kernel, op.stride, op.pads))
    if kernel.shape[:2] != (3, 3):
        return None
    # The sub-pixel output must be the transposed convolution's output exactly, for any input size.
    for size in (10, 11):
        transposed_h = (size - 1) * op.stride[0] + op.kernel[0] - op.pads[0] - op.pads[1]
        transposed_w = (size - 1) * op.stride[1] + op.kernel[1] - op.pads[2] - op.pads[3]
        if (transposed_h, transposed_w) != ((size - 2) * op.stride[0], (size - 2) * op.stride[1]):
            return None
    return kernel


@dataclass(frozen=True)
class NativeBackend:
    """srd's F(6x6, 3x3) kernel for 3x3 stride-1 layers and (through their sub-pixel form) transposed
    ones, the rest as "winograd" runs its non-3x3 layers; with `bf16`, the big layers' packed kernels
    in bfloat16 for the AMX / AVX512-BF16 variants ("native-bf16": faster, slightly less exact)."""

    name: ConvAlgorithm
    bf16: bool = False

    def unavailable_reason(self, platform: str) -> str | None:
        if platform != "cpu" or not available():
            why = "it runs on the CPU only" if platform != "cpu" else "srd's extension was not built"
            return f"the native convolution cannot run here: {why}"
        if self.bf16 and not bf16_supported():
            return (
                "native-bf16 needs a CPU with AMX-BF16 (Intel Sapphire Rapids or later, Linux 5.16+) or"
                " AVX512-BF16 (AMD Zen 4 or later); use native"
            )
        return None

    def _out(self, out_channels: int) -> np.dtype[Any]:
        """A layer's output type: bfloat16 with `bf16` for layers of at least BF16_MIN_CHANNELS outputs
        (whichever their weights), else float32."""
        wide = self.bf16 and out_channels >= BF16_MIN_CHANNELS
        return BFLOAT16 if wide else FLOAT32

    def _pack(self, kernel: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | npt.NDArray[np.uint16]:
        if self.bf16 and min(kernel.shape[2:]) >= BF16_MIN_CHANNELS:
            return pack_kernel_bf16(kernel)
        return pack_kernel(kernel)

    def prepare(self, op: Conv, layer: HostLayerWeights) -> PreparedKernels:
        """Adds "native" (the kernel packed by `pack_kernel`, `pack_kernel_bf16` for big layers with
        `bf16`) and, for sub-pixel layers, "native_b" (the bias per output phase); for 2x2 stride-2
        layers "native_patch" (srd.nn.conv.patch; bfloat16 pairs for big layers with `bf16`); for 3x3
        layers with at most 4 outputs "native_direct" (srd.nn.conv.narrow)."""
        w = np.asarray(layer["w"], np.float32)
        if uses_native(op) and narrow_fits(op, w.shape[2], w.shape[3]):
            return {"native_direct": pack_narrow(w)}
        if uses_native(op):
            return {"native": self._pack(w)}
        mode = patch_mode(op, w.shape[3])
        bf16 = self.bf16 and min(w.shape[2:]) >= BF16_MIN_CHANNELS and mode is not None
        bf16 = bf16 and bf16_fits(mode or "down", w.shape[2])
        if mode == "down":
            prepared_down: PreparedKernels = {"native_patch": pack_down_bf16(w) if bf16 else pack_down(w)}
            return prepared_down
        if mode == "up":
            matmul = np.asarray(subpixel_kernel(jnp.asarray(w), op.kernel, op.stride, op.pads))
            prepared_up: PreparedKernels = {"native_patch": pack_up_bf16(matmul) if bf16 else pack_up(matmul)}
            if "b" in layer:
                prepared_up["native_patch_b"] = np.tile(np.asarray(layer["b"], np.float32), 2)
            return prepared_up
        sub = native_subpixel_kernel(op, w)
        if sub is None:
            return dict(prepare_subpixel_matmul(op, w))
        prepared: PreparedKernels = {"native": self._pack(sub)}
        if "b" in layer:
            prepared["native_b"] = np.tile(np.asarray(layer["b"], np.float32), op.stride[0] * op.stride[1])
        return prepared

    def conv(self, x: jax.Array, op: Conv, layer: LayerWeights) -> jax.Array:
        act = op.activation.value
        cout = layer["w"].shape[3]
        if "native_direct" in layer:  # at most 4 outputs (srd.nn.conv.narrow)
            return conv3x3_direct(x, layer["native_direct"], layer.get("b"), op.pads, op.activation, op.slope)
        if "native_patch" in layer:  # 2x2 stride 2, down or up (srd.nn.conv.patch)
            mode = "up" if op.transposed else "down"
            bias = layer.get("native_patch_b") if op.transposed else layer.get("b")
            return patch_matmul(
                x, layer["native_patch"], bias, cout, mode, op.activation, op.slope, out_dtype=self._out(cout)
            )
        if "native" in layer and op.transposed:
            # The sub-pixel form: a 3x3 stride-1 convolution producing every output phase, then
            # depth-to-space.
            phases = op.stride[0] * op.stride[1] * cout
            y = conv3x3(
                x,
                layer["native"],
                layer.get("native_b"),
                phases,
                (0, 0, 0, 0),
                act,
                op.slope,
                out_dtype=self._out(cout),
            )
            return depth_to_space(y, op.stride)
        if "native" in layer:
            return conv3x3(
                x, layer["native"], layer.get("b"), cout, op.pads, act, op.slope, out_dtype=self._out(cout)
            )
        # lax.conv and matmuls take the layer's float32 weights: bfloat16 activations are widened first.
        return subpixel_or_direct(x.astype(jnp.float32), op, layer, epilogue_for(op, layer.get("b")))

    def conv_parts(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, extent: Extent | None
    ) -> jax.Array | None:
        """The 3x3 stride-1 layers read a Concat's inputs in place and mask past the extent themselves:
        for Real-ESRGAN x4plus on one 256 px tile the joins alone were a third of the time (2.2 of 6.4 s,
        memory-bound copies of up to 192 channels) and the masks another 0.4 s."""
        if "native_direct" in layer and len(xs) == 1:
            return conv3x3_direct(
                xs[0], layer["native_direct"], layer.get("b"), op.pads, op.activation, op.slope, valid=extent
            )
        if "native" not in layer or op.transposed or not can_take_parts([x.shape[-1] for x in xs]):
            return None
        act = op.activation.value
        cout = layer["w"].shape[3]
        return conv3x3(
            xs,
            layer["native"],
            layer.get("b"),
            cout,
            op.pads,
            act,
            op.slope,
            valid=extent,
            out_dtype=self._out(cout),
        )

    def conv_prelu(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, slopes: jax.Array, extent: Extent | None
    ) -> jax.Array | None:
        """A 3x3 layer without its own activation followed by a PReLU, in one pass: the kernel applies
        the per-channel slopes as it writes (realesr-animevideov3's 16 PReLUs were 17% of its network's
        time as separate passes over 64-channel blobs)."""
        if op.activation is not Activation.NONE:
            return None
        cout = layer["w"].shape[3]
        per_channel = jnp.broadcast_to(slopes.astype(jnp.float32), (cout,))
        if "native_direct" in layer and len(xs) == 1:
            direct = layer["native_direct"]
            return conv3x3_direct(xs[0], direct, layer.get("b"), op.pads, valid=extent, slopes=per_channel)
        if "native" not in layer or op.transposed:
            return None
        if not can_take_parts([x.shape[-1] for x in xs]):
            return None
        return conv3x3(
            xs,
            layer["native"],
            layer.get("b"),
            cout,
            op.pads,
            "none",
            0.0,
            valid=extent,
            slopes=per_channel,
            out_dtype=self._out(cout),
        )

    def conv_sum(
        self,
        x: jax.Array,
        addend: tuple[jax.Array, int, int],
        op: Conv,
        layer: LayerWeights,
        extent: Extent | None,
    ) -> jax.Array | None:
        """A 3x3 layer reading a U-Net skip sum (cropped blob + blob) as the two blobs in place: on
        cunet's 2x U-Net the largest such sum is 270 MB written and read back (1028 x 1028 x 64 for a
        512 px tile)."""
        blob, top, left = addend
        if "native" not in layer or op.transposed or blob.ndim != 4 or x.ndim != 4:
            return None
        n, h, w, c = x.shape
        if blob.shape[0] != n or blob.shape[3] != c or blob.shape[1] < h + top or blob.shape[2] < w + left:
            return None  # a broadcasting sum, or one the crop does not line up with: not fused
        if (top, left) == (0, 0) and blob.shape != x.shape:
            return None
        act = op.activation.value
        cout = layer["w"].shape[3]
        return conv3x3(
            [x],
            layer["native"],
            layer.get("b"),
            cout,
            op.pads,
            act,
            op.slope,
            valid=extent,
            addend=addend,
            out_dtype=self._out(cout),
        )

    def compiler_options(self, platform: str) -> Mapping[str, str]:
        return {}


NATIVE = NativeBackend("native")
NATIVE_BF16 = NativeBackend("native-bf16", bf16=True)
