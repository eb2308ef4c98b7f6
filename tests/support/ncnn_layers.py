"""Run hand-written ncnn nets both in ncnn (float32 CPU) and as srd's ops, for single-layer checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import jax.numpy as jnp
import ncnn
import numpy as np
import numpy.typing as npt

from srd.models.ncnn import LAYER_READERS, Layer, _BinReader, parse_param
from srd.nn.conv import DIRECT
from srd.nn.graph import Weights
from srd.nn.ops import Op
from support.realsr_peer import to_mat

F32Array = npt.NDArray[np.float32]


def param_text(lines: Sequence[str]) -> str:
    """A .param file of these layer lines (the blob count is only a hint to ncnn)."""
    return f"7767517\n{len(lines)} {4 * len(lines)}\n" + "\n".join(lines) + "\n"


def run_ncnn(
    tmp: Path, lines: Sequence[str], bin_data: bytes, feeds: Mapping[str, F32Array], output: str
) -> F32Array:
    """The net's `output` blob computed by ncnn, inputs given CHW (or 1-D) by blob name."""
    (tmp / "net.param").write_text(param_text(lines))
    (tmp / "net.bin").write_bytes(bin_data)
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.num_threads = 1
    assert net.load_param(str(tmp / "net.param")) == 0
    assert net.load_model(str(tmp / "net.bin")) == 0
    ex = net.create_extractor()
    for name, value in feeds.items():
        ex.input(name, to_mat(value))
    ret, mat = ex.extract(output)
    assert ret == 0
    return np.array(mat, dtype=np.float32).copy()


def read_ops(lines: Sequence[str], bin_data: bytes) -> tuple[list[Op], Weights]:
    """srd's ops and weights for the net's non-Input layers, read by srd's own layer readers."""
    reader, weights, ops = _BinReader(bin_data), {}, []
    for raw in parse_param(param_text(lines)):
        if raw.type != "Input":
            ops.append(LAYER_READERS[raw.type](Layer(**raw.__dict__), reader, weights))
    reader.check_consumed()
    return ops, weights


def run_ours(lines: Sequence[str], bin_data: bytes, feeds: Mapping[str, F32Array], output: str) -> F32Array:
    """The net's `output` blob computed by srd's ops (lax.conv), inputs and result CHW (or 1-D)."""
    ops, weights = read_ops(lines, bin_data)
    blobs = {
        name: jnp.asarray(v.transpose(1, 2, 0)[None] if v.ndim == 3 else v[None]) for name, v in feeds.items()
    }
    for op in ops:
        layer = {k: jnp.asarray(v) for k, v in weights.get(op.weight_name or "", {}).items()}
        blobs[op.output] = op.apply([blobs[b] for b in op.inputs], layer, DIRECT, None)
    out = np.asarray(blobs[output])[0]
    return out.transpose(2, 0, 1) if out.ndim == 3 else out
