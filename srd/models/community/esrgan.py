"""ESRGAN's RRDB network (Wang et al. 2018) in its three key layouts: the original "old arch"
(`model.0`, `model.1.sub.N.RDBk.convj.0`, ...), BasicSR / Real-ESRGAN's (`conv_first`, `body.N.rdbk.convj`,
`conv_body`, `conv_up1`, `conv_hr`, `conv_last`) and BSRGAN / RealSR's (`RRDB_trunk`, `trunk_conv`,
`upconv1`, `HRconv`). Any block count, width and growth; 2^k upscaling by nearest-neighbour steps;
Real-ESRGAN's pixel-unshuffled inputs (x2plus: 12 input channels for 3 out, a 2x model; 48 for a 1x one).

The network (as BasicSR's RRDBNet and spandrel's ESRGAN compute it): feat = conv_first(x); each residual
dense block's convolutions read the concatenation of its input and every earlier output, LeakyReLU 0.2 after
all but the fifth, and return 0.2 * x5 + x; three of them make an RRDB, returning 0.2 * out + x; the trunk
adds conv_body(RRDBs(feat)) to feat; each upsampling step is nearest 2x, a convolution and LeakyReLU 0.2;
then conv_hr with LeakyReLU 0.2 and conv_last.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from srd.errors import ModelError
from srd.models.community.base import INPUT, Architecture, CommunityNet, GraphBuilder
from srd.models.statedict import StateDict
from srd.nn.ops import Activation

_SLOPE = 0.2
_RESIDUAL = 0.2


@dataclass(frozen=True)
class _Layout:
    """Where one key layout keeps each layer (`{i}` a block, `{j}` a dense block, `{k}` a conv)."""

    name: str
    first: str
    dense: str
    trunk: str  # `{nb}` is the block count in the old layout
    up: str  # `{n}` counts from 1
    hr: str
    last: str  # `{n}` is the number of upsampling steps (old layout)


_OLD = _Layout("old", "model.0", "model.1.sub.{i}.RDB{j}.conv{k}.0", "model.1.sub.{nb}", "model.{m}", "", "")
_NEW = _Layout(
    "BasicSR", "conv_first", "body.{i}.rdb{j}.conv{k}", "conv_body", "conv_up{n}", "conv_hr", "conv_last"
)
_BSRGAN = _Layout(
    "BSRGAN", "conv_first", "RRDB_trunk.{i}.RDB{j}.conv{k}", "trunk_conv", "upconv{n}", "HRconv", "conv_last"
)


def _layout(state: StateDict) -> _Layout | None:
    if "model.0.weight" in state and "model.1.sub.0.RDB1.conv1.0.weight" in state:
        return _OLD
    if "conv_first.weight" in state and "body.0.rdb1.conv1.weight" in state:
        return _NEW
    if "conv_first.weight" in state and "RRDB_trunk.0.RDB1.conv1.weight" in state:
        return _BSRGAN
    return None


def _blocks(state: StateDict, layout: _Layout) -> int:
    pattern = re.compile(re.escape(layout.dense.split("{i}")[0]) + r"(\d+)\.")
    found = {int(m.group(1)) for k in state if (m := pattern.match(k))}
    if layout is _OLD:
        found.discard(max(found, default=0))  # the highest index of model.1.sub is the trunk convolution
    if not found or found != set(range(len(found))):
        raise ModelError("ESRGAN: the residual blocks are not numbered 0, 1, 2, ...")
    return len(found)


def _upsamplers(state: StateDict, layout: _Layout) -> list[str]:
    """The upsampling convolutions in order: old layout model.3, model.6, ... (Upsample, conv, LReLU
    each); the others conv_up1 / upconv1, 2, ..."""
    names: list[str] = []
    n = 1
    while True:
        name = f"model.{3 * n}" if layout is _OLD else layout.up.format(n=n)
        if f"{name}.weight" not in state:
            return names
        names.append(name)
        n += 1


class ESRGAN(Architecture):
    name = "ESRGAN"

    def matches(self, state: StateDict) -> bool:
        return _layout(state) is not None

    def build(self, state: StateDict) -> CommunityNet:
        layout = _layout(state)
        assert layout is not None
        if any(".conv1x1." in k for k in state):
            raise ModelError("ESRGAN+ (RRDBs with 1x1 convolutions and noise) is not supported")
        blocks = _blocks(state, layout)
        ups = _upsamplers(state, layout)
        if layout is _OLD:
            trunk, hr, last = (
                f"model.1.sub.{blocks}",
                f"model.{3 * len(ups) + 2}",
                f"model.{3 * len(ups) + 4}",
            )
        else:
            trunk, hr, last = layout.trunk, layout.hr, layout.last
        first_w = state[f"{layout.first}.weight"]
        last_w = state.get(f"{last}.weight")
        if last_w is None or first_w.ndim != 4 or last_w.ndim != 4:
            raise ModelError(f"ESRGAN ({layout.name} keys): no final convolution {last}")
        in_nc, out_nc, width = int(first_w.shape[1]), int(last_w.shape[0]), int(first_w.shape[0])
        shuffle = 1
        if in_nc in (out_nc * 4, out_nc * 16):
            shuffle = math.isqrt(in_nc // out_nc)  # Real-ESRGAN's pixel-unshuffled input (x2plus, 1x)
        image_channels = in_nc // (shuffle * shuffle)
        g = GraphBuilder(state, f"ESRGAN ({layout.name} keys)", image_channels, "ESRGAN")
        x = g.pixel_unshuffle(INPUT, shuffle) if shuffle > 1 else INPUT
        feat = g.conv(layout.first, x)
        body = feat
        growth = 0
        for i in range(blocks):
            block_in = body
            for j in (1, 2, 3):
                dense_in = body
                outs = [dense_in]
                for k in (1, 2, 3, 4, 5):
                    name = layout.dense.format(i=i, j=j, k=k)
                    src = outs[0] if k == 1 else g.concat(*outs)
                    act = Activation.LEAKY_RELU if k < 5 else Activation.NONE
                    y = g.conv(name, src, act, _SLOPE if k < 5 else 0.0)
                    if k == 1:
                        growth = g.channels[y]
                    outs.append(y)
                body = g.add(outs[-1], dense_in, coeffs=(_RESIDUAL, 1.0))
            body = g.add(body, block_in, coeffs=(_RESIDUAL, 1.0))
        fea = g.add(feat, g.conv(trunk, body))
        for name in ups:
            fea = g.conv(name, g.nearest(fea, 2), Activation.LEAKY_RELU, _SLOPE)
        fea = g.conv(hr, fea, Activation.LEAKY_RELU, _SLOPE)
        out = g.conv(last, fea)
        scale_num = 2 ** len(ups)
        if scale_num % shuffle:
            raise ModelError(
                f"ESRGAN: {len(ups)} upsampling steps cannot undo a pixel unshuffle by {shuffle}"
            )
        scale = scale_num // shuffle
        params = [("keys", layout.name), ("blocks", blocks), ("features", width), ("growth", growth)]
        if shuffle > 1:
            params.append(("pixel unshuffle", shuffle))
        return g.finish(out, scale, params)
