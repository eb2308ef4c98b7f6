"""Transposed convolutions as sub-pixel convolutions, which the "winograd" and "native" backends share.

A transposed convolution whose kernel is a multiple of its stride can be rewritten as a stride-1
convolution producing all stride^2 output phases at once, followed by depth-to-space; where kernel equals
stride (and nothing is cropped) that convolution is a single matmul.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from srd.nn.conv.base import EpilogueFn
from srd.nn.conv.direct import direct_conv
from srd.nn.ops.conv import Conv

ArrayT = TypeVar("ArrayT", jax.Array, npt.NDArray[np.float32])


def subpixel_kernel(
    w: ArrayT, kernel: tuple[int, int], stride: tuple[int, int], pads: tuple[int, int, int, int]
) -> ArrayT:
    """Rewrite a transposed convolution (HWIO `w`, flipped as for lhs-dilated lax.conv) as a stride-1 one.

    Returns the stride-1 kernel (span_h, span_w, I, sh*sw*O), output phases (row, column) major; its
    input needs the padding from `subpixel_offsets` on the top and left. A numpy `w` (weights prepared
    at load) is rewritten in numpy, without dispatching JAX ops one by one; a JAX one under jit in JAX.
    """
    xp: Any = np if isinstance(w, np.ndarray) else jnp
    idx_h = _tap_table(kernel[0], stride[0], kernel[0] - 1 - pads[0])
    idx_w = _tap_table(kernel[1], stride[1], kernel[1] - 1 - pads[2])
    w_ext = xp.pad(w, ((0, 1), (0, 1), (0, 0), (0, 0)))  # tap index k (-1 -> the zero row) is "no tap"
    taps = w_ext[idx_h[:, None, :, None], idx_w[None, :, None, :]]  # (span_h, span_w, sh, sw, I, O)
    span_h, span_w, sh, sw, cin, cout = taps.shape
    out: ArrayT = taps.transpose(0, 1, 4, 2, 3, 5).reshape(span_h, span_w, cin, sh * sw * cout)
    return out


def subpixel_offsets(
    kernel: tuple[int, int], stride: tuple[int, int], pads: tuple[int, int, int, int]
) -> tuple[int, int]:
    """Zero rows and columns the sub-pixel convolution's input needs before its top and left edges."""
    offsets = []
    for k, s, p in ((kernel[0], stride[0], pads[0]), (kernel[1], stride[1], pads[2])):
        offsets.append(-min(d for phase in _phase_taps(k, s, k - 1 - p) for d, _ in phase))
    return offsets[0], offsets[1]


def _tap_table(k: int, s: int, p: int) -> npt.NDArray[np.intp]:
    """(span, s) table of kernel taps for (input offset - first offset, output phase); k for no tap."""
    taps = _phase_taps(k, s, p)
    first = min(d for phase in taps for d, _ in phase)
    span = max(d for phase in taps for d, _ in phase) - first + 1
    table = np.full((span, s), k, np.intp)
    for c, phase in enumerate(taps):
        for d, tap in phase:
            table[d - first, c] = tap
    return table


def _phase_taps(k: int, s: int, p: int) -> list[list[tuple[int, int]]]:
    """For output phase c of a stride-s transposed conv: the (input offset d, kernel tap) pairs it sums.

    lax computes y[s*T + c] = sum_d x[T + d] * w[s*d - c + p] over the taps inside the kernel.
    """
    return [[(d, s * d - c + p) for d in range(-k, k + 1) if 0 <= s * d - c + p < k] for c in range(s)]


def depth_to_space(y: jax.Array, stride: tuple[int, int]) -> jax.Array:
    """(B, H, W, sh*sw*O) with phases major -> (B, sh*H, sw*W, O)."""
    batch, h, w, c = y.shape
    sh, sw = stride
    o = c // (sh * sw)
    y = y.reshape(batch, h, w, sh, sw, o).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(batch, h * sh, w * sw, o)


def uses_subpixel_matmul(op: Conv) -> bool:
    """Whether this transposed convolution (kernel = stride, no crop) runs as one matmul."""
    return op.transposed and op.kernel == op.stride and op.pads == (0, 0, 0, 0)


def prepare_subpixel_matmul(op: Conv, w: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
    """{"subpixel": its one-matmul kernel} for a layer `uses_subpixel_matmul` takes, else nothing."""
    if not uses_subpixel_matmul(op):
        return {}
    return {"subpixel": subpixel_kernel(np.asarray(w, np.float32), op.kernel, op.stride, op.pads)}


def subpixel_or_direct(
    x: jax.Array, op: Conv, layer: Mapping[str, jax.Array], epilogue: EpilogueFn
) -> jax.Array:
    """The layer as one matmul plus depth-to-space where `uses_subpixel_matmul` holds, else lax.conv;
    `layer["subpixel"]` is the kernel prepared at load (else it is traced)."""
    if uses_subpixel_matmul(op):
        # Each input pixel feeds its own stride x stride output block: one matmul, then depth-to-space.
        w1 = layer.get("subpixel")
        if w1 is None:
            w1 = subpixel_kernel(layer["w"], op.kernel, op.stride, op.pads)
        return epilogue(depth_to_space(x @ w1[0, 0], op.stride))
    return epilogue(direct_conv(x, layer["w"], op))
