"""3x3 stride-1 layers with at most 4 outputs (a network's last layer: 64 channels into the image's 3) as
srd's native direct convolution, srd_conv3x3_direct (srd/_native/direct_kernel.inc).

Winograd F(6,3) pads such a layer's outputs to a 16-wide panel, so its multiplies are as many as direct
convolution's over the 3 real outputs, and its input transform comes on top: cunet's 1026 x 1026 x 64 -> 3
layer took 35 ms of a 512 px call that way on the Intel Xeon (bench/profile_layers.py). The direct kernel
sums the 9 taps straight from the input rows, vectors across input channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.conv.operands import ACTIVATIONS, activation_operand, epilogue_operand, extent_operand
from srd.nn.ops.base import Activation
from srd.nn.ops.conv import Conv

TARGET = "srd_conv3x3_direct"  # registered with XLA by srd.nn.conv.native with the kernel's other targets
MAX_OUT = 4  # wino_layer.h kDirectMaxOut
IN_MULTIPLE = 16  # input channels come in whole vectors


def narrow_fits(op: Conv, in_channels: int, out_channels: int) -> bool:
    """Whether the direct kernel runs this layer: 3x3, stride 1, not transposed, an activation it fuses,
    at most MAX_OUT outputs, a multiple of 16 inputs."""
    square3 = op.kernel == (3, 3) and op.stride == (1, 1) and not op.transposed
    return (
        square3
        and op.activation in ACTIVATIONS
        and out_channels <= MAX_OUT
        and in_channels % IN_MULTIPLE == 0
    )


def pack_narrow(w: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """HWIO 3x3 weights -> [3][3][cout][cin]: each tap's weights per output, contiguous over inputs."""
    return np.ascontiguousarray(np.asarray(w, np.float32).transpose(0, 1, 3, 2))


def conv3x3_direct(
    x: jax.Array,
    packed: jax.Array,
    bias: jax.Array | None,
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    activation: Activation = Activation.NONE,
    slope: float = 0.0,
    isa: int = 0,
    valid: jax.Array | None = None,
    slopes: jax.Array | None = None,
) -> jax.Array:
    """act(conv3x3(x, w) + bias), float32, for NHWC `x` (float32 or bfloat16) with zero padding `pads`
    (top, bottom, left, right); `packed` from pack_narrow. `valid` (int32, N x 2) zeroes each image's
    input past its valid rows and columns, `slopes` (cout values) makes the activation a PReLU. `isa`: a
    float32 code of srd.nn.conv.native.ISA_CODES (0: the best); the kernel must be loaded
    (srd.nn.conv.native.available())."""
    top, bottom, left, right = pads
    n, h, w, _ = x.shape
    cout = packed.shape[2]
    out = jax.ShapeDtypeStruct((n, h + top + bottom - 2, w + left + right - 2, cout), jnp.float32)  # type: ignore[no-untyped-call]
    b, code = epilogue_operand(bias, slopes, cout, ACTIVATIONS.index(activation), "conv3x3_direct")
    extent = extent_operand(valid)
    attributes = {
        "pad_top": np.int64(top),
        "pad_left": np.int64(left),
        "activation": np.int64(code),
        "slope": np.float32(slope),
        "isa": np.int64(isa),
    }
    result: jax.Array = jax.ffi.ffi_call(TARGET, out)(extent, packed, b, activation_operand(x), **attributes)
    return result
