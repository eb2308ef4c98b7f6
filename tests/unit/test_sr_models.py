"""The packaged Real-CUGAN, Real-ESRGAN and RealSR networks in srd's graph: geometry, ncnn's output on a
real image, valid extents of partial tiles, and the squeeze-excitation overrides (syncgap)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from support.realsr_peer import GAPS, PeerNet, load, model_files, to_mat

from srd.models import load_ncnn
from srd.nn import NetworkSpec, apply_network, infer_geometry, prepare_weights
from srd.nn.conv import BACKENDS
from srd.nn.extents import propagate_extents
from srd.nn.fusion import prelu_pairs
from srd.nn.graph import Weights
from srd.nn.ops.prelu import PReLU
from srd.nn.tile_plan import FEATURE_BATCH, FEATURE_PIXELS, TileGeometry, feature_batches
from srd.nn.tiling import TileRunner

SET5 = Path(__file__).resolve().parents[3] / "shared" / "data" / "set5"

# (package, stem, scale, context, align, input size)
MODELS = [
    ("realcugan", "REALCUGAN_SE_UP2X", 2, 18, 2, 64),
    ("realcugan", "REALCUGAN_SE_UP3X", 3, 14, 4, 64),
    ("realcugan", "REALCUGAN_SE_UP4X", 4, 19, 2, 64),
    ("realcugan", "REALCUGAN_PRO_UP2X", 2, 18, 2, 64),
    ("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP2X", 2, 0, 1, 37),
    ("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP3X", 3, 0, 1, 37),
    ("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP4X", 4, 0, 1, 37),
    ("realesrgan", "REALESRGAN_X4PLUSANIME_UP4X", 4, 0, 1, 40),
    ("realsr", "REALSR_DF2K_UP4X", 4, 0, 1, 40),
]


@cache
def _load(package: str, stem: str) -> tuple[NetworkSpec, Weights]:
    param, weights = model_files(package, stem)
    graph = load_ncnn(param.read_text(), weights.read_bytes())
    spec = infer_geometry(stem, graph.ops, graph.weights, graph.input, graph.output, graph.in_channels)
    return spec, graph.weights


def _image(height: int, width: int, top: int = 100, left: int = 120) -> np.ndarray:
    """A crop of Set5's baby as float32 HWC in 0..1 (the pro models misbehave on noise)."""
    if not (SET5 / "baby.png").is_file():
        pytest.skip("../shared/data/set5 is not present beside the repo")
    rgb = np.asarray(Image.open(SET5 / "baby.png").convert("RGB"))
    return rgb[top : top + height, left : left + width].astype(np.float32) / np.float32(255)


