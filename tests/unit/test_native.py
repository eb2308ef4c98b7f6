"""srd's native Winograd F(6x6, 3x3) kernel (srd/_native) against lax.conv, for every ISA it was built for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from srd.engine import Engine
from srd.errors import UsageError
from srd.models import load_step
from srd.nn import Activation, Conv, NetworkSpec, activate, apply_network, conv2d, prepare_weights, resolve
from srd.nn.conv import native
from srd.nn.conv.native_backend import native_subpixel_kernel, uses_native
from srd.nn.fusion import skip_sums
from srd.settings import EngineSettings, ModelSettings

ISAS = [isa for isa in ("generic", "avx2", "avx512") if native.isa_supported(isa)]


def _reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Direct convolution in float64 numpy, written out: the sum over the 3x3 window and input channels."""
    top, bottom, left, right = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh, ow = xp.shape[1] - 2, xp.shape[2] - 2
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("nhwc,co->nhwo", xp[:, dy : dy + oh, dx : dx + ow], w[dy, dx].astype(np.float64))
    return out + b


def _case(seed: int, n: int, h: int, w: int, cin: int, cout: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, k, b


def test_the_extension_is_built() -> None:
    """The kernel was compiled and registered with XLA, and its best ISA runs on this CPU."""
    assert native.available(), "srd/_winograd was not built: install with a C++17 compiler"
    assert native.isa_supported(native.best_isa())
    assert "generic" in ISAS


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    ("n", "h", "w", "cin", "cout", "pads", "block"),
    [
        (1, 20, 23, 16, 32, (0, 0, 0, 0), 0),  # ragged last tiles in both directions
        (2, 17, 9, 32, 48, (1, 1, 1, 1), 0),  # batch, same padding, cout not a multiple of 32
        (1, 30, 31, 64, 16, (1, 0, 0, 1), 1),  # asymmetric padding, one tile per block
        (1, 3, 3, 16, 16, (0, 0, 0, 0), 0),  # a single output pixel
        (3, 40, 26, 16, 64, (0, 0, 0, 0), 5),  # blocks that straddle images and end mid register block
    ],
)
def test_conv_matches_float64_reference(
    isa: str, n: int, h: int, w: int, cin: int, cout: int, pads: tuple[int, int, int, int], block: int
) -> None:
    """act(conv3x3 + bias) equals a float64 direct convolution to float32 Winograd accuracy."""
    x, k, b = _case(0, n, h, w, cin, cout)
    ref = _reference(x, k, b, pads)
    ref = np.maximum(ref, 0.1 * ref)
    out = native.conv3x3(
        jnp.asarray(x),
        jnp.asarray(native.pack_kernel(k)),
        jnp.asarray(b),
        cout,
        pads,
        "leaky_relu",
        0.1,
        isa=isa,
        block=block,
    )
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-4, rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(3, 29),
    w=st.integers(3, 29),
    cin=st.sampled_from([16, 32]),
    cout=st.sampled_from([16, 32, 48]),
    activation=st.sampled_from(["none", "relu", "leaky_relu"]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_any_shape_and_activation(
    h: int, w: int, cin: int, cout: int, activation: str, bias: bool, seed: int
) -> None:
    """Any spatial size, channel counts, activation and bias/no bias: the same as lax.conv."""
    x, k, b = _case(seed, 1, h, w, cin, cout)
    op = Conv("c", "x", "y", (3, 3), activation=Activation(activation), slope=0.2)
    y = lax.conv_general_dilated(
        jnp.asarray(x),
        jnp.asarray(k),
        (1, 1),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=lax.Precision.HIGHEST,
    )
    expected = np.asarray(activate(y + b if bias else y, op.activation, op.slope))
    out = native.conv3x3(
        jnp.asarray(x),
        jnp.asarray(native.pack_kernel(k)),
        jnp.asarray(b) if bias else None,
        cout,
        activation=activation,
        slope=0.2,
    )
    np.testing.assert_allclose(np.asarray(out), expected, atol=2e-4, rtol=1e-4)


def test_packed_weights_layout() -> None:
    """pack_kernel pads output channels to whole 32-wide panels with zeros and keeps G g G^T's values."""
    _, k, _ = _case(1, 1, 3, 3, 16, 40)
    packed = native.pack_kernel(k)
    assert packed.shape == (64, 2, 16, 32)
    assert packed.dtype == np.float32 and packed.flags.c_contiguous
    assert not packed[:, 1, :, 8:].any()
    # position 0 of F(6,3) is g[0, 0] (G's first row picks tap 0, negated twice)
    np.testing.assert_allclose(packed[0, 0, :, :32], k[0, 0, :, :32], rtol=1e-6)


def test_bad_shapes_are_errors() -> None:
    """The kernel refuses weights that do not match the input rather than reading past them."""
    x, k, b = _case(2, 1, 10, 10, 32, 32)
    wrong = jnp.asarray(native.pack_kernel(k[:, :, :16]))  # packed for 16 input channels, given 32
    with pytest.raises(jax.errors.JaxRuntimeError, match="srd_winograd_f63"):
        native.conv3x3(jnp.asarray(x), wrong, jnp.asarray(b), 32).block_until_ready()


def test_which_layers_run_natively() -> None:
    """3x3 stride-1 layers with a fused activation, whatever their channel counts, and transposed layers
    whose sub-pixel form is a 3x3 convolution; nothing else."""
    conv = Conv("c", "x", "y", (3, 3), activation=Activation.LEAKY_RELU, slope=0.1)
    assert uses_native(conv)
    assert not uses_native(Conv("c", "x", "y", (3, 3), activation=Activation.SIGMOID))
    assert not uses_native(Conv("c", "x", "y", (2, 2), (2, 2)))
    w4 = np.zeros((4, 4, 8, 3), np.float32)
    upconv7_last = Conv("c", "x", "y", (4, 4), (2, 2), (3, 3, 3, 3), transposed=True)
    sub = native_subpixel_kernel(upconv7_last, w4)
    assert not uses_native(upconv7_last) and sub is not None and sub.shape == (3, 3, 8, 12)
    w2 = np.zeros((2, 2, 8, 3), np.float32)
    assert native_subpixel_kernel(Conv("c", "x", "y", (2, 2), (2, 2), transposed=True), w2) is None
    uncropped = Conv("c", "x", "y", (4, 4), (2, 2), transposed=True)  # needs padding: lax.conv
    assert native_subpixel_kernel(uncropped, w4) is None


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("channels", [(16,), (32, 16, 5), (16, 16, 16, 16, 16, 16, 16, 3)])
def test_parts_are_read_as_their_concatenation_zeroed_past_the_extent(
    isa: str, channels: tuple[int, ...]
) -> None:
    """Several inputs equal one call on their channel concatenation, and `valid` equals zeroing each
    image's input past its valid rows and columns first (what srd.nn.extents asks of an edge tile)."""
    rng = np.random.default_rng(7)
    n, h, w, cout = 2, 23, 19, 24
    parts = [rng.standard_normal((n, h, w, c)).astype(np.float32) for c in channels]
    _, k, b = _case(8, 1, 3, 3, sum(channels), cout)
    valid = np.array([[17, 19], [23, 11]], np.int32)
    joined = np.concatenate(parts, axis=-1)
    rows = np.arange(h)[None, :, None, None] < valid[:, 0, None, None, None]
    cols = np.arange(w)[None, None, :, None] < valid[:, 1, None, None, None]
    ref = _reference(np.where(rows & cols, joined, 0), k, b, (1, 1, 1, 1))
    packed = jnp.asarray(native.pack_kernel(k))
    out = native.conv3x3(
        [jnp.asarray(p) for p in parts],
        packed,
        jnp.asarray(b),
        cout,
        (1, 1, 1, 1),
        isa=isa,
        valid=jnp.asarray(valid),
    )
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-4, rtol=1e-4)


