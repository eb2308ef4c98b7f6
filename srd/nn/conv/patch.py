"""2x2 stride-2 convolutions and transposed convolutions (cunet's and Real-CUGAN's down- and up-sampling)
as matmuls over the NHWC rows in place: srd's native srd_patch_matmul (srd/_native/patch_kernel.inc).

XLA ran them as a strided convolution (YNNPACK) and as a matmul followed by a depth-to-space copy and the
bias and activation: on cunet's 1024 px second U-Net (512 px input) those came to 0.25 s of a 0.93 s call
(bench/profile_layers.py, Intel Xeon, 2 cores), memory-bound copies of 270 MB blobs among them. The native
op reads each output pixel's 2x2 input patch straight from two input rows (down) or writes each input
pixel's 2x2 output patch straight into two output rows (up), with bias and activation fused.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.conv.bfloat16 import pack_pairs
from srd.nn.conv.operands import ACTIVATIONS, activation_operand, output_dtype
from srd.nn.ops.base import Activation
from srd.nn.ops.conv import Conv

TARGET = "srd_patch_matmul"  # registered with XLA by srd.nn.conv.native with the kernel's other targets
TARGET_BF16 = "srd_patch_matmul_bf16"  # the same with bfloat16 products (AMX, or AVX512-BF16)
PANEL = 32  # output columns per packed panel (the kernel's register block)
MODES = {"down": 0, "up": 1}


def patch_mode(op: Conv, out_channels: int) -> str | None:
    """ "down" or "up" where the native op runs this layer: 2x2 kernel, stride 2, no padding or crop,
    an activation it fuses, and a matmul width (cout down, 2 cout up) that is a multiple of 32."""
    if op.kernel != (2, 2) or op.stride != (2, 2) or op.pads != (0, 0, 0, 0):
        return None
    if op.activation not in ACTIVATIONS:
        return None
    mode = "up" if op.transposed else "down"
    columns = 2 * out_channels if op.transposed else out_channels
    return mode if columns % PANEL == 0 else None


def _panels(b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """K x cols -> [cols / 32][K][32]."""
    k, cols = b.shape
    return np.ascontiguousarray(b.reshape(k, cols // PANEL, PANEL).transpose(1, 0, 2))


def pack_down(w: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """HWIO 2x2 weights of a stride-2 convolution -> [1][cout / 32][4 cin][32]: rows in (dy, dx, cin)
    order, as the kernel reads two input rows' 2 cin floats per output pixel."""
    w = np.asarray(w, np.float32)
    kh, kw, cin, cout = w.shape
    return _panels(w.reshape(kh * kw * cin, cout))[None]


def pack_up(subpixel: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """A 2x2 stride-2 transposed convolution's one-matmul kernel (1, 1, cin, 4 cout; phases (dy, dx)
    major, srd.nn.conv.subpixel) -> [2][2 cout / 32][cin][32]: per output row phase dy, the columns
    (dx, cout) it writes into that output row."""
    m = np.asarray(subpixel, np.float32)[0, 0]
    half = m.shape[1] // 2
    return np.stack([_panels(m[:, :half]), _panels(m[:, half:])])


def bf16_fits(mode: str, in_channels: int) -> bool:
    """Whether the bfloat16 op takes the layer: it rounds 32 inputs at a time of each half of K (2 cin
    from each of two input rows down, cin up)."""
    return in_channels % (16 if mode == "down" else 32) == 0


def pack_down_bf16(w: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """pack_down's matrix in bfloat16 pairs (srd.nn.conv.bfloat16.pack_pairs): [1][cout / 16][2 cin][32]."""
    w = np.asarray(w, np.float32)
    kh, kw, cin, cout = w.shape
    return pack_pairs(w.reshape(kh * kw * cin, cout))[None]


def pack_up_bf16(subpixel: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """pack_up's two matrices (one per output row phase) in bfloat16 pairs: [2][2 cout / 16][cin / 2][32]."""
    m = np.asarray(subpixel, np.float32)[0, 0]
    half = m.shape[1] // 2
    return np.stack([pack_pairs(m[:, :half]), pack_pairs(m[:, half:])])


def patch_matmul(
    x: jax.Array,
    packed: jax.Array,
    bias: jax.Array | None,
    out_channels: int,
    mode: str,
    activation: Activation = Activation.NONE,
    slope: float = 0.0,
    isa: int = 0,
    out_dtype: npt.DTypeLike = np.float32,
) -> jax.Array:
    """act(layer(x) + bias) for NHWC `x` (float32 or bfloat16), output `out_dtype` (the same two): mode
    "down" gives N x h/2 x w/2 x out_channels (the last row or column of an odd size is dropped, as a
    valid stride-2 convolution drops it), "up" N x 2h x 2w x out_channels. `bias`: cout values (down)
    or the cout values twice (up), or None.
    `packed` from pack_down / pack_up runs in float32, from pack_down_bf16 / pack_up_bf16 (uint16) with
    bfloat16 products. `isa` is srd.nn.conv.native.ISA_CODES' (0: the best float32 one, or for bfloat16
    weights AMX where usable, else AVX512-BF16); the kernel must be loaded
    (srd.nn.conv.native.available())."""
    n, h, w, _ = x.shape
    shape = (n, h // 2, w // 2, out_channels) if mode == "down" else (n, 2 * h, 2 * w, out_channels)
    out = jax.ShapeDtypeStruct(shape, output_dtype(out_dtype, "patch_matmul"))  # type: ignore[no-untyped-call]
    b = jnp.zeros((0,), jnp.float32) if bias is None else bias.astype(jnp.float32)
    attributes = {
        "mode": np.int64(MODES[mode]),
        "activation": np.int64(ACTIVATIONS.index(activation)),
        "slope": np.float32(slope),
        "isa": np.int64(isa),
    }
    target = TARGET_BF16 if packed.dtype == jnp.uint16 else TARGET
    result: jax.Array = jax.ffi.ffi_call(target, out)(activation_operand(x), packed, b, **attributes)
    return result
