"""Run a `NetworkSpec` on NHWC input: `lax.conv_general_dilated`, or srd's native Winograd kernel on CPU."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from jax import lax

from srd.nn.conv import native
from srd.nn.conv.winograd import (
    EpilogueFn,
    depth_to_space,
    subpixel_kernel,
    subpixel_offsets,
    transform_kernel,
    transform_kernel_traced,
    winograd_conv3x3,
)
from srd.nn.extents import masked_mean, propagate_extents
from srd.nn.graph import (
    Activation,
    ChannelScale,
    Conv,
    ConvAlgorithm,
    CropLike,
    Dense,
    Eltwise,
    EltwiseOp,
    GlobalAvgPool,
    NetworkSpec,
    Op,
    PreparedWeights,
    Weights,
)

JaxWeights = Mapping[str, Mapping[str, jax.Array]]
WINOGRAD_TILE = 4  # F(4x4, 3x3): 4x fewer multiplies than direct, float32 error ~1e-6 relative
WINOGRAD_MIN_CHANNELS = 8  # below this the transforms cost more than the matmul saves
_DIMS = ("NHWC", "HWIO", "NHWC")
NATIVE_ALGORITHMS = ("native", "native-bf16")
# "native-bf16" runs a layer in bfloat16 only when it has this many input and output channels: the big
# layers, where the matmuls dominate. The first and last layers (1-3 image channels in or out; the last
# one's rounding lands straight in the output pixels) stay float32: measured on Set14, bfloat16 everywhere
# cost 0.06-0.07 dB PSNR.
BF16_MIN_CHANNELS = 32


def activate(x: jax.Array, activation: Activation, slope: float) -> jax.Array:
    """Apply a fused activation."""
    if activation is Activation.NONE:
        return x
    if activation is Activation.RELU:
        return jnp.maximum(x, 0)
    if activation is Activation.LEAKY_RELU:
        # max(x, slope*x) equals leaky ReLU for 0 < slope < 1 and fuses into one cheap op.
        return jnp.maximum(x, x * jnp.asarray(slope, x.dtype))
    if activation is Activation.SIGMOID:
        return jax.nn.sigmoid(x)
    raise AssertionError(activation)


def conv2d(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    op: Conv,
    conv_algorithm: ConvAlgorithm = "direct",
    prepared: Mapping[str, jax.Array] | None = None,
) -> jax.Array:
    """A convolution or transposed convolution with bias and activation, NHWC in and out.

    "direct" is lax.conv as written. "native" runs the layers `prepare_weights` packed for srd's
    Winograd F(6x6, 3x3) kernel there (3x3 stride-1 layers, and transposed ones through their sub-pixel
    form) and the rest as "winograd" does its non-3x3 layers; "native-bf16" the same, its packed kernels
    in bfloat16 for the AMX variant. "winograd" runs stride-1 3x3 convolutions
    with 8 or more input channels as Winograd F(4x4, 3x3) in jnp and kernel-equals-stride transposed
    convolutions as one matmul; `prepared` holds that layer's transforms from `prepare_weights` (else
    they are traced).
    """

    def epilogue(y: jax.Array) -> jax.Array:
        return activate(y if b is None else y + b, op.activation, op.slope)

    if conv_algorithm in NATIVE_ALGORITHMS:
        return _native_conv(x, w, b, op, prepared or {}, epilogue)
    if conv_algorithm == "winograd":
        return _fast_conv(x, w, op, prepared or {}, epilogue)
    return epilogue(_direct_conv(x, w, op))


def _direct_conv(x: jax.Array, w: jax.Array, op: Conv) -> jax.Array:
    top, bottom, left, right = op.pads
    if op.transposed:
        # Transposed conv = conv of the stride-dilated input with the spatially flipped kernel, padded by
        # k-1 and then cut by the layer's pad (w is stored HWIO with the flip already applied).
        kh, kw = op.kernel
        padding = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
        return lax.conv_general_dilated(
            x, w, window_strides=(1, 1), padding=padding, lhs_dilation=op.stride, dimension_numbers=_DIMS
        )
    return lax.conv_general_dilated(
        x, w, window_strides=op.stride, padding=((top, bottom), (left, right)), dimension_numbers=_DIMS
    )


def _native_conv(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None,
    op: Conv,
    prepared: Mapping[str, jax.Array],
    epilogue: EpilogueFn,
) -> jax.Array:
    act = op.activation.value
    if "native" in prepared and op.transposed:
        # The sub-pixel form: a 3x3 stride-1 convolution producing every output phase, then depth-to-space.
        phases = op.stride[0] * op.stride[1] * w.shape[3]
        y = native.conv3x3(
            x, prepared["native"], prepared.get("native_b"), phases, (0, 0, 0, 0), act, op.slope
        )
        return depth_to_space(y, op.stride)
    if "native" in prepared:
        return native.conv3x3(x, prepared["native"], b, w.shape[3], op.pads, act, op.slope)
    return _subpixel_or_direct(x, w, op, prepared, epilogue)


def native_subpixel_kernel(op: Conv, w: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """For "native": a transposed convolution's sub-pixel form when that is a 3x3 stride-1 convolution
    needing no extra padding (upconv_7's and cunet's 4x4 stride-2 layers), else None."""
    if not op.transposed or op.activation.value not in native.ACTIVATION_CODES:
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


def resolve_conv_algorithm(conv_algorithm: ConvAlgorithm, platform: str) -> ConvAlgorithm:
    """What "auto" means on a JAX platform: the native kernel on the CPU when it is built, else direct.
    Asking for "native" where it cannot run is an error rather than a silent fallback."""
    if conv_algorithm == "auto":
        return "native" if platform == "cpu" and native.available() else "direct"
    if conv_algorithm in NATIVE_ALGORITHMS and (platform != "cpu" or not native.available()):
        why = "it runs on the CPU only" if platform != "cpu" else "srd's extension was not built"
        raise ValueError(f"the native convolution cannot run here: {why}")
    if conv_algorithm == "native-bf16" and not native.bf16_supported():
        raise ValueError(
            "native-bf16 needs a CPU with AMX-BF16 (Intel Sapphire Rapids or later, Linux 5.16+) or"
            " AVX512-BF16 (AMD Zen 4 or later); use native"
        )
    return conv_algorithm


def uses_native(op: Conv) -> bool:
    """Whether "native" runs this layer with srd's Winograd F(6x6, 3x3) kernel (else lax.conv)."""
    square3 = op.kernel == (3, 3) and op.stride == (1, 1) and not op.transposed
    return square3 and op.activation.value in native.ACTIVATION_CODES