def _ncnn(peer: PeerNet, x: np.ndarray, feeds: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """ncnn's network output (HWC) for an HWC input, with optional blobs fed in."""
    ex = peer.net.create_extractor()
    ex.input(peer.input, to_mat(x.transpose(2, 0, 1)))
    for name, value in (feeds or {}).items():
        ex.input(name, to_mat(value))
    ret, mat = ex.extract(peer.output)
    assert ret == 0
    return np.array(mat).transpose(1, 2, 0)


def _ours(package: str, stem: str, x: np.ndarray, conv: str = "direct") -> np.ndarray:
    spec, weights = _load(package, stem)
    prepared = jax.tree.map(jnp.asarray, prepare_weights(spec, weights, BACKENDS[conv]))
    return np.asarray(apply_network(spec, prepared, jnp.asarray(x[None]), BACKENDS[conv]))[0]


@pytest.mark.parametrize(("package", "stem", "scale", "context", "align", "size"), MODELS)
def test_packaged_model_matches_ncnn(
    package: str, stem: str, scale: int, context: int, align: int, size: int
) -> None:
    """Each graph kind loads, infers its geometry and gives ncnn's float32 output to 1e-3."""
    spec, _ = _load(package, stem)
    assert (spec.scale, spec.context, spec.align, spec.in_channels, spec.out_channels) == (
        scale,
        context,
        align,
        3,
        3,
    )
    x = _image(size, size)
    ours, ref = _ours(package, stem, x), _ncnn(load(package, stem), x)
    assert ours.shape == ref.shape == (scale * (size - 2 * context),) * 2 + (3,)
    assert np.abs(ours - ref).max() < 1e-3


@pytest.mark.parametrize(
    ("package", "stem"),
    [("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP2X"), ("realesrgan", "REALESRGAN_X4PLUSANIME_UP4X")],
)
def test_native_backend_runs_zero_padded_networks(package: str, stem: str) -> None:
    """srd's Winograd kernel runs the pad-1 convolutions (3->64, 64->32 growth, 64->48) as ncnn does."""
    if BACKENDS["native"].unavailable_reason("cpu") is not None:
        pytest.skip("srd's native kernel is not built")
    x = _image(36, 36)
    assert np.abs(_ours(package, stem, x, "native") - _ncnn(load(package, stem), x)).max() < 1e-3


def test_animevideov3_prelus_fuse_into_the_native_convolutions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compact SRVGG net's 17 PReLUs run inside the native 3x3 layers before them (no PReLU op is
    run on its own), with the result the unfused lax network gives, partial tiles included."""
    if BACKENDS["native"].unavailable_reason("cpu") is not None:
        pytest.skip("srd's native kernel is not built")
    spec, weights = _load("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP2X")
    assert len(prelu_pairs(spec, set())) == sum(isinstance(op, PReLU) for op in spec.ops) == 17
    x = jnp.asarray(_image(36, 40)[None])
    valid = jnp.asarray([[30, 33]], jnp.int32)
    native = jax.tree.map(jnp.asarray, prepare_weights(spec, weights, BACKENDS["native"]))
    direct = jax.tree.map(jnp.asarray, prepare_weights(spec, weights, BACKENDS["direct"]))
    runs: list[str] = []
    apply = PReLU.apply
    monkeypatch.setattr(PReLU, "apply", lambda self, *args: runs.append(self.name) or apply(self, *args))
    ours = np.asarray(apply_network(spec, native, x, BACKENDS["native"], valid))[0]
    assert runs == []
    ref = np.asarray(apply_network(spec, direct, x, BACKENDS["direct"], valid))[0]
    assert len(runs) == 17
    np.testing.assert_allclose(ours[: 30 * 2, : 33 * 2], ref[: 30 * 2, : 33 * 2], atol=1e-4)


def _partial_tile_check(package: str, stem: str, shape: tuple[int, int], real: tuple[int, int]) -> None:
    spec, weights = _load(package, stem)
    w = jax.tree.map(jnp.asarray, weights)
    big = np.zeros((*shape, 3), np.float32)
    small = _image(*real)
    big[: real[0], : real[1]] = small
    big[real[0] :, :] = 0.9  # garbage beyond the valid extent must not leak in
    big[:, real[1] :] = 0.1
    valid = jnp.asarray([real], jnp.int32)
    out_big = np.asarray(apply_network(spec, w, jnp.asarray(big[None]), "direct", valid))[0]
    out_small = np.asarray(apply_network(spec, w, jnp.asarray(small[None]), "direct"))[0]
    extent = propagate_extents(spec.ops, spec.input, valid)[spec.output]
    assert tuple(np.asarray(extent)[0]) == out_small.shape[:2]
    h, wd = out_small.shape[:2]
    assert np.abs(out_big[:h, :wd] - out_small).max() < 1e-5
    assert np.abs(out_small - _ncnn(load(package, stem), small)).max() < 1e-3


@pytest.mark.parametrize("stem", ["REALESRGAN_ANIMAVIDEOV3_UP2X", "REALESRGAN_ANIMAVIDEOV3_UP3X"])
def test_zero_padded_partial_tile_equals_the_smaller_tile(stem: str) -> None:
    """A fixed 40x40 tile holding a 29x35 valid area gives, over that area, the 29x35 tile's output: the
    zero-padded convolutions see zeros past the valid edge and the bicubic tail clamps there."""
    _partial_tile_check("realesrgan", stem, (40, 40), (29, 35))


@pytest.mark.parametrize("stem", ["REALCUGAN_SE_UP2X", "REALCUGAN_SE_UP4X"])
def test_realcugan_partial_tile_equals_the_smaller_tile(stem: str) -> None:
    """Real-CUGAN's pools average only a partial tile's valid area, through its crops, strides and (4x)
    pixel shuffle."""
    _partial_tile_check("realcugan", stem, (72, 72), (60, 64))


def test_masking_is_not_traced_without_extents() -> None:
    """Without `valid` a zero-padded network traces no masks (no iota), with it one per padded input."""
    spec, weights = _load("realesrgan", "REALESRGAN_ANIMAVIDEOV3_UP4X")
    assert spec.tracks_extents and not spec.tile_dependent
    x = jnp.zeros((1, 24, 24, 3), jnp.float32)
    plain = str(jax.make_jaxpr(lambda w, t: apply_network(spec, w, t))(weights, x))
    valid = jnp.asarray([[24, 24]], jnp.int32)
    masked = str(jax.make_jaxpr(lambda w, t, v: apply_network(spec, w, t, "direct", v))(weights, x, valid))
    assert "iota" not in plain and "iota" in masked


def test_own_gaps_fed_back_reproduce_the_output() -> None:
    """extra_outputs returns a tile's four pool vectors; overriding with them reproduces its output."""
    spec, weights = _load("realcugan", "REALCUGAN_SE_UP2X")
    w = jax.tree.map(jnp.asarray, weights)
    x = jnp.asarray(_image(64, 64)[None])
    out, gaps = apply_network(spec, w, x, "direct", extra_outputs=GAPS)
    assert set(gaps) == set(GAPS) and all(g.ndim == 2 and g.shape[0] == 1 for g in gaps.values())
    again = apply_network(spec, w, x, "direct", overrides=gaps)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(out))
    np.testing.assert_array_equal(np.asarray(apply_network(spec, w, x, "direct")), np.asarray(out))


