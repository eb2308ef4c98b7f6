"""The "native" and "native-bf16" convolution backends: srd's native kernels (srd.nn.conv.native's
Winograd F(6x6, 3x3), srd.nn.conv.patch's 2x2 stride-2 matmuls, srd.nn.conv.narrow's direct 3x3 for at
most 4 outputs) for the layers they take, srd.nn.conv.spectral's row DFT for wide kernels, the "winograd"
backend's lax.conv and matmuls for the rest; with bfloat16, the big layers' weights, products and
activations in bfloat16."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.conv import native
from srd.nn.conv.base import PreparedKernels, epilogue_for
from srd.nn.conv.narrow import conv3x3_direct, narrow_fits, pack_narrow
from srd.nn.conv.native import (
    ACTIVATION_CODES,
    can_take_parts,
    conv3x3,
    pack_kernel,
    pack_kernel_bf16,
)
from srd.nn.conv.operands import BFLOAT16, FLOAT32
from srd.nn.conv.patch import (
    bf16_fits,
    pack_down,
    pack_down_bf16,
    pack_up,
    pack_up_bf16,
    patch_matmul,
    patch_mode,
)
from srd.nn.conv.spectral import spectral_conv, spectral_fits
from srd.nn.conv.subpixel import (
    depth_to_space,
    prepare_subpixel_matmul,
    subpixel_kernel,
    subpixel_offsets,
    subpixel_or_direct,
)
from srd.nn.graph import ConvAlgorithm
from srd.nn.ops.base import Activation, Extent, HostLayerWeights, LayerWeights
from srd.nn.ops.conv import Conv

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
    kernel = subpixel_kernel(np.asarray(w, np.float32), op.kernel, op.stride, op.pads)
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
        if platform != "cpu" or not native.available():
            why = "it runs on the CPU only" if platform != "cpu" else "srd's extension was not built"
            return f"the native convolution cannot run here: {why}"
        if self.bf16 and not native.bf16_supported():
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

    def _winograd(
        self,
        xs: jax.Array | Sequence[jax.Array],
        op: Conv,
        layer: LayerWeights,
        activation: str,
        slope: float,
        valid: Extent | None = None,
        slopes: jax.Array | None = None,
        addend: tuple[jax.Array, int, int] | None = None,
    ) -> jax.Array:
        """The layer's stride-1 3x3 convolution by srd's kernel: its packed weights, bias and pads, this
        backend's output type; the rest as conv3x3 takes it."""
        cout = layer["w"].shape[3]
        return conv3x3(
            xs,
            layer["native"],
            layer.get("b"),
            cout,
            op.pads,
            activation,
            slope,
            valid=valid,
            slopes=slopes,
            addend=addend,
            out_dtype=self._out(cout),
        )

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
            matmul = subpixel_kernel(np.asarray(w, np.float32), op.kernel, op.stride, op.pads)
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
            return self._winograd(x, op, layer, act, op.slope)
        # lax.conv and matmuls take the layer's float32 weights: bfloat16 activations are widened first.
        if spectral_fits(op):  # wide kernels (RealPLKSR's 17 x 17): a DFT along rows (srd.nn.conv.spectral)
            return epilogue_for(op, layer.get("b"))(spectral_conv(x.astype(jnp.float32), layer["w"], op))
        return subpixel_or_direct(x.astype(jnp.float32), op, layer, epilogue_for(op, layer.get("b")))

    def conv_parts(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, extent: Extent | None
    ) -> jax.Array | None:
        """The 3x3 stride-1 layers read a Concat's inputs in place and mask past the extent themselves:
        for Real-ESRGAN x4plus on one 256 px tile the joins alone were a third of the time (2.2 of 6.4 s,
        memory-bound copies of up to 192 channels) and the masks another 0.4 s."""
        return self._conv3x3_parts(xs, op, layer, op.activation, op.slope, extent)

    def conv_prelu(
        self, xs: Sequence[jax.Array], op: Conv, layer: LayerWeights, slopes: jax.Array, extent: Extent | None
    ) -> jax.Array | None:
        """A 3x3 layer without its own activation followed by a PReLU, in one pass: the kernel applies
        the per-channel slopes as it writes (realesr-animevideov3's 16 PReLUs were 17% of its network's
        time as separate passes over 64-channel blobs)."""
        if op.activation is not Activation.NONE:
            return None
        per_channel = jnp.broadcast_to(slopes.astype(jnp.float32), (layer["w"].shape[3],))
        return self._conv3x3_parts(xs, op, layer, Activation.NONE, 0.0, extent, per_channel)

    def _conv3x3_parts(
        self,
        xs: Sequence[jax.Array],
        op: Conv,
        layer: LayerWeights,
        activation: Activation,
        slope: float,
        extent: Extent | None,
        slopes: jax.Array | None = None,
    ) -> jax.Array | None:
        """conv_parts' and conv_prelu's layer: the direct kernel (at most 4 outputs, one part), else the
        Winograd kernel where it takes these parts; None for the caller's path otherwise."""
        if "native_direct" in layer and len(xs) == 1:
            return conv3x3_direct(
                xs[0],
                layer["native_direct"],
                layer.get("b"),
                op.pads,
                activation,
                slope,
                valid=extent,
                slopes=slopes,
            )
        if "native" not in layer or op.transposed or not can_take_parts([x.shape[-1] for x in xs]):
            return None
        return self._winograd(xs, op, layer, activation.value, slope, valid=extent, slopes=slopes)

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
        return self._winograd([x], op, layer, op.activation.value, op.slope, valid=extent, addend=addend)

    def compiler_options(self, platform: str) -> Mapping[str, str]:
        return {}


NATIVE = NativeBackend("native")
NATIVE_BF16 = NativeBackend("native-bf16", bf16=True)
