"""Real-ESRGAN's Compact network (SRVGGNetCompact): `body.0` a 3x3 convolution, then PReLU and 3x3
convolution pairs (`body.1`, `body.2`, ...), the last convolution giving out_channels * scale^2 channels,
pixel-shuffled, plus the nearest-neighbour upscale of the input. Any depth, width and scale."""

from __future__ import annotations

import math

from srd.errors import ModelError
from srd.models.community.base import INPUT, Architecture, CommunityNet, GraphBuilder, count_indexed
from srd.models.statedict import StateDict


class Compact(Architecture):
    name = "Compact"

    def matches(self, state: StateDict) -> bool:
        return "body.0.weight" in state and "body.1.weight" in state and state["body.0.weight"].ndim == 4

    def build(self, state: StateDict) -> CommunityNet:
        layers = count_indexed(state, "body.")
        if layers < 3 or layers % 2 == 0:
            raise ModelError(
                f"Compact: {layers} body layers; expected convolution / PReLU pairs and a last one"
            )
        in_nc = int(state["body.0.weight"].shape[1])
        g = GraphBuilder(state, "Compact", in_nc)
        x = INPUT
        for n in range(0, layers - 1, 2):
            x = g.prelu(f"body.{n + 1}", g.conv(f"body.{n}", x))
        x = g.conv(f"body.{layers - 1}", x)
        phases = g.channels[x]
        scale = next((s for s in (1, 2, 3, 4, 8) if phases == in_nc * s * s), 0)
        if not scale:
            raise ModelError(f"Compact: the last layer's {phases} channels are not {in_nc} x scale^2")
        out = g.pixel_shuffle(x, scale) if scale > 1 else x
        base = g.nearest(INPUT, scale) if scale > 1 else INPUT
        out = g.add(out, base)
        convs = (layers - 3) // 2
        features = int(state["body.0.weight"].shape[0])
        assert math.isqrt(phases // in_nc) == scale
        return g.finish(out, scale, [("convolutions", convs), ("features", features)])