def test_foreign_gaps_match_ncnn_fed_the_same() -> None:
    """One tile run with another tile's pool vectors gives what ncnn gives when fed those blobs."""
    spec, weights = _load("realcugan", "REALCUGAN_SE_UP2X")
    w = jax.tree.map(jnp.asarray, weights)
    a, b = _image(64, 64), _image(64, 64, top=20, left=30)
    _, gaps = apply_network(spec, w, jnp.asarray(b[None]), "direct", extra_outputs=GAPS)
    ours = np.asarray(apply_network(spec, w, jnp.asarray(a[None]), "direct", overrides=gaps))[0]
    ref = _ncnn(load("realcugan", "REALCUGAN_SE_UP2X"), a, {k: np.asarray(v)[0] for k, v in gaps.items()})
    assert np.abs(ours - ref).max() < 1e-3
    assert np.abs(ours - _ours("realcugan", "REALCUGAN_SE_UP2X", a)).max() > 1e-3  # the gaps matter


def test_unknown_override_is_refused() -> None:
    """Overriding a blob the network does not have is an error, not silently ignored."""
    spec, weights = _load("realcugan", "REALCUGAN_SE_UP2X")
    with pytest.raises(ValueError, match="no blobs named"):
        apply_network(spec, weights, jnp.zeros((1, 64, 64, 3)), overrides={"gap9": jnp.zeros((1, 64))})  # type: ignore[arg-type]


def test_every_packaged_layer_type_has_a_reader() -> None:
    """Every layer type in every packaged Real-CUGAN, Real-ESRGAN and RealSR .param has an srd reader."""
    from importlib import resources

    from srd.models import LAYER_READERS, parse_param

    types = set()
    for package in ("realcugan", "realesrgan", "realsr"):
        folder = resources.files(f"sr_vulkan_model_{package}") / "models"
        for entry in folder.iterdir():
            if entry.name.endswith(".param"):
                types |= {layer.type for layer in parse_param(entry.read_text())}
    assert types - {"Input", "Split"} <= set(LAYER_READERS)


@pytest.mark.parametrize(("count", "pixels"), [(25, 68 * 68), (1, 68 * 68), (7, 436 * 436), (40, 200 * 200)])
def test_feature_batches_are_powers_of_two_within_the_caps(count: int, pixels: int) -> None:
    sizes = feature_batches(count, pixels)
    assert sum(sizes) == count and sizes == sorted(sizes, reverse=True)
    assert all(s & (s - 1) == 0 and s <= FEATURE_BATCH for s in sizes)
    assert all(s == 1 or s * pixels <= FEATURE_PIXELS for s in sizes)
    rest = [s for s in sizes if s != sizes[0]]
    assert len(set(rest)) == len(rest)  # only the largest size repeats: few shapes compile


def test_realcugan_samples_of_a_512_image_take_three_calls() -> None:
    assert feature_batches(25, 68 * 68) == [16, 8, 1]


def test_batched_tile_features_equal_one_tile_at_a_time() -> None:
    """Syncgap samples run several to a call; each sample's pool vectors are what it gives alone."""
    spec, weights = _load("realcugan", "REALCUGAN_SE_UP2X")
    runner = TileRunner(spec, weights, 32, 1, jax.devices("cpu")[0], "native", TileGeometry.of(spec, 18, 2))
    image = _image(200, 230, top=40, left=40)
    positions = [(y, x) for y in range(0, 160, 32) for x in range(0, 192, 32)]
    assert len(positions) == 30  # 16 + 8 + 4 + 2 per call
    together = runner.tile_features(image, positions, GAPS)
    for spot, found in zip(positions[::7], together[::7], strict=False):
        alone = runner.tile_features(image, [spot], GAPS)[0]
        for name in GAPS:
            np.testing.assert_allclose(found[name], alone[name], rtol=1e-5, atol=3e-5)  # float sums
    assert len(together) == len(positions)
