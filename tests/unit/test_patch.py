"""srd's native 2x2 stride-2 layers (srd.nn.conv.patch) against lax.conv: down (a valid stride-2
convolution) and up (a stride-2 transposed convolution, lax's lhs-dilated form), any size, batch,
channel count and activation, bias or none."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from srd.models import load_step
from srd.nn import Activation, Conv, activate, apply_network, prepare_weights
from srd.nn.conv import native
from srd.nn.conv.patch import pack_down, pack_up, patch_matmul, patch_mode
from srd.nn.conv.subpixel import subpixel_kernel

pytestmark = pytest.mark.skipif(not native.available(), reason="srd's native kernel is not built")
ISAS = [
    code
    for isa, code in native.ISA_CODES.items()
    if isa in ("generic", "avx2", "avx512") and native.isa_supported(isa)
]
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
    ref = lax.conv_general_dilated(jnp.asarray(x), jnp.asarray(w), (2, 2), "VALID", dimension_numbers=_DIMS)
    ref = _activate(ref + (b if bias else 0), act)
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
    # a stride-2 transposed convolution with a 2x2 kernel: lhs dilation 2, pad 1 (srd keeps transposed
    # kernels flipped already, as lhs-dilated lax.conv takes them: srd.nn.conv.subpixel)
    ref = lax.conv_general_dilated(
        jnp.asarray(x),
        jnp.asarray(w),
        (1, 1),
        ((1, 1), (1, 1)),
        lhs_dilation=(2, 2),
        dimension_numbers=_DIMS,
    )
    ref = _activate(ref + (b if bias else 0), act)
    packed = pack_up(np.asarray(subpixel_kernel(jnp.asarray(w), (2, 2), (2, 2), (0, 0, 0, 0))))
    bias2 = jnp.asarray(np.tile(b, 2)) if bias else None
    out = patch_matmul(jnp.asarray(x), jnp.asarray(packed), bias2, cout, "up", act, 0.1, isa)
    assert out.shape == ref.shape == (shape[0], 2 * shape[1], 2 * shape[2], cout)
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-5, rtol=1e-5)


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
    nat = jax.tree.map(jnp.asarray, prepare_weights(spec, step.weights, native.NATIVE))
    ref = jax.tree.map(jnp.asarray, prepare_weights(spec, step.weights, "direct"))  # type: ignore[arg-type]
    assert sum("native_patch" in layer for layer in nat.values()) == 6
    out = np.asarray(apply_network(spec, nat, x, native.NATIVE))
    np.testing.assert_allclose(out, np.asarray(apply_network(spec, ref, x, "direct")), atol=5e-5)
