"""srd's Python API (srd/api.py): its doctests, the kinds of image it takes and gives back, equality with
`srd upscale`, compiled programs reused, threads, and `import srd` staying free of JAX."""

from __future__ import annotations

import doctest
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from support.daemon import SRD_COMMAND

import srd
import srd.api
from srd.errors import ModelError, UnsupportedFormatError, UsageError
from srd.imaging.decode import read_image
from srd.imaging.encode import quantize
from srd.imaging.png import encode_png
from srd.models import BUILTINS

SETTINGS = {"noise": 1, "scale": 2, "tile": 32}
CLI_SETTINGS = ["-m", "upconv7-art", "-n", "1", "-s", "2", "--tile", "32", "--cache-dir", "none"]


@pytest.fixture(scope="module")
def upscaler() -> srd.Upscaler:
    """One upconv7-art, noise 1, 2x, 32 px tiles, shared by the module's tests (compiled once)."""
    return srd.Upscaler("upconv7-art", **SETTINGS)


def _rng_image(shape: tuple[int, ...], dtype: type[np.unsignedinteger] = np.uint8) -> npt.NDArray[np.uint8]:
    top = 256 if dtype == np.uint8 else 65536
    return np.random.default_rng(sum(shape)).integers(0, top, shape).astype(dtype)  # type: ignore[return-value]


