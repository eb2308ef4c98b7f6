"""bfloat16 activations between srd's native layers ("native-bf16" keeps the big layers' inputs and outputs
in bfloat16, srd/_native/wino_layer.h): every kernel reads a bfloat16 blob exactly as the float32 blob of
the same values, and writes bfloat16 as its float32 result rounded to nearest even, on every ISA."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srd.models import load_step
from srd.nn import prepare_weights
from srd.nn.conv import native
from srd.nn.conv.narrow import conv3x3_direct, pack_narrow
from srd.nn.conv.native_backend import NATIVE_BF16
from srd.nn.conv.operands import output_dtype
from srd.nn.conv.patch import pack_down, pack_down_bf16, pack_up, pack_up_bf16, patch_matmul
from srd.nn.conv.subpixel import subpixel_kernel
from srd.nn.ops.base import Activation
from srd.nn.ops.binary import BinaryKind, BinaryOp

pytestmark = pytest.mark.skipif(not native.available(), reason="srd's native extension is not built")
FLOAT_ISAS = [isa for isa in ("generic", "avx2", "avx512") if native.isa_supported(isa)]
BF16_ISAS = [isa for isa in native.BF16_ISAS if native.isa_supported(isa)]
BF16 = jnp.bfloat16


def _blob(rng: np.random.Generator, *shape: int) -> jax.Array:
    """A bfloat16 blob (its values exactly representable, so the float32 copy is the same numbers)."""
    return jnp.asarray(rng.standard_normal(shape).astype(np.float32)).astype(BF16)


def _packed(isa: str, k: np.ndarray) -> jax.Array:
    return jnp.asarray(native.pack_kernel_bf16(k) if isa in native.BF16_ISAS else native.pack_kernel(k))


@pytest.mark.parametrize("isa", FLOAT_ISAS + BF16_ISAS)
def test_winograd_reads_bfloat16_parts_and_addend_as_their_values(isa: str) -> None:
    """Parts of either type (an f32 part next to a bfloat16 one, as an RRDB's first dense layer reads its
    float32 block input beside bfloat16 layer outputs) and a bfloat16 addend give exactly the float32
    call's output."""
    rng = np.random.default_rng(3)
    a = jnp.asarray(rng.standard_normal((2, 14, 17, 32)).astype(np.float32))
    b = _blob(rng, 2, 14, 17, 21)  # a channel tail: masked bfloat16 loads
    k = (rng.standard_normal((3, 3, 53, 40)) / 20).astype(np.float32)
    bias = jnp.asarray(rng.standard_normal(40).astype(np.float32))
    packed = _packed(isa, k)
    mixed = native.conv3x3([a, b], packed, bias, 40, (1, 1, 0, 1), "leaky_relu", 0.1, isa=isa)
    wide = native.conv3x3(
        [a, b.astype(jnp.float32)], packed, bias, 40, (1, 1, 0, 1), "leaky_relu", 0.1, isa=isa
    )
    assert mixed.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(mixed), np.asarray(wide))

    k2 = (rng.standard_normal((3, 3, 48, 32)) / 20).astype(np.float32)
    x, skip = _blob(rng, 1, 12, 13, 48), _blob(rng, 1, 16, 15, 48)
    packed2 = _packed(isa, k2)
    summed = native.conv3x3([x], packed2, None, 32, (1, 1, 1, 1), isa=isa, addend=(skip, 2, 1))
    expected = native.conv3x3(
        [x.astype(jnp.float32)],
        packed2,
        None,
        32,
        (1, 1, 1, 1),
        isa=isa,
        addend=(skip.astype(jnp.float32), 2, 1),
    )
    np.testing.assert_array_equal(np.asarray(summed), np.asarray(expected))