def uses_winograd(op: Conv, in_channels: int) -> bool:
    """Whether "winograd" runs this layer as Winograd F(4x4, 3x3)."""
    square3 = op.kernel == (3, 3) and op.stride == (1, 1) and not op.transposed
    return square3 and in_channels >= WINOGRAD_MIN_CHANNELS


def uses_subpixel_matmul(op: Conv) -> bool:
    """Whether "winograd" runs this transposed convolution (kernel = stride, no crop) as one matmul."""
    return op.transposed and op.kernel == op.stride and op.pads == (0, 0, 0, 0)


def _fast_conv(
    x: jax.Array, w: jax.Array, op: Conv, prepared: Mapping[str, jax.Array], epilogue: EpilogueFn
) -> jax.Array:
    if uses_winograd(op, x.shape[-1]):
        top, bottom, left, right = op.pads
        x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))) if any(op.pads) else x
        u = prepared.get("wino")
        if u is None:
            u = transform_kernel_traced(w, WINOGRAD_TILE)
        return winograd_conv3x3(x, u, WINOGRAD_TILE, epilogue)
    return _subpixel_or_direct(x, w, op, prepared, epilogue)


def _subpixel_or_direct(
    x: jax.Array, w: jax.Array, op: Conv, prepared: Mapping[str, jax.Array], epilogue: EpilogueFn
) -> jax.Array:
    if uses_subpixel_matmul(op):
        # Each input pixel feeds its own stride x stride output block: one matmul, then depth-to-space.
        w1 = prepared.get("subpixel")
        if w1 is None:
            w1 = subpixel_kernel(w, op.kernel, op.stride, op.pads)
        return epilogue(depth_to_space(x @ w1[0, 0], op.stride))
    return epilogue(_direct_conv(x, w, op))


