"""srd's bfloat16 Winograd kernels (`--conv native-bf16`: AMX tiles, or AVX512-BF16 without AMX) against a
float64 simulation of the published algorithm with the same two roundings: the transformed weights U and
the transformed input tiles V to bfloat16, everything else exact."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from support.bfloat16 import bfloat16_rounded

from srd.engine import Engine
from srd.imaging.raster import RasterImage
from srd.models import load_step
from srd.nn import prepare_weights, resolve
from srd.nn.conv import native
from srd.nn.conv.bfloat16 import to_bfloat16_bits
from srd.nn.conv.native_backend import BF16_MIN_CHANNELS
from srd.nn.conv.winograd_transforms import transform_kernel, winograd_matrices
from srd.settings import EngineSettings, ModelSettings

pytestmark = pytest.mark.skipif(
    not native.bf16_supported(),
    reason="no AMX-BF16 or AVX512-BF16 on this CPU: native-bf16 is refused (tests/test_native.py)",
)
BF16_ISAS = [isa for isa in native.BF16_ISAS if native.isa_supported(isa)]
SET5 = Path(__file__).resolve().parents[3] / "shared" / "data" / "set5"


def _simulated(x: np.ndarray, k: np.ndarray, b: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """F(6x6, 3x3) in float64 from the matrices, V and U rounded to bfloat16 as the kernel rounds them."""
    at, _, bt = (np.asarray(m, np.float64) for m in winograd_matrices(6))
    top, bottom, left, right = pads
    n, h, w, _ = x.shape
    oh, ow = h + top + bottom - 2, w + left + right - 2
    th, tw = -(-oh // 6), -(-ow // 6)
    xp = np.zeros((n, th * 6 + 2, tw * 6 + 2, x.shape[3]))
    xp[:, top : top + h, left : left + w] = x
    u = bfloat16_rounded(transform_kernel(k, 6)).reshape(8, 8, k.shape[2], k.shape[3])
    out = np.zeros((n, th * 6, tw * 6, k.shape[3]))
    for i in range(th):
        for j in range(tw):
            d = xp[:, i * 6 : i * 6 + 8, j * 6 : j * 6 + 8]  # n x 8 x 8 x C
            v = bfloat16_rounded(np.einsum("ab,nbcz,dc->nadz", bt, d, bt).astype(np.float32))
            m = np.einsum("nabz,abzo->nabo", v, u)
            out[:, i * 6 : i * 6 + 6, j * 6 : j * 6 + 6] = np.einsum("ra,nabo,sb->nrso", at, m, at)
    y = out[:, :oh, :ow] + b
    return np.maximum(y, 0.1 * y)


@pytest.mark.parametrize("isa", BF16_ISAS)
@pytest.mark.parametrize(
    ("n", "h", "w", "cin", "cout", "pads", "block"),
    [
        (1, 20, 23, 32, 32, (0, 0, 0, 0), 0),  # ragged last tiles
        (2, 17, 9, 48, 40, (1, 1, 1, 1), 0),  # batch, padding, channels not multiples of 32
        (1, 30, 31, 64, 96, (1, 0, 0, 1), 7),  # asymmetric padding, blocks ending mid register block
        (1, 50, 44, 128, 64, (0, 0, 0, 0), 0),  # several 32-channel steps of K
        (3, 3, 3, 3, 12, (0, 0, 0, 0), 0),  # image channels in and out, one output pixel
    ],
)
def test_bf16_kernel_matches_simulation(
    isa: str, n: int, h: int, w: int, cin: int, cout: int, pads: tuple[int, int, int, int], block: int
) -> None:
    """Nearly every output equals the simulation to float32 accumulation error; the rest differ by a few
    bfloat16 roundings of V values that fell the other way after float32 transforms (more of them with
    more input channels), far below bfloat16's own error against exact arithmetic (~5% rms here)."""
    rng = np.random.default_rng(cin * cout + h)
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    expected = _simulated(x, k, b, pads)
    out = native.conv3x3(
        jnp.asarray(x),
        jnp.asarray(native.pack_kernel_bf16(k)),
        jnp.asarray(b),
        cout,
        pads,
        "leaky_relu",
        0.1,
        isa=isa,
        block=block,
    )
    got = np.asarray(out, np.float64)
    assert got.shape == expected.shape
    close = np.abs(got - expected) <= 1e-4 * (1 + np.abs(expected))
    assert close.mean() > 0.95, f"only {close.mean():.4f} of outputs match the simulation"
    scale = np.sqrt(np.mean(expected**2))
    assert np.sqrt(np.mean((got - expected) ** 2)) < 0.002 * scale