@pytest.mark.parametrize("isa", FLOAT_ISAS + BF16_ISAS)
@pytest.mark.parametrize(
    ("h", "w", "cin", "cout"),
    [
        (13, 19, 32, 40),  # channel tails: masked bfloat16 stores
        (262, 262, 64, 128),  # a 17 MB output: non-temporal stores, 32 channels at a time
    ],
)
def test_winograd_writes_bfloat16_rounded_to_nearest_even(
    isa: str, h: int, w: int, cin: int, cout: int
) -> None:
    """out_dtype bfloat16 is the float32 output rounded to nearest even (JAX's conversion), bit for bit."""
    if h > 100 and isa in ("generic", "avx2"):
        pytest.skip("the streamed store exists only in the 16-lane builds; the small case covers this ISA")
    rng = np.random.default_rng(h)
    x = jnp.asarray(rng.standard_normal((1, h, w, cin)).astype(np.float32))
    k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
    bias = jnp.asarray(rng.standard_normal(cout).astype(np.float32))
    packed = _packed(isa, k)
    f32 = native.conv3x3(x, packed, bias, cout, (1, 1, 1, 1), "relu", isa=isa)
    b16 = native.conv3x3(x, packed, bias, cout, (1, 1, 1, 1), "relu", isa=isa, out_dtype=BF16)
    assert b16.dtype == BF16 and b16.shape == f32.shape
    np.testing.assert_array_equal(
        np.asarray(b16).view(np.uint16), np.asarray(f32.astype(BF16)).view(np.uint16)
    )


@pytest.mark.parametrize("isa", FLOAT_ISAS + BF16_ISAS)
def test_bfloat16_output_keeps_infinities_and_nan(isa: str) -> None:
    """Overflowed activations stay what they are in bfloat16 (+-inf, NaN), as JAX's own conversion keeps
    them, rather than rounding into other values (here from the bias, the kernel's last addition)."""
    x = jnp.zeros((1, 8, 8, 16), jnp.float32)
    bias = np.zeros(32, np.float32)
    bias[:3] = [np.inf, -np.inf, np.nan]
    k = np.zeros((3, 3, 16, 32), np.float32)
    y = native.conv3x3(x, _packed(isa, k), jnp.asarray(bias), 32, (1, 1, 1, 1), isa=isa, out_dtype=BF16)
    centre = np.asarray(y.astype(jnp.float32))[0, 3, 5]
    assert centre[0] == np.inf and centre[1] == -np.inf and np.isnan(centre[2])


@pytest.mark.parametrize("isa", FLOAT_ISAS + BF16_ISAS)
@pytest.mark.parametrize("mode", ["down", "up"])
def test_patch_layers_read_and_write_bfloat16(isa: str, mode: str) -> None:
    """The 2x2 stride-2 layers: a bfloat16 input reads as its values, a bfloat16 output is the float32 one
    rounded, for both weight precisions; the big up-sampling case (a 35 MB output) streams it."""
    rng = np.random.default_rng(11)
    big = mode == "up" and isa not in ("generic", "avx2")  # streamed stores: the 16-lane builds only
    for h, w in ((9, 14), (260, 260)) if big else ((9, 14),):
        cin, cout = 64, 64
        x = _blob(rng, 1, h, w, cin)
        k = (rng.standard_normal((2, 2, cin, cout)) / 16).astype(np.float32)
        bf16 = isa in native.BF16_ISAS
        code = native.ISA_CODES[isa]
        if mode == "down":
            packed = jnp.asarray(pack_down_bf16(k) if bf16 else pack_down(k))
        else:
            sub = np.asarray(subpixel_kernel(jnp.asarray(k), (2, 2), (2, 2), (0, 0, 0, 0)))
            packed = jnp.asarray(pack_up_bf16(sub) if bf16 else pack_up(sub))
        bias = jnp.asarray(rng.standard_normal(cout if mode == "down" else 2 * cout).astype(np.float32))
        args = (packed, bias, cout, mode, Activation.LEAKY_RELU, 0.2, code)
        from_b16 = patch_matmul(x, *args)
        from_f32 = patch_matmul(x.astype(jnp.float32), *args)
        np.testing.assert_array_equal(np.asarray(from_b16), np.asarray(from_f32))
        to_b16 = patch_matmul(x, *args, out_dtype=BF16)
        assert to_b16.dtype == BF16
        np.testing.assert_array_equal(
            np.asarray(to_b16).view(np.uint16), np.asarray(from_f32.astype(BF16)).view(np.uint16)
        )