def prepare_weights(spec: NetworkSpec, weights: Weights, conv_algorithm: ConvAlgorithm) -> PreparedWeights:
    """Weights plus, for "native" and "winograd", each layer's transformed kernel, computed in float64.

    "native" adds "native" (F(6x6, 3x3) kernel packed for srd's extension: `native.pack_kernel`;
    `native.pack_kernel_bf16` for "native-bf16").
    Adds "wino" (F(4x4, 3x3) kernel, 36 x C x K) and "subpixel" (transposed kernels as one matmul);
    `apply_network` uses them when present and traces the same transforms when not.
    """
    prepared: PreparedWeights = {name: dict(layer) for name, layer in weights.items()}
    if conv_algorithm not in (*NATIVE_ALGORITHMS, "winograd"):
        return prepared
    native_alg = conv_algorithm in NATIVE_ALGORITHMS

    def pack(kernel: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | npt.NDArray[np.uint16]:
        if conv_algorithm == "native-bf16" and min(kernel.shape[2:]) >= BF16_MIN_CHANNELS:
            return native.pack_kernel_bf16(kernel)
        return native.pack_kernel(kernel)

    for op in spec.ops:
        if not isinstance(op, Conv):
            continue
        layer = prepared[op.name]
        w = np.asarray(layer["w"], np.float32)
        sub = native_subpixel_kernel(op, w) if native_alg else None
        if native_alg and uses_native(op):
            layer["native"] = pack(w)
        elif sub is not None:
            layer["native"] = pack(sub)
            if "b" in layer:
                layer["native_b"] = np.tile(np.asarray(layer["b"], np.float32), op.stride[0] * op.stride[1])
        elif conv_algorithm == "winograd" and uses_winograd(op, w.shape[2]):
            layer["wino"] = transform_kernel(w, WINOGRAD_TILE)
        elif uses_subpixel_matmul(op):
            layer["subpixel"] = np.asarray(subpixel_kernel(jnp.asarray(w), op.kernel, op.stride, op.pads))
    return prepared


def _run_op(
    op: Op, blobs: dict[str, jax.Array], weights: JaxWeights, conv_algorithm: ConvAlgorithm
) -> jax.Array:
    if isinstance(op, Conv):
        layer = weights[op.name]
        return conv2d(blobs[op.src], layer["w"], layer.get("b"), op, conv_algorithm, layer)
    if isinstance(op, GlobalAvgPool):
        return jnp.mean(blobs[op.src], axis=(1, 2))
    if isinstance(op, Dense):
        layer = weights[op.name]
        y = blobs[op.src] @ layer["w"]
        if "b" in layer:
            y = y + layer["b"]
        return activate(y, op.activation, op.slope)
    if isinstance(op, ChannelScale):
        return blobs[op.src] * blobs[op.factors][:, None, None, :]
    if isinstance(op, CropLike):
        src, like = blobs[op.src], blobs[op.like]
        h, w = like.shape[1], like.shape[2]
        # U-Net skips crop symmetrically; anything else means the tile size is misaligned for this network.
        if src.shape[1] - h != 2 * op.top or src.shape[2] - w != 2 * op.left:
            raise ValueError(f"crop of {src.shape[1:3]} to {(h, w)} at ({op.top}, {op.left}) is not centred")
        return src[:, op.top : op.top + h, op.left : op.left + w, :]
    if isinstance(op, Eltwise):
        return _eltwise(op, [blobs[s] for s in op.srcs])
    raise AssertionError(op)


def _eltwise(op: Eltwise, xs: list[jax.Array]) -> jax.Array:
    if op.op is EltwiseOp.SUM:
        coeffs = op.coeffs or (1.0,) * len(xs)
        acc = xs[0] if coeffs[0] == 1.0 else xs[0] * coeffs[0]
        for x, c in zip(xs[1:], coeffs[1:], strict=True):
            acc = acc + (x if c == 1.0 else x * c)
        return acc
    acc = xs[0]
    for x in xs[1:]:
        acc = acc * x if op.op is EltwiseOp.PROD else jnp.maximum(acc, x)
    return acc


def apply_network(
    spec: NetworkSpec,
    weights: JaxWeights,
    x: jax.Array,
    conv_algorithm: ConvAlgorithm = "direct",
    valid: jax.Array | None = None,
) -> jax.Array:
    """Run the network on a batch of padded tiles (B, H, W, C_in) and return (B, H', W', C_out).

    `valid` (int32, B x 2) gives each tile's real height and width when it is a partial edge tile in a
    larger fixed shape; global pooling then averages over that area only (see srd.model.extents).
    The output is not clamped: callers clamp to 0..1 after any averaging (TTA) as waifu2x does.
    `conv_algorithm` must be resolved already ("auto" is resolve_conv_algorithm's business); "native"
    and "winograd" use the transforms `prepare_weights` added to `weights`.
    """
    if conv_algorithm == "auto":
        raise ValueError('apply_network needs a resolved conv_algorithm, not "auto"')
    pools = any(isinstance(op, GlobalAvgPool) for op in spec.ops)
    extents = propagate_extents(spec.ops, spec.input, valid) if valid is not None and pools else None
    blobs: dict[str, jax.Array] = {spec.input: x}
    for op in spec.ops:
        if isinstance(op, GlobalAvgPool) and extents is not None:
            blobs[op.dst] = masked_mean(blobs[op.src], extents[op.src])
        else:
            blobs[op.dst] = _run_op(op, blobs, weights, conv_algorithm)
    return blobs[spec.output]