def test_bf16_packing_layout() -> None:
    """[64][O'/16][I'/2][16 outputs x 2 inputs], zero padded to 32 inputs and 32 outputs."""
    rng = np.random.default_rng(5)
    k = rng.standard_normal((3, 3, 40, 20)).astype(np.float32)
    packed = native.pack_kernel_bf16(k)
    assert packed.shape == (64, 2, 32, 32) and packed.dtype == np.uint16
    u = transform_kernel(k, 6)
    for p, i, o in [(0, 0, 0), (17, 5, 3), (63, 39, 19), (40, 38, 16)]:
        expected = to_bfloat16_bits(u[p, i, o])
        assert packed[p, o // 16, i // 2, (o % 16) * 2 + i % 2] == expected
    assert not packed[:, :, 20:].any() and not packed[:, 1, :, 8:].any()


def test_rounding_is_round_to_nearest_even() -> None:
    """to_bfloat16_bits agrees with ml_dtypes' bfloat16 (what JAX uses), ties and signs included."""
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.standard_normal(10_000).astype(np.float32),
            np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 0.0, -0.0, 3.0e38], np.float32),
        ]
    )
    expected = np.asarray(jnp.asarray(values).astype(jnp.bfloat16)).view(np.uint16)
    np.testing.assert_array_equal(to_bfloat16_bits(values), expected)


def test_only_big_layers_go_bf16() -> None:
    """The first and last layers of upconv_7 (3 channels in, 3 x 4 sub-pixel phases out) stay float32."""
    step = load_step("upconv7-art", -1, 2)
    prepared = prepare_weights(step.spec, step.weights, "native-bf16")
    dtypes = {name: layer["native"].dtype for name, layer in prepared.items() if "native" in layer}
    small = {name for name, layer in step.weights.items() if min(layer["w"].shape[2:]) < BF16_MIN_CHANNELS}
    assert small and all(dtypes[name] == np.float32 for name in small if name in dtypes)
    assert sum(dtype == np.uint16 for dtype in dtypes.values()) >= 3


def test_wrongly_packed_or_mismatched_weights_are_an_error() -> None:
    """bfloat16 weights for another channel count, or weights of the other precision for an ISA, are
    refused rather than read past or misread."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((1, 10, 10, 64)).astype(np.float32))
    wrong = jnp.asarray(native.pack_kernel_bf16(np.zeros((3, 3, 32, 32), np.float32)))
    with pytest.raises(jax.errors.JaxRuntimeError, match="srd_winograd_f63_bf16"):
        native.conv3x3(x, wrong, None, 32).block_until_ready()
    k = np.zeros((3, 3, 64, 32), np.float32)
    with pytest.raises(jax.errors.JaxRuntimeError, match="bfloat16 ISAs"):
        native.conv3x3(x, jnp.asarray(native.pack_kernel_bf16(k)), None, 32, isa="avx512").block_until_ready()
    with pytest.raises(jax.errors.JaxRuntimeError, match="take bfloat16 weights"):
        native.conv3x3(x, jnp.asarray(native.pack_kernel(k)), None, 32, isa=BF16_ISAS[0]).block_until_ready()


@pytest.mark.skipif(not SET5.is_dir(), reason="needs ../shared/data/set5")
@pytest.mark.parametrize("model", ["upconv7-art", "cunet"])
def test_bf16_engine_stays_close_to_float32(model: str) -> None:
    """On a real, sharp photo the bfloat16 engine's 8-bit output is about half a level from float32's on
    average, 50 dB PSNR between them (measured 0.47-0.52 and 51 dB; bench/quality.py: 0.02-0.03 dB of
    PSNR against the ground truth on Set14); a packing or layer mix-up would be far off."""
    with Image.open(SET5 / "butterfly.png") as img:
        pixels = np.asarray(img.convert("RGB"), np.float32)[:160, :200] / 255
    image = RasterImage(pixels)
    outputs = [
        np.asarray(Engine(ModelSettings(name=model), EngineSettings(conv=conv)).upscale(image).pixels) * 255
        for conv in ("native", "native-bf16")
    ]
    diff = np.abs(np.floor(outputs[0] + 0.5) - np.floor(outputs[1] + 0.5))
    assert diff.mean() < 0.75 and np.percentile(diff, 99) <= 4, (diff.mean(), diff.max())
    psnr = 10 * np.log10(255**2 / np.mean((outputs[0] - outputs[1]) ** 2))
    assert psnr > 46


def test_native_bf16_only_where_it_can_run() -> None:
    """Where the CPU has bfloat16 matmuls native-bf16 resolves to itself; off the CPU it is an error."""
    assert resolve("native-bf16", "cpu").name == "native-bf16"
    with pytest.raises(ValueError, match="CPU only"):
        resolve("native-bf16", "gpu")