def test_parts_that_would_split_a_vector_are_refused() -> None:
    """Only the last part may have a channel count that is not a multiple of 16."""
    assert native.can_take_parts([16, 32, 3]) and not native.can_take_parts([3, 16])
    with pytest.raises(ValueError, match="cannot read parts"):
        native.conv3x3(
            [jnp.zeros((1, 5, 5, 3)), jnp.zeros((1, 5, 5, 16))], jnp.zeros((64, 1, 32, 32)), None, 8
        )


def test_outputs_past_the_caches_are_streamed_exactly() -> None:
    """An output over the kernel's streaming threshold (16 MB: 2 x 190 x 187 x 64 floats here, written with
    non-temporal stores, the ragged last tiles with plain ones) equals the float64 reference as a small
    one does, batch and padding included."""
    x, k, b = _case(5, 2, 188, 185, 16, 64)
    assert 2 * 190 * 187 * 64 * 4 > 16 << 20
    ref = _reference(x, k, b, (2, 2, 2, 2))
    ref = np.maximum(ref, 0.0)
    out = native.conv3x3(
        jnp.asarray(x), jnp.asarray(native.pack_kernel(k)), jnp.asarray(b), 64, (2, 2, 2, 2), "relu"
    )
    assert out.shape == ref.shape
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-4, rtol=1e-4)


