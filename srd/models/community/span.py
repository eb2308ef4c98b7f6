"""SPAN (Wan et al. 2024, "Swift Parameter-free Attention Network"), as spandrel runs it.

Each Conv3XC layer is trained as a 1x1, 3x3, 1x1 chain plus a 1x1 skip and run as the single 3x3
convolution they compose to: srd composes it from the trained weights in float64 (spandrel recomputes its
eval_conv from them on every forward, so the file's own eval_conv copy is not what runs, and is ignored).
The input is normalised as (x - mean) * 255 unless the file carries `no_norm`. Each SPAB block:
a1 = silu(c1(x)), a2 = silu(c2(a1)), o3 = c3(a2), out = (o3 + x) * (sigmoid(o3) - 0.5); the tail
concatenates the first features, conv_2(last block), the first block's output and the last block's a1,
mixes them with a 1x1 convolution and pixel-shuffles a 3x3 convolution's output.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from srd.errors import ModelError
from srd.models.community.base import (
    INPUT,
    Architecture,
    CommunityNet,
    GraphBuilder,
    count_indexed,
    require,
)
from srd.models.statedict import StateDict
from srd.nn.ops import Activation

_MEAN = (0.4488, 0.4371, 0.4040)
_RANGE = 255.0

Kernel = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]


def conv3xc_kernel(g: GraphBuilder, key: str) -> Kernel:
    """The 3x3 kernel and bias a Conv3XC's trained layers compose to (its update_params, in float64)."""
    w1, b1 = (g.tensor(f"{key}.conv.0.{p}").astype(np.float64) for p in ("weight", "bias"))
    w2, b2 = (g.tensor(f"{key}.conv.1.{p}").astype(np.float64) for p in ("weight", "bias"))
    w3, b3 = (g.tensor(f"{key}.conv.2.{p}").astype(np.float64) for p in ("weight", "bias"))
    sk_w, sk_b = (g.tensor(f"{key}.sk.{p}").astype(np.float64) for p in ("weight", "bias"))
    if w1.shape[2:] != (1, 1) or w2.shape[2:] != (3, 3) or w3.shape[2:] != (1, 1) or sk_w.shape[2:] != (1, 1):
        raise ModelError(f"SPAN: {key} is not a Conv3XC (1x1, 3x3, 1x1 and a 1x1 skip)")
    if (
        w2.shape[1] != w1.shape[0]
        or w3.shape[1] != w2.shape[0]
        or sk_w.shape[:2] != (w3.shape[0], w1.shape[1])
    ):
        raise ModelError(f"SPAN: the layers of {key} do not chain")
    # w[o, i] = sum_m,n w3[o, m] w2[m, n] w1[n, i] at each of the 3x3 taps.
    w = np.einsum("om,mnyx,ni->oiyx", w3[:, :, 0, 0], w2, w1[:, :, 0, 0])
    b = w3[:, :, 0, 0] @ (np.einsum("mnyx,n->m", w2, b1) + b2) + b3
    w[:, :, 1, 1] += sk_w[:, :, 0, 0]
    return w.astype(np.float32), (b + sk_b).astype(np.float32)


def _conv3xc(g: GraphBuilder, key: str, src: str) -> str:
    return g.conv(key, src, kernel=conv3xc_kernel(g, key), padding=1)


def _spab(g: GraphBuilder, key: str, x: str) -> tuple[str, str]:
    """One SPAB block: its output and its first layer's activated output (the tail reads the last
    block's: the reference's SiLU is in place, so the "out1" it returns is silu(c1_r(x)))."""
    a1 = g.activate(_conv3xc(g, f"{key}.c1_r", x), Activation.SILU)
    a2 = g.activate(_conv3xc(g, f"{key}.c2_r", a1), Activation.SILU)
    o3 = _conv3xc(g, f"{key}.c3_r", a2)
    attention = g.activate(o3, Activation.SIGMOID, shift=-0.5)
    return g.mul(g.add(o3, x), attention), a1


class SPAN(Architecture):
    name = "SPAN"
    ignored_suffixes = (".eval_conv.weight", ".eval_conv.bias", "no_norm")

    def matches(self, state: StateDict) -> bool:
        return all(
            k in state
            for k in ("conv_1.sk.weight", "block_1.c1_r.sk.weight", "conv_cat.weight", "upsampler.0.weight")
        )

    def build(self, state: StateDict) -> CommunityNet:
        in_nc = int(require(state, "conv_1.sk.weight", "SPAN").shape[1])
        g = GraphBuilder(state, "SPAN", in_nc)
        normalised = "no_norm" not in state
        x = INPUT
        if normalised:
            if in_nc != 3:
                raise ModelError(f"SPAN: input normalisation needs 3 channels, not {in_nc}")
            x = g.affine(x, (-m for m in _MEAN), (_RANGE,) * 3)
        feature = _conv3xc(g, "conv_1", x)
        blocks = count_indexed(state, "block_")
        if blocks < 1:
            raise ModelError("SPAN: no blocks")
        out, first, o1 = feature, "", ""
        for n in range(1, blocks + 1):
            out, o1 = _spab(g, f"block_{n}", out)
            first = first or out
        tail = _conv3xc(g, "conv_2", out)
        mixed = g.conv("conv_cat", g.concat(feature, tail, first, o1))
        phases = g.conv("upsampler.0", mixed)
        out_nc = in_nc
        scale = next((s for s in (1, 2, 3, 4, 8) if g.channels[phases] == out_nc * s * s), 0)
        if not scale:
            raise ModelError(f"SPAN: the upsampler's {g.channels[phases]} channels are not {in_nc} x scale^2")
        result = g.pixel_shuffle(phases, scale) if scale > 1 else phases
        params = [("features", g.channels[feature]), ("blocks", blocks), ("normalised", normalised)]
        return g.finish(result, scale, params, self.ignored_suffixes)
