"""Convolutions fused with the op after or before them where a backend can (srd's native kernel): a PReLU
applied as the convolution writes (realesr-animevideov3), and a U-Net's skip sum (a cropped blob plus a blob)
read as the two blobs in place (cunet, Real-CUGAN): on cunet's 512 px tile the skip sums and crops took 0.045
s of a 0.83 s call (bench/profile_layers.py, Intel Xeon). The unfused ops are still traced; with nothing
reading them, XLA drops them as dead code, as it drops a Concat whose parts a convolution read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jax

from srd.nn.conv.base import ConvBackend
from srd.nn.graph import NetworkSpec
from srd.nn.ops.base import Extent, LayerWeights, Op
from srd.nn.ops.binary import BinaryKind, BinaryOp
from srd.nn.ops.conv import Conv
from srd.nn.ops.crop import Crop, CropLike
from srd.nn.ops.elementwise import Eltwise, EltwiseOp
from srd.nn.ops.prelu import PReLU

JaxWeights = Mapping[str, LayerWeights]


def prelu_pairs(spec: NetworkSpec, kept: set[str]) -> dict[str, PReLU]:
    """The PReLUs each convolution's output feeds when that PReLU is its only reader and the blob is
    neither the network's output nor one asked for or overridden (`kept`): {convolution output: PReLU}."""
    readers = _readers(spec)
    convs = {op.output for op in spec.ops if isinstance(op, Conv)}
    return {
        op.inputs[0]: op
        for op in spec.ops
        if isinstance(op, PReLU)
        and op.inputs[0] in convs
        and readers[op.inputs[0]] == 1
        and op.inputs[0] not in kept | {spec.output}
        and op.output not in kept
    }


def skip_sums(spec: NetworkSpec, kept: set[str]) -> dict[str, tuple[str, str, int, int]]:
    """Two-blob sums (Eltwise SUM with unit coefficients, BinaryOp ADD) that only a convolution reads,
    and that are neither the network's output nor kept: {sum: (blob, addend blob, top, left)}, the
    addend read from (top, left) on: a crop's source at the crop's offsets (a U-Net skip: waifu2x's
    CropLike, Real-CUGAN's Crop of rows and columns), else the other blob at (0, 0). The backend checks
    the shapes when it runs (a broadcasting sum is not fused)."""
    readers = _readers(spec)
    read_by_conv = {op.inputs[0] for op in spec.ops if isinstance(op, Conv)}
    crops = {op.output: offsets for op in spec.ops if (offsets := _crop_offsets(op)) is not None}
    found: dict[str, tuple[str, str, int, int]] = {}
    for op in spec.ops:
        if not _is_plain_sum(op) or op.output in kept | {spec.output}:
            continue
        if op.output not in read_by_conv or readers[op.output] != 1:
            continue
        a, b = op.inputs
        if b in crops and a not in crops:
            a, b = b, a
        if a in crops:
            source, top, left = crops[a]
            found[op.output] = (b, source, top, left)
        else:
            found[op.output] = (a, b, 0, 0)
    return found


def _is_plain_sum(op: Op) -> bool:
    """a + b of two blobs, nothing scaled."""
    if isinstance(op, Eltwise):
        return op.op is EltwiseOp.SUM and len(op.inputs) == 2 and all(c == 1.0 for c in op.coeffs)
    return isinstance(op, BinaryOp) and op.kind is BinaryKind.ADD and len(op.inputs) == 2


def _crop_offsets(op: Op) -> tuple[str, int, int] | None:
    """(source, top, left) of a crop of rows and columns only, else None."""
    if isinstance(op, CropLike):
        return op.src, op.top, op.left
    if (
        isinstance(op, Crop)
        and op.slices
        and all(axis in (1, 2) and start >= 0 for axis, start, _ in op.slices)
    ):
        starts = {axis: start for axis, start, _ in op.slices}
        return op.src, starts.get(1, 0), starts.get(2, 0)
    return None


def _readers(spec: NetworkSpec) -> dict[str, int]:
    readers: dict[str, int] = {}
    for op in spec.ops:
        for blob in op.inputs:
            readers[blob] = readers.get(blob, 0) + 1
    return readers


@dataclass(frozen=True)
class Fusions:
    """What `apply_network` may fuse in one network: {convolution output: the PReLU reading it} and
    {skip sum: (blob, addend, top, left)}."""

    prelus: Mapping[str, PReLU]
    sums: Mapping[str, tuple[str, str, int, int]]

    @classmethod
    def of(cls, spec: NetworkSpec, kept: set[str]) -> Fusions:
        """The fusions of `spec` that leave the blobs in `kept` (overridden or asked for) intact."""
        return cls(prelu_pairs(spec, kept), skip_sums(spec, kept))

    def run(
        self,
        op: Conv,
        layer: LayerWeights,
        weights: JaxWeights,
        backend: ConvBackend,
        blobs: dict[str, jax.Array],
        parts: Mapping[str, list[jax.Array]],
        in_extents: Sequence[Extent | None] | None,
    ) -> bool:
        """Run `op` fused where it can be and the backend does it, storing what it writes in `blobs`;
        False where the caller runs it as usual."""
        extent = in_extents[0] if in_extents is not None and op.zero_pads else None
        prelu = self.prelus.get(op.output)
        if prelu is not None:
            xs = parts.get(op.inputs[0], [blobs[op.inputs[0]]])
            y = backend.conv_prelu(xs, op, layer, weights[prelu.weight_name]["slope"], extent)
            if y is not None:
                blobs[prelu.output] = y
                return True
            return False
        summed = self.sums.get(op.inputs[0])
        if summed is not None:
            x_blob, add_blob, top, left = summed
            y = backend.conv_sum(blobs[x_blob], (blobs[add_blob], top, left), op, layer, extent)
            if y is not None:
                blobs[op.output] = y
                return True
        return False