_BUDGET = "from srd.nn.conv import native; print(native.block_budget())"


@pytest.mark.parametrize("setting", [None, "300000"])
def test_block_budget_is_half_the_l2_cache_or_the_setting(setting: str | None, tmp_path: Path) -> None:
    """Blocks of tiles are sized to half this CPU's L2 (256 KiB to 1 MiB: 512 KiB on Zen 5's 1 MiB, 1 MiB
    on a 2 MiB Xeon), read in a fresh process, or to SRD_WINOGRAD_BLOCK_BYTES; the result is unchanged."""
    env = {k: v for k, v in os.environ.items() if k != "SRD_WINOGRAD_BLOCK_BYTES"}
    if setting is not None:
        env["SRD_WINOGRAD_BLOCK_BYTES"] = setting
    # From another folder, so the installed srd is imported rather than the checkout's unbuilt sources.
    run = subprocess.run(
        [sys.executable, "-c", _BUDGET], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    l2 = int(
        subprocess.run(["getconf", "LEVEL2_CACHE_SIZE"], capture_output=True, text=True, check=False).stdout
        or 0
    )
    expected = int(setting) if setting else (min(max(l2 // 2, 256 << 10), 1 << 20) if l2 > 0 else 1 << 20)
    assert int(run.stdout) == expected


def test_every_block_size_gives_the_same_result() -> None:
    """Block size only moves work between cache-sized pieces: 1, 7, 12 and 100 tiles per block (one
    straddling images) all equal the float64 reference."""
    x, k, b = _case(6, 2, 50, 44, 32, 48)
    ref = _reference(x, k, b, (1, 1, 1, 1))
    packed = jnp.asarray(native.pack_kernel(k))
    for block in (1, 7, 12, 100):
        out = native.conv3x3(jnp.asarray(x), packed, jnp.asarray(b), 48, (1, 1, 1, 1), block=block)
        np.testing.assert_allclose(np.asarray(out), ref, atol=2e-4, rtol=1e-4)


def test_blocks_grow_where_the_weights_outweigh_a_block() -> None:
    """Float32 layers whose U (64 x cin x cout floats) outgrows L2 beside a block read it from L3 once per
    block, so their blocks hold more tiles: wide blocks where U dwarfs them (128 -> 256: 8 MB), 32 output
    channels per pass where it is a few times their size (64 -> 128, 128 -> 128); layers whose U stays in
    L2 keep the L2-sized blocks; a small layer is spread over four blocks per thread."""
    if not native.isa_supported("avx512"):
        pytest.skip("no AVX-512 here: the expected plans are in that build's 12-tile register blocks")
    budget, mr, many = native.block_budget(), 12, 100_000

    def l2_fit(cin: int, group: int) -> int:
        return min(max(mr, budget // (64 * (cin + group) * 4) // mr * mr), 16 * mr)

    assert native.plan_blocks(16, 32, many, 2, "avx512") == (l2_fit(16, 32), 32)
    assert native.plan_blocks(128, 256, many, 2, "avx512") == (96, 256)
    assert native.plan_blocks(256, 256, many, 2, "avx512") == (96, 256)
    assert native.plan_blocks(128, 128, many, 2, "avx512") == (l2_fit(128, 32), 32)
    assert native.plan_blocks(64, 128, many, 2, "avx512") == (l2_fit(64, 32), 32)
    assert l2_fit(64, 32) > l2_fit(64, 128)
    # 121 tiles (a 66 px layer) on 2 threads: blocks of 12, not one block of ~100 for a single core.
    assert native.plan_blocks(16, 32, 121, 2, "avx512") == (12, 32)
    assert native.plan_blocks(128, 256, 400, 2, "avx512") == (48, 256)
    assert native.plan_blocks(128, 256, 400, 16, "avx512") == (mr, 256)
    with pytest.raises(ValueError):
        native.plan_blocks(64, 64, 0, 2, "avx512")


def test_the_l2_plan_setting_keeps_blocks_whole_and_l2_sized(tmp_path: Path) -> None:
    """SRD_WINOGRAD_PLAN=l2 (read once per process) plans every layer with L2-sized blocks of all its
    outputs, the rule before wide and grouped blocks, so a machine can measure what they gain."""
    if not native.isa_supported("avx512"):
        pytest.skip("no AVX-512 here: the expected plans are in that build's 12-tile register blocks")
    code = "from srd.nn.conv import native; print(*native.plan_blocks(128, 256, 100000, 2, 'avx512'))"
    env = {**os.environ, "SRD_WINOGRAD_PLAN": "l2"}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    budget = native.block_budget()
    assert run.stdout.split() == [str(max(12, budget // (64 * 384 * 4) // 12 * 12)), "256"], run.stderr


def test_grouped_and_wide_blocks_give_the_same_result() -> None:
    """Layers planned with 32 output channels per pass (64 -> 128) and wide blocks (128 -> 256, 96 tiles:
    more than the image has) equal the float64 reference, as blocks of 12 do; the bias and leaky ReLU
    reach every group. 137 outputs: a last group of 9 real channels and padding."""
    for cin, cout in ((64, 128), (128, 256), (64, 137)):
        x, k, b = _case(7, 2, 80, 86, cin, cout)
        ref = _reference(x, k, b, (1, 1, 1, 1))
        ref = np.where(ref > 0, ref, 0.1 * ref)
        packed = jnp.asarray(native.pack_kernel(k))
        for block in (0, 12, 96):
            out = native.conv3x3(
                jnp.asarray(x), packed, jnp.asarray(b), cout, (1, 1, 1, 1), "leaky_relu", 0.1, block=block
            )
            np.testing.assert_allclose(np.asarray(out), ref, atol=3e-4, rtol=1e-4)


def test_grouped_outputs_are_streamed_and_rounded_exactly() -> None:
    """A grouped layer (64 -> 128, 32 outputs per pass) with an output past the streaming threshold
    (1 x 200 x 170 x 128 floats, 17 MB) equals the float64 reference; its bfloat16 output (whole 64-byte
    lines streamed, one group at a time) is the float32 output rounded to nearest even, bit for bit."""
    # (The AVX-512 plan, asked only where this CPU runs AVX-512: an AVX2-only CPU, Zen 3, has no such plan.)
    assert not native.isa_supported("avx512") or native.plan_blocks(64, 128, 34 * 29, 2, "avx512")[1] == 32
    x, k, b = _case(8, 1, 200, 170, 64, 128)
    assert 200 * 170 * 128 * 4 > 16 << 20
    packed = jnp.asarray(native.pack_kernel(k))
    out = native.conv3x3(jnp.asarray(x), packed, jnp.asarray(b), 128, (1, 1, 1, 1), "relu")
    ref = np.maximum(_reference(x, k, b, (1, 1, 1, 1)), 0.0)
    np.testing.assert_allclose(np.asarray(out), ref, atol=3e-4, rtol=1e-4)
    b16 = native.conv3x3(
        jnp.asarray(x), packed, jnp.asarray(b), 128, (1, 1, 1, 1), "relu", out_dtype=jnp.bfloat16
    )
    np.testing.assert_array_equal(
        np.asarray(b16).view(np.uint16), np.asarray(out.astype(jnp.bfloat16)).view(np.uint16)
    )


@pytest.mark.parametrize(("cin", "cout"), [(1, 32), (3, 16), (64, 3), (5, 12), (17, 33)])
def test_channel_counts_that_are_not_multiples_of_16(cin: int, cout: int) -> None:
    """The kernel pads input channels to 16 and output channels to 32 inside: first and last layers
    (1 or 3 channels) and odd counts give the reference result."""
    x, k, b = _case(3, 2, 19, 14, cin, cout)
    ref = _reference(x, k, b, (1, 1, 1, 1))
    for isa in ISAS:
        out = native.conv3x3(
            jnp.asarray(x), jnp.asarray(native.pack_kernel(k)), jnp.asarray(b), cout, (1, 1, 1, 1), isa=isa
        )
        np.testing.assert_allclose(np.asarray(out), ref, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("pads", [(3, 3, 3, 3), (1, 1, 1, 1)])
def test_transposed_conv_as_native_subpixel_conv(pads: tuple[int, int, int, int]) -> None:
    """A 4x4 stride-2 transposed convolution (upconv_7's last layer, cropped by 3; cunet's by 1) run as
    a native 3x3 convolution over all four phases plus depth-to-space equals lax.conv's."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.random((1, 13, 10, 32), dtype=np.float32))
    w = (rng.standard_normal((4, 4, 32, 3)) / 20).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    op = Conv("c", "x", "y", (4, 4), (2, 2), pads, transposed=True)
    spec = NetworkSpec("t", (op,), "x", "y", 32, 3, 2, 0)
    layer = {
        k: jnp.asarray(v) for k, v in prepare_weights(spec, {"c": {"w": w, "b": b}}, "native")["c"].items()
    }
    direct = np.asarray(conv2d(x, jnp.asarray(w), jnp.asarray(b), op, "direct"))
    if native_subpixel_kernel(op, w) is None:
        assert "native" not in layer
        return
    fast = np.asarray(conv2d(x, layer["w"], layer["b"], op, "native", layer))
    assert fast.shape == direct.shape
    np.testing.assert_allclose(fast, direct, atol=2e-5)


def test_auto_means_native_on_cpu_only() -> None:
    """ "auto" is native on the CPU and lax.conv elsewhere; asking for native off the CPU is an error."""
    assert resolve("auto", "cpu").name == "native"
    assert resolve("auto", "gpu").name == "direct"
    assert resolve("direct", "cpu").name == "direct"
    with pytest.raises(ValueError, match="CPU only"):
        resolve("native", "gpu")


@pytest.mark.parametrize(
    ("model", "noise", "size"), [("upconv7-art", -1, 40), ("cunet", -1, 60), ("cunet", 1, 60)]
)
def test_networks_native_within_a_tenth_of_a_level(model: str, noise: int, size: int) -> None:
    """Whole packaged networks on real weights: "native" and "direct" differ by far less than 1/255."""
    loaded = load_step(model, noise, 2 if noise < 0 else 1)
    spec: NetworkSpec = loaded.spec
    weights = jax.tree.map(jnp.asarray, loaded.weights)
    prepared = jax.tree.map(jnp.asarray, prepare_weights(spec, loaded.weights, "native"))
    assert any("native" in layer for layer in prepared.values())
    x = jnp.asarray(np.random.default_rng(1).random((1, size, size, 3), dtype=np.float32))
    direct = np.asarray(apply_network(spec, weights, x, "direct"))
    fast = np.asarray(apply_network(spec, prepared, x, "native"))
    assert fast.shape == direct.shape
    assert np.abs(fast - direct).max() < 0.1 / 255


def test_native_bf16_is_refused_without_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the CPU has no AMX-BF16 (or Linux does not grant it), native-bf16 is an error, not a
    silent float32 run."""
    monkeypatch.setattr(native, "bf16_supported", lambda: False)
    with pytest.raises(ValueError, match="AMX"):
        resolve("native-bf16", "cpu")
    assert resolve("native", "cpu").name == "native"
    # The engine reports it as a usage error: `srd upscale` exits 64, the daemon 78 (a config problem).
    with pytest.raises(UsageError, match="AMX"):
        Engine(ModelSettings(name="upconv7-art"), EngineSettings(conv="native-bf16"))


@pytest.mark.parametrize(("cin", "cout", "bias"), [(16, 64, True), (3, 12, False), (64, 3, True)])
def test_prelu_slopes_are_applied_per_channel(cin: int, cout: int, bias: bool) -> None:
    """`slopes` fuses a PReLU: each output channel's negative values scaled by its own slope."""
    x, k, b = _case(7, 2, 21, 17, cin, cout)
    slopes = np.random.default_rng(8).uniform(-0.5, 0.5, cout).astype(np.float32)
    ref = _reference(x, k, b if bias else np.zeros(cout, np.float32), (1, 1, 1, 1))
    ref = np.where(ref > 0, ref, ref * slopes)
    out = native.conv3x3(
        jnp.asarray(x),
        jnp.asarray(native.pack_kernel(k)),
        jnp.asarray(b) if bias else None,
        cout,
        (1, 1, 1, 1),
        slopes=jnp.asarray(slopes),
    )
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="slopes"):
        native.conv3x3(
            jnp.asarray(x), jnp.asarray(native.pack_kernel(k)), None, cout, slopes=jnp.ones(cout + 1)
        )


@pytest.mark.parametrize(
    ("top", "left", "pads"), [(4, 4, (0, 0, 0, 0)), (0, 3, (1, 1, 1, 1)), (0, 0, (0, 0, 0, 0))]
)
def test_addend_is_summed_with_the_input_in_place(
    top: int, left: int, pads: tuple[int, int, int, int]
) -> None:
    """`addend` (blob, top, left): the layer sees x + blob[:, top:top+h, left:left+w] (a cropped skip
    connection), zero padding applied to the sum."""
    x, k, b = _case(9, 2, 19, 23, 32, 48)
    skip = (
        np.random.default_rng(10).standard_normal((2, 19 + 2 * top + 1, 23 + 2 * left, 32)).astype(np.float32)
    )
    ref = _reference(x + skip[:, top : top + 19, left : left + 23], k, b, pads)
    packed = jnp.asarray(native.pack_kernel(k))
    out = native.conv3x3(
        jnp.asarray(x), packed, jnp.asarray(b), 48, pads, addend=(jnp.asarray(skip), top, left)
    )
    np.testing.assert_allclose(np.asarray(out), ref, atol=2e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="addend"):
        native.conv3x3(jnp.asarray(x), packed, None, 48, addend=(jnp.asarray(skip[:, :10]), top, left))


def test_unet_skip_sums_are_found() -> None:
    """cunet's and Real-CUGAN's three skip sums each (crop of a blob + a blob, read by a convolution)."""
    cunet = skip_sums(load_step("cunet", -1, 2).spec, set())
    assert cunet["Eltwise3"] == ("Deconvolution4_ReLU23", "Convolution10_ReLU10", 16, 16) and len(cunet) == 3
    assert len(skip_sums(load_step("realcugan-se", -1, 2).spec, set())) == 3
    assert skip_sums(load_step("cunet", -1, 2).spec, {"Eltwise3"}).keys() == {"Eltwise1", "Eltwise2"}