def _run_cli(*args: str) -> None:
    result = subprocess.run(
        [*SRD_COMMAND, "upscale", *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr


def test_doctests_pass() -> None:
    """Every example in srd/api.py's docstrings runs and prints what it says."""
    result = doctest.testmod(srd.api, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_import_srd_and_help_do_not_import_jax() -> None:
    """A fresh `import srd`, touching srd.__version__ and `srd --help`, leaves JAX unimported."""
    probe = (
        "import sys, srd, contextlib, io\n"
        "from srd.cli import main\n"
        "srd.__version__\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'jaxlib'))))\n"
        "print(srd.Upscaler.__module__, 'jax' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "srd.api False"]


def test_list_models_matches_the_registry() -> None:
    """list_models() has every built-in in order, with its passes' scales and noise levels."""
    infos = srd.list_models()
    assert [m.name for m in infos] == list(BUILTINS)
    for info in infos:
        passes = {(n, s) for s, noises in info.levels.items() for n in noises}
        assert passes == set(BUILTINS[info.name].levels)
    assert [m.name for m in infos if m.default] == ["upconv7-art"]
    pro = next(m for m in infos if m.name == "realcugan-pro")
    assert (pro.family, pro.scales, pro.levels[2]) == ("Real-CUGAN", (2, 3), (-1, 0, 3))


@pytest.fixture(scope="module")
def cli_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where one real `srd upscale` run (a subprocess) has upscaled an RGBA PNG with real
    transparency, a.png, and a 16-bit RGB PNG, b.png, with the module's settings."""
    folder = tmp_path_factory.mktemp("cli")
    rgba = _rng_image((14, 18, 4))
    rgba[..., 3] = np.linspace(0, 255, 18, dtype=np.uint8)[None, :]
    Image.fromarray(rgba, "RGBA").save(folder / "a.png")
    (folder / "b.png").write_bytes(encode_png(_rng_image((10, 12, 3), np.uint16)))
    _run_cli(*CLI_SETTINGS, str(folder / "a.png"), str(folder / "b.png"))
    return folder


def test_pillow_image_equals_srd_upscale(cli_outputs: Path, upscaler: srd.Upscaler) -> None:
    """An RGBA PNG upscaled by the API is pixel for pixel the PNG `srd upscale` writes for it."""
    with Image.open(cli_outputs / "a.png") as source:
        ours = upscaler.upscale(source)
    with Image.open(cli_outputs / "a_x2_n1.png") as cli:
        assert (ours.mode, ours.size) == (cli.mode, cli.size) == ("RGBA", (36, 28))
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(cli))


def test_16_bit_array_equals_srd_upscale(cli_outputs: Path, upscaler: srd.Upscaler) -> None:
    """A uint16 RGB array comes back as uint16 equal to `srd upscale`'s 16-bit PNG of the same pixels."""
    samples = read_image(cli_outputs / "b.png", max_pixels=10_000)
    assert samples.bits == 16
    cli = read_image(cli_outputs / "b_x2_n1.png", max_pixels=10_000)
    assert cli.bits == 16
    ours = upscaler.upscale(quantize(samples.pixels, 65535, np.uint16))
    assert ours.dtype == np.uint16 and ours.shape == (20, 24, 3)
    np.testing.assert_array_equal(ours, quantize(cli.pixels, 65535, np.uint16))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(9, 11), (9, 11, 1), (9, 11, 2), (9, 11, 3), (9, 11, 4)])
def test_arrays_come_back_in_their_dtype_and_layout(
    upscaler: srd.Upscaler, shape: tuple[int, ...], dtype: type[np.unsignedinteger]
) -> None:
    """Every accepted layout returns the same dtype and channels at twice the size."""
    out = upscaler.upscale(_rng_image(shape, dtype))
    assert out.dtype == dtype and out.shape == (18, 22, *shape[2:])


def test_opaque_alpha_is_kept_and_matches_the_colour_alone(upscaler: srd.Upscaler) -> None:
    """A fully opaque RGBA array keeps its alpha band (all 255), its colour equal to the RGB result."""
    rgb = _rng_image((8, 10, 3))
    rgba = np.concatenate([rgb, np.full((8, 10, 1), 255, np.uint8)], axis=2)
    out = upscaler.upscale(rgba)
    assert (out[..., 3] == 255).all()
    np.testing.assert_array_equal(out[..., :3], upscaler.upscale(rgb))


def test_gray_array_equals_gray_pillow_image(upscaler: srd.Upscaler) -> None:
    """An H x W uint8 array and the same pixels as a Pillow "L" image give the same result."""
    gray = _rng_image((12, 7))
    from_array = upscaler.upscale(gray)
    from_pillow = upscaler.upscale(Image.fromarray(gray, "L"))
    assert from_pillow.mode == "L"
    np.testing.assert_array_equal(from_array, np.asarray(from_pillow))


@pytest.mark.parametrize(
    ("mode", "expected"), [("1", "L"), ("P", "RGB"), ("LA", "LA"), ("CMYK", "RGB"), ("I;16", "I;16")]
)
def test_pillow_modes_come_back_as_srd_decodes_them(upscaler: srd.Upscaler, mode: str, expected: str) -> None:
    """Pillow modes are converted by srd's decoder: 1 -> L, P -> RGB, CMYK -> RGB, 16-bit gray stays."""
    source = Image.fromarray(_rng_image((10, 10, 3)), "RGB").convert(mode)
    out = upscaler.upscale(source)
    assert (out.mode, out.size) == (expected, (20, 20))


def test_compiled_programs_are_reused(upscaler: srd.Upscaler) -> None:
    """A second image of a size already seen compiles nothing new."""
    upscaler.upscale(_rng_image((16, 16, 3)))
    before = upscaler.compilations
    for seed in range(3):
        upscaler.upscale(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    assert upscaler.compilations == before > 0


def test_calls_from_threads_equal_serial_calls(upscaler: srd.Upscaler) -> None:
    """Four threads sharing one Upscaler get exactly what one thread gets, image by image."""
    images = [np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8) for seed in range(8)]
    serial = [upscaler.upscale(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(upscaler.upscale, images))
    for one, other in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(one, other)


def test_settings_errors_are_the_schemas() -> None:
    """Bad settings raise UsageError with the schema's "At 'key'" messages, every problem at once."""
    with pytest.raises(UsageError) as info:
        srd.Upscaler(noise=7, tile=5)
    assert "At 'noise'" in str(info.value) and "At 'tile'" in str(info.value)
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        srd.Upscaler("nope")
    with pytest.raises(ModelError, match="no 4x or larger model"):
        srd.Upscaler("realcugan-pro", scale=4)


def test_unsupported_inputs_are_refused(upscaler: srd.Upscaler) -> None:
    """Float or signed arrays, odd shapes and other objects are refused with a reason."""
    with pytest.raises(UnsupportedFormatError, match="uint8 or uint16"):
        upscaler.upscale(np.zeros((4, 4, 3), np.float32))  # type: ignore[call-overload]
    with pytest.raises(UnsupportedFormatError, match="H x W"):
        upscaler.upscale(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match=r"PIL\.Image\.Image or a numpy array"):
        upscaler.upscale([[0]])  # type: ignore[call-overload]


def test_the_api_tutorial_runs() -> None:
    """docs/api.md's examples run and print what the page says."""
    page = Path(__file__).resolve().parents[2] / "docs" / "api.md"
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 15 and result.failed == 0


def test_progress_counts_tiles_up_to_the_total(upscaler: srd.Upscaler) -> None:
    """progress(done, total) rises to done == total over an image of several tiles, alpha included."""
    calls: list[tuple[int, int]] = []
    rgba = _rng_image((40, 70, 4))
    rgba[..., 3] = 128
    upscaler.upscale(rgba, progress=lambda done, total: calls.append((done, total)))
    dones = [done for done, _ in calls]
    assert len({total for _, total in calls}) == 1 and calls[-1][0] == calls[-1][1] > 6
    assert dones == sorted(dones)