@pytest.mark.parametrize("isa", FLOAT_ISAS)
def test_direct_layer_reads_bfloat16(isa: str) -> None:
    """A network's last layer (64 -> 3, direct) reads the bfloat16 activations before it as their values."""
    rng = np.random.default_rng(2)
    x = _blob(rng, 2, 21, 30, 64)
    k = (rng.standard_normal((3, 3, 64, 3)) / 24).astype(np.float32)
    packed = jnp.asarray(pack_narrow(k))
    bias = jnp.asarray(rng.standard_normal(3).astype(np.float32))
    code = native.ISA_CODES[isa]
    got = conv3x3_direct(x, packed, bias, (1, 1, 1, 1), isa=code)
    expected = conv3x3_direct(x.astype(jnp.float32), packed, bias, (1, 1, 1, 1), isa=code)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_other_types_are_refused_or_widened() -> None:
    """Outputs are float32 or bfloat16 only; a float16 input is read as float32."""
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        output_dtype(jnp.float16, "conv3x3")
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((1, 8, 8, 16)).astype(np.float16))
    k = (rng.standard_normal((3, 3, 16, 32)) / 12).astype(np.float32)
    packed = jnp.asarray(native.pack_kernel(k))
    got = native.conv3x3(x, packed, None, 32)
    np.testing.assert_array_equal(
        np.asarray(got), np.asarray(native.conv3x3(x.astype(jnp.float32), packed, None, 32))
    )


@pytest.mark.skipif(not BF16_ISAS, reason="no AMX-BF16 or AVX512-BF16 on this CPU")
def test_native_bf16_network_keeps_big_activations_in_bfloat16() -> None:
    """In upconv_7 under native-bf16 the layers with >= 32 outputs hand bfloat16 to the next one; the first
    layer (16 outputs) and the last (3 x 4 sub-pixel phases) stay float32, as does the network's output."""
    step = load_step("upconv7-art", -1, 2)
    prepared = prepare_weights(step.spec, step.weights, "native-bf16")
    x = jnp.asarray(np.random.default_rng(0).random((1, 20, 20, 256), np.float32))
    types = {}
    for op in step.spec.ops:
        name = getattr(op, "weight_name", None)
        if name is None or name not in prepared:
            continue
        layer = {key: jnp.asarray(value) for key, value in prepared[name].items()}
        cin = step.weights[name]["w"].shape[2]
        types[name] = (step.weights[name]["w"].shape[3], NATIVE_BF16.conv(x[..., :cin], op, layer).dtype)
    assert any(cout >= 32 for cout, _ in types.values())
    for cout, dtype in types.values():
        assert dtype == (BF16 if cout >= 32 else jnp.float32), types


def test_image_times_channel_vector_keeps_the_image_type() -> None:
    """A squeeze-excitation's scale (an image blob times a per-channel vector) keeps bfloat16 activations in
    bfloat16; two whole blobs of different types still widen (a float32 skip path plus bfloat16)."""
    image = jnp.ones((1, 4, 4, 8), BF16)
    scale = jnp.full((1, 8), 0.5, jnp.float32)
    op = BinaryOp(srcs=("a", "b"), dst="c", kind=BinaryKind.MUL)
    y = op.apply([image, scale], {}, NATIVE_BF16, None)
    assert y.dtype == BF16 and float(y[0, 0, 0, 0]) == 0.5
    assert op.apply([scale, image], {}, NATIVE_BF16, None).dtype == BF16
    added = BinaryOp(srcs=("a", "b"), dst="c").apply(
        [image, jnp.ones((1, 4, 4, 8), jnp.float32)], {}, NATIVE_BF16, None
    )
    assert added.dtype == jnp.float32
