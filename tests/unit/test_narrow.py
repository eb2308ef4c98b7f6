"""srd's native direct 3x3 kernel for layers with at most 4 outputs (srd.nn.conv.narrow) against lax.conv:
every float32 ISA, 1 to 4 outputs, paddings, valid extents, PReLU slopes, row tails and image edges; and
which layers "native" gives it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from srd.nn import Activation, Conv, activate
from srd.nn.conv import native, native_backend
from srd.nn.conv.narrow import conv3x3_direct, narrow_fits, pack_narrow

pytestmark = pytest.mark.skipif(not native.available(), reason="srd's native kernel is not built")
ISAS = [
    code
    for isa, code in native.ISA_CODES.items()
    if isa in ("generic", "avx2", "avx512") and native.isa_supported(isa)
]
_DIMS = ("NHWC", "HWIO", "NHWC")


def _reference(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    pads: tuple[int, int, int, int],
    valid: np.ndarray | None,
) -> jax.Array:
    if valid is not None:  # zero past each image's valid rows and columns, as the kernel reads them
        rows = np.arange(x.shape[1])[None, :, None, None] < valid[:, 0, None, None, None]
        cols = np.arange(x.shape[2])[None, None, :, None] < valid[:, 1, None, None, None]
        x = np.where(rows & cols, x, 0)
    top, bottom, left, right = pads
    y = lax.conv_general_dilated(
        jnp.asarray(x), jnp.asarray(w), (1, 1), ((top, bottom), (left, right)), dimension_numbers=_DIMS
    )
    return y if b is None else y + b


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    ("shape", "cout", "pads", "act", "bias", "valid"),
    [
        ((1, 21, 37, 64), 3, (0, 0, 0, 0), Activation.NONE, True, None),  # 35 columns: 8-pixel blocks + tail
        ((2, 12, 19, 32), 1, (1, 1, 1, 1), Activation.RELU, False, None),  # zero padding at every edge
        ((1, 9, 40, 16), 4, (2, 0, 1, 3), Activation.LEAKY_RELU, True, None),  # uneven padding
        ((2, 17, 26, 48), 2, (1, 1, 1, 1), Activation.NONE, True, [[11, 26], [17, 9]]),  # valid extents
        ((1, 3, 3, 64), 3, (0, 0, 0, 0), Activation.NONE, False, None),  # one output pixel
    ],
)
def test_equals_lax_conv(
    isa: int,
    shape: tuple[int, int, int, int],
    cout: int,
    pads: tuple[int, int, int, int],
    act: Activation,
    bias: bool,
    valid: list[list[int]] | None,
) -> None:
    rng = np.random.default_rng(sum(shape) + cout)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((3, 3, shape[3], cout)) / np.sqrt(9 * shape[3])).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    extent = None if valid is None else np.asarray(valid, np.int32)
    ref = np.asarray(activate(_reference(x, w, b if bias else None, pads, extent), act, 0.2))
    out = conv3x3_direct(
        jnp.asarray(x),
        jnp.asarray(pack_narrow(w)),
        jnp.asarray(b) if bias else None,
        pads,
        act,
        0.2,
        isa,
        None if extent is None else jnp.asarray(extent),
    )
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-5, rtol=1e-5)


def test_prelu_slopes() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 10, 13, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, 3)) / 17).astype(np.float32)
    slopes = np.asarray([0.1, 0.5, -0.3], np.float32)
    y = np.asarray(_reference(x, w, None, (1, 1, 1, 1), None))
    ref = np.where(y > 0, y, y * slopes)
    out = conv3x3_direct(
        jnp.asarray(x), jnp.asarray(pack_narrow(w)), None, (1, 1, 1, 1), slopes=jnp.asarray(slopes)
    )
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-5, rtol=1e-5)


def test_which_layers_take_it() -> None:
    """3x3 stride-1 layers with at most 4 outputs and 16-multiple inputs; the others keep Winograd."""
    last = Conv("c", "a", "b", (3, 3), activation=Activation.NONE)
    assert narrow_fits(last, 64, 3) and narrow_fits(last, 16, 4)
    assert not narrow_fits(last, 64, 5) and not narrow_fits(last, 3, 3)
    assert not narrow_fits(Conv("t", "a", "b", (3, 3), transposed=True), 64, 3)
    assert not narrow_fits(Conv("s", "a", "b", (3, 3), activation=Activation.SIGMOID), 64, 3)
    w = np.zeros((3, 3, 64, 3), np.float32)
    assert set(native_backend.NATIVE.prepare(last, {"w": w})) == {"native_direct"}
    assert set(native_backend.NATIVE.prepare(last, {"w": np.zeros((3, 3, 64, 8), np.float32)})) == {"native"}


def test_refuses_what_it_cannot_run() -> None:
    x = jnp.zeros((1, 8, 8, 24), jnp.float32)
    with pytest.raises(jax.errors.JaxRuntimeError, match="srd_conv3x3_direct: one input part"):
        conv3x3_direct(x, jnp.zeros((3, 3, 3, 24), jnp.float32), None).block_until_ready()
