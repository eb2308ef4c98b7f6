"""srd's native 2x2 stride-2 layers (srd.nn.conv.patch) against lax.conv: down (a valid stride-2
convolution) and up (a stride-2 transposed convolution, lax's lhs-dilated form), any size, batch,
channel count and activation, bias or none; the bfloat16 op against the same with its inputs and
weights rounded to bfloat16 first (float64 sums)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from support.bfloat16 import bfloat16_rounded

from srd.models import load_step
from srd.nn import Activation, Conv, activate, apply_network, prepare_weights
from srd.nn.conv import native, native_backend
from srd.nn.conv.bfloat16 import to_bfloat16_bits
from srd.nn.conv.patch import (
    bf16_fits,
    pack_down,
    pack_down_bf16,
    pack_up,
    pack_up_bf16,
    patch_matmul,
    patch_mode,
)
from srd.nn.conv.subpixel import subpixel_kernel

pytestmark = pytest.mark.skipif(not native.available(), reason="srd's native kernel is not built")
ISAS = [
    code
    for isa, code in native.ISA_CODES.items()
    if isa in ("generic", "avx2", "avx512") and native.isa_supported(isa)
]
BF16_ISAS = [native.ISA_CODES[isa] for isa in native.BF16_ISAS if native.isa_supported(isa)]
_DIMS = ("NHWC", "HWIO", "NHWC")


def _case(
    seed: int, shape: tuple[int, int, int, int], cout: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((2, 2, shape[3], cout)) / np.sqrt(4 * shape[3])).astype(np.float32)
    return x, w, rng.standard_normal(cout).astype(np.float32)


def _activate(y: jax.Array, act: Activation) -> np.ndarray:
    return np.asarray(activate(y, act, 0.1))


def _strided(x: np.ndarray, w: np.ndarray) -> jax.Array:
    """The valid stride-2 convolution the down op computes."""
    return lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(w), (2, 2), "VALID", dimension_numbers=_DIMS)


def _transposed(x: np.ndarray, w: np.ndarray) -> jax.Array:
    """The stride-2 transposed convolution with a 2x2 kernel the up op computes: lhs dilation 2, pad 1
    (srd keeps transposed kernels flipped already, as lhs-dilated lax.conv takes them:
    srd.nn.conv.subpixel)."""
    return lax.conv_general_dilated(
        jnp.asarray(x),
        jnp.asarray(w),
        (1, 1),
        ((1, 1), (1, 1)),
        lhs_dilation=(2, 2),
        dimension_numbers=_DIMS,
    )


def _packed_up(w: np.ndarray) -> np.ndarray:
    return pack_up(np.asarray(subpixel_kernel(jnp.asarray(w), (2, 2), (2, 2), (0, 0, 0, 0))))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    ("shape", "cout", "act", "bias"),
    [
        ((1, 20, 22, 64), 64, Activation.LEAKY_RELU, True),
        ((2, 17, 9, 16), 32, Activation.RELU, False),  # odd sizes: the last row and column are dropped
        ((1, 31, 30, 3), 96, Activation.NONE, True),  # 3 input channels; rows past a register block
        ((3, 2, 2, 128), 128, Activation.LEAKY_RELU, True),  # one output pixel per image
    ],
)
def test_down_equals_a_strided_convolution(
    isa: int, shape: tuple[int, int, int, int], cout: int, act: Activation, bias: bool
) -> None:
    x, w, b = _case(1, shape, cout)
    ref = _activate(_strided(x, w) + (b if bias else 0), act)
    out = patch_matmul(
        jnp.asarray(x),
        jnp.asarray(pack_down(w)),
        jnp.asarray(b) if bias else None,
        cout,
        "down",
        act,
        0.1,
        isa,
    )
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    ("shape", "cout", "act", "bias"),
    [
        ((1, 13, 21, 64), 64, Activation.LEAKY_RELU, True),
        ((2, 5, 3, 128), 128, Activation.RELU, False),
        ((1, 1, 27, 7), 16, Activation.NONE, True),  # 2 cout = 32 columns
    ],
)
def test_up_equals_a_transposed_convolution(
    isa: int, shape: tuple[int, int, int, int], cout: int, act: Activation, bias: bool
) -> None:
    x, w, b = _case(2, shape, cout)
    ref = _activate(_transposed(x, w) + (b if bias else 0), act)
    packed = _packed_up(w)
    bias2 = jnp.asarray(np.tile(b, 2)) if bias else None
    out = patch_matmul(jnp.asarray(x), jnp.asarray(packed), bias2, cout, "up", act, 0.1, isa)
    assert out.shape == ref.shape == (shape[0], 2 * shape[1], 2 * shape[2], cout)
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", ["down", "up"])
def test_every_row_count_up_to_two_register_blocks(isa: int, mode: str) -> None:
    """Rows of 1 .. 25 pixels (AVX-512's register block is 12 rows, AVX2's 3, generic's 2): every tail
    length after whole blocks, each with its own register block, and the prefetch of the next block."""
    down = mode == "down"
    for width in range(1, 26):
        x, w, b = _case(width, (1, 2, 2 * width, 16) if down else (1, 1, width, 16), 32)
        ref = _activate((_strided(x, w) if down else _transposed(x, w)) + b, Activation.LEAKY_RELU)
        packed = pack_down(w) if down else _packed_up(w)
        bias = jnp.asarray(b if down else np.tile(b, 2))
        out = patch_matmul(
            jnp.asarray(x), jnp.asarray(packed), bias, 32, mode, Activation.LEAKY_RELU, 0.1, isa
        )
        assert out.shape == ref.shape, width
        np.testing.assert_allclose(np.asarray(out), ref, atol=2e-5, rtol=1e-5, err_msg=f"width {width}")


def test_which_layers_take_it() -> None:
    """2x2 stride 2 without padding and with a 32-multiple matmul width; anything else keeps XLA."""
    down = Conv("d", "a", "b", (2, 2), (2, 2), activation=Activation.LEAKY_RELU)
    assert patch_mode(down, 64) == "down" and patch_mode(down, 48) is None
    up = Conv("u", "a", "b", (2, 2), (2, 2), transposed=True)
    assert patch_mode(up, 16) == "up" and patch_mode(up, 3) is None
    assert patch_mode(Conv("c", "a", "b", (3, 3)), 64) is None
    assert patch_mode(Conv("t", "a", "b", (4, 4), (2, 2), (1, 1, 1, 1), transposed=True), 64) is None
    assert patch_mode(Conv("s", "a", "b", (2, 2), (2, 2), activation=Activation.SIGMOID), 64) is None


def test_cunet_with_native_downs_and_ups_equals_lax() -> None:
    """cunet's network, whose three down- and three up-sampling layers take the native op, equals the
    lax.conv network to float32 rounding on a real-sized tile."""
    step = load_step("cunet", -1, 2)
    spec = step.spec
    x = jnp.asarray(
        np.random.default_rng(3).random((1, 36 + 2 * spec.context, 36 + 2 * spec.context, 3), np.float32)
    )
    nat = jax.tree.map(jnp.asarray, prepare_weights(spec, step.weights, native_backend.NATIVE))
    ref = jax.tree.map(jnp.asarray, prepare_weights(spec, step.weights, "direct"))  # type: ignore[arg-type]
    assert sum("native_patch" in layer for layer in nat.values()) == 6
    out = np.asarray(apply_network(spec, nat, x, native_backend.NATIVE))
    np.testing.assert_allclose(out, np.asarray(apply_network(spec, ref, x, "direct")), atol=5e-5)


def _down_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, act: Activation) -> np.ndarray:
    """A valid 2x2 stride-2 convolution in float64 of bfloat16-rounded x and w."""
    n, h, wd, cin = x.shape
    xr, wr = bfloat16_rounded(x), bfloat16_rounded(w)
    patches = xr[:, : h // 2 * 2, : wd // 2 * 2].reshape(n, h // 2, 2, wd // 2, 2, cin)
    y = np.einsum("nayb xc,yxco->nabo".replace(" ", ""), patches, wr)
    return _activate(jnp.asarray((y + (0 if b is None else b)).astype(np.float32)), act)


def _up_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, act: Activation) -> np.ndarray:
    """A 2x2 stride-2 transposed convolution in float64 of bfloat16-rounded x and w: each input pixel
    spreads over its 2x2 output patch (srd's transposed kernels are flipped: output (dy, dx) takes
    w[1 - dy, 1 - dx])."""
    n, h, wd, _ = x.shape
    y = np.einsum("nhwc,yxco->nhywxo", bfloat16_rounded(x), bfloat16_rounded(w)[::-1, ::-1])
    y = y.reshape(n, 2 * h, 2 * wd, w.shape[3])
    return _activate(jnp.asarray((y + (0 if b is None else b)).astype(np.float32)), act)


@pytest.mark.skipif(not BF16_ISAS, reason="no AMX-BF16 or AVX512-BF16 on this CPU")
@pytest.mark.parametrize("isa", [0, *BF16_ISAS])
@pytest.mark.parametrize(
    ("mode", "shape", "cout", "act", "bias"),
    [
        ("down", (1, 20, 74, 64), 64, Activation.LEAKY_RELU, True),  # 37 output columns: a row tail
        ("down", (2, 9, 7, 16), 32, Activation.RELU, False),  # odd sizes; the smallest K (64)
        ("down", (1, 6, 70, 128), 128, Activation.NONE, True),  # two input rows of 256 values each
        ("up", (1, 5, 33, 64), 64, Activation.LEAKY_RELU, True),
        ("up", (2, 3, 4, 32), 16, Activation.NONE, False),  # 2 cout = 32 columns
        ("up", (1, 4, 40, 128), 128, Activation.RELU, True),
    ],
)
def test_bf16_op_equals_a_rounded_reference(
    isa: int, mode: str, shape: tuple[int, int, int, int], cout: int, act: Activation, bias: bool
) -> None:
    x, w, b = _case(4, shape, cout)
    if mode == "down":
        packed = pack_down_bf16(w)
        ref = _down_reference(x, w, b if bias else None, act)
        bias_arg = jnp.asarray(b) if bias else None
    else:
        packed = pack_up_bf16(np.asarray(subpixel_kernel(jnp.asarray(w), (2, 2), (2, 2), (0, 0, 0, 0))))
        ref = _up_reference(x, w, b if bias else None, act)
        bias_arg = jnp.asarray(np.tile(b, 2)) if bias else None
    assert packed.dtype == np.uint16
    out = patch_matmul(jnp.asarray(x), jnp.asarray(packed), bias_arg, cout, mode, act, 0.1, isa)
    assert out.shape == ref.shape
    # float32 sums of exact bfloat16 products against float64 ones
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-4, rtol=1e-4)
    # and bfloat16 did round: the float32 op differs by more than that
    f32 = pack_down(w) if mode == "down" else _packed_up(w)
    exact = patch_matmul(jnp.asarray(x), jnp.asarray(f32), bias_arg, cout, mode, act, 0.1)
    assert np.abs(np.asarray(exact) - np.asarray(out)).max() > 1e-3


def test_bf16_packing_and_its_limits() -> None:
    """pack_down_bf16 is pack_down's matrix in (k, k + 1) pairs per 16 columns; the op takes 16-multiple
    inputs down and 32-multiple ones up, and refuses float32-only ISAs."""
    w = np.random.default_rng(5).standard_normal((2, 2, 16, 32)).astype(np.float32)
    packed = pack_down_bf16(w)
    matrix = w.reshape(64, 32)
    assert packed.shape == (1, 2, 32, 32)
    for j, p, c, e in [(0, 0, 0, 0), (1, 5, 3, 1), (1, 31, 15, 1), (0, 17, 9, 0)]:
        assert packed[0, j, p, 2 * c + e] == to_bfloat16_bits(matrix[2 * p + e, 16 * j + c])
    assert bf16_fits("down", 16) and not bf16_fits("down", 24)
    assert bf16_fits("up", 32) and not bf16_fits("up", 16)
    if not BF16_ISAS:
        return
    x = jnp.zeros((1, 4, 4, 16), jnp.float32)
    with pytest.raises(jax.errors.JaxRuntimeError, match="srd_patch_matmul_bf16"):
        patch_matmul(
            x, jnp.asarray(packed), None, 32, "down", isa=native.ISA_CODES["avx512"]
        ).block_until_ready()
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"or of 32 \(up\)"):
        up = pack_up_bf16(np.zeros((1, 1, 16, 128), np.float32))
        patch_matmul(x, jnp.asarray(up), None, 32, "up").block_until_ready()


@pytest.mark.skipif(not BF16_ISAS, reason="no AMX-BF16 or AVX512-BF16 on this CPU")
def test_cunet_bf16_takes_the_bf16_patch_op_and_stays_close() -> None:
    """native-bf16 packs cunet's six 2x2 layers for the bfloat16 op; on an image-like input (gradients,
    an edge) its network stays within 2/255 of the float32 one, and the bfloat16 2x2 layers add no more
    than a quarter to the error the bfloat16 3x3 layers make alone."""
    step = load_step("cunet", -1, 2)
    spec = step.spec
    size = 36 + 2 * spec.context
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = [0.5 + 0.4 * np.sin(7 * xx + 3 * yy), 0.5 + 0.4 * np.cos(20 * xx * yy), 0.2 + 0.6 * (xx > 0.5)]
    x = jnp.asarray(np.stack(image, -1)[None].astype(np.float32))
    bf = jax.tree.map(jnp.asarray, prepare_weights(spec, step.weights, native_backend.NATIVE_BF16))
    f32 = jax.tree.map(jnp.asarray, prepare_weights(spec, step.weights, native_backend.NATIVE))
    assert (
        sum("native_patch" in layer and layer["native_patch"].dtype == jnp.uint16 for layer in bf.values())
        == 6
    )
    f32_patches = {
        name: {**layer, "native_patch": f32[name]["native_patch"]} if "native_patch" in layer else layer
        for name, layer in bf.items()
    }
    ref = np.asarray(apply_network(spec, f32, x, native_backend.NATIVE))
    out = np.asarray(apply_network(spec, bf, x, native_backend.NATIVE_BF16))
    alone = np.asarray(apply_network(spec, f32_patches, x, native_backend.NATIVE_BF16))
    assert np.abs(out - ref).max() < 2 / 255
    assert np.abs(out - ref).mean() <= 1.25 * np.abs(alone - ref).mean()
