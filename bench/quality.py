"""PSNR of srd's models in srd and in ncnn on Set5 and Set14 at 2x, 3x and 4x, SRCNN-style.

Run from the repository root: ``python bench/quality.py [--data ../shared/data] [--models ...]
[--scales 2 3 4] [--sets set5 set14]``.

Models: waifu2x's (2x, against waifu2x-ncnn-vulkan's CPU path, tests/support/ncnn_peer.py) and Real-CUGAN
(se 2x/3x/4x, pro 2x/3x), Real-ESRGAN (animevideov3 2x/3x/4x, x4plus-anime and x4plus 4x) and RealSR
(df2k 4x) at their native scales, noise -1 (Real-CUGAN's conservative models, the reference default),
against their reference programs' CPU pipelines (tests/support/realsr_peer.py: Real-CUGAN 400 px
tiles with syncgap 3, Real-ESRGAN/RealSR 200 px tiles). srd runs its engine with the family's default tile
(the same 400 / 200). Each scale prints its bicubic rows and then the models that have that scale.

Protocol, per image:
- crop the ground truth to a multiple of the scale (``modcrop``);
- bicubic rows: MATLAB ``imresize`` down by 1/scale and back up (``matlab_imresize``);
- model rows: the low-resolution input is the ground truth's RGB shrunk with MATLAB ``imresize`` on
  uint8 (as MATLAB does, rounded to uint8), then upscaled by the model to 8-bit RGB;
- compare on Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in 0..1, Y left unrounded) with
  ``scale`` pixels shaved from each border; grayscale images (Set14 bridge) are compared on their gray
  values (model input: gray replicated to RGB; output: 0.299 R + 0.587 G + 0.114 B).

Two bicubic rows are printed. "bicubic (SRCNN)" is the SRCNN paper's own script (Y taken first and
rounded to uint8, resized in floating point, result rounded to uint8), which gives the paper's
figures image by image. "bicubic (RGB)" is bicubic through exactly the model rows' protocol, the
baseline the models should be read against.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/support: the ncnn peer

from support import realsr_peer
from support.matlab_imresize import imresize
from support.ncnn_peer import load_peer
from support.sr_metrics import load_set, model_psnr, srcnn_bicubic_psnr

from srd.imaging.raster import RasterImage
from srd.runtime import configure_runtime

configure_runtime()  # XLA_FLAGS and malloc settings before JAX starts, as `srd upscale` has them

U8Image = npt.NDArray[np.uint8]
F64Array = npt.NDArray[np.float64]
Upscaler = Callable[[U8Image], U8Image]

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = ("set5", "set14")
WAIFU2X_MODELS = ("upconv7-art", "upconv7-photo", "cunet")
# model -> (package, the .param stem at a scale) of its reference files, noise -1
FAMILY_MODELS: dict[str, tuple[str, dict[int, str]]] = {
    "realcugan-se": ("realcugan", {s: f"REALCUGAN_SE_UP{s}X_CONSERVATIVE" for s in (2, 3, 4)}),
    "realcugan-pro": ("realcugan", {s: f"REALCUGAN_PRO_UP{s}X_CONSERVATIVE" for s in (2, 3)}),
    "realesr-animevideov3": ("realesrgan", {s: f"REALESRGAN_ANIMAVIDEOV3_UP{s}X" for s in (2, 3, 4)}),
    "realesrgan-x4plus-anime": ("realesrgan", {4: "REALESRGAN_X4PLUSANIME_UP4X"}),
    "realesrgan-x4plus": ("realesrgan", {4: "REALESRGAN_X4PLUS_UP4X"}),
    "realsr-df2k": ("realsr", {4: "REALSR_DF2K_UP4X"}),
}
MODELS = (*WAIFU2X_MODELS, *FAMILY_MODELS)


def native_scales(model: str) -> tuple[int, ...]:
    """The scales a model has its own network for (waifu2x: 2x only here)."""
    if model in FAMILY_MODELS:
        return tuple(sorted(FAMILY_MODELS[model][1]))
    return (2,)


def bicubic_upscaler(scale: int) -> Upscaler:
    """MATLAB imresize on uint8 RGB as an upscaler."""

    def upscale(rgb: U8Image) -> U8Image:
        return np.asarray(imresize(rgb, float(scale)), dtype=np.uint8)

    return upscale


def ncnn_upscaler(model: str, scale: int, threads: int) -> Upscaler:
    """The reference program's CPU path (fp32) through ncnn: waifu2x-ncnn-vulkan's (tile 400) for waifu2x,
    realcugan-ncnn-vulkan's (tile 400, syncgap 3) or realsr-ncnn-vulkan's (tile 200) for the others."""
    if model not in FAMILY_MODELS:
        return load_peer(model, -1, scale, num_threads=threads).process
    package, stems = FAMILY_MODELS[model]
    net = realsr_peer.load(package, stems[scale], threads)
    if package == "realcugan":
        return lambda rgb: realsr_peer.realcugan(rgb, net, scale)
    return lambda rgb: realsr_peer.realesrgan_like(rgb, net, scale)


def srd_upscaler(model: str, scale: int, tile: int | None, conv: str = "auto") -> Upscaler:
    """srd's public engine API, RGB in and 8-bit RGB out (rounded half up like srd's encoder)."""
    from srd.engine import Engine
    from srd.settings import EngineSettings, ModelSettings

    engine = Engine(
        ModelSettings(name=model, noise=-1, scale=scale),  # type: ignore[arg-type]
        EngineSettings(tile=tile, batch=1, conv=conv),  # type: ignore[arg-type]
    )
    engine.warmup()

    def upscale(rgb: U8Image) -> U8Image:
        pixels = rgb.astype(np.float32) / np.float32(255.0)
        result = engine.upscale(RasterImage(pixels=pixels, source_format="png"))
        pixels_out: U8Image = np.floor(np.clip(result.pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return pixels_out

    return upscale


def bf16_unavailable() -> str | None:
    """None when srd's bfloat16 kernel (--conv native-bf16) runs here, otherwise why not."""
    from srd.nn.conv import native

    if not native.available():
        return "srd's native kernel is not built"
    return None if native.bf16_supported() else "this CPU (or kernel) offers no AMX-BF16"


def srd_available() -> str | None:
    """None when srd.engine imports, otherwise why not."""
    try:
        import srd.engine  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def mean_row(sets: dict[str, list[tuple[str, U8Image]]], scores: Callable[[U8Image], float]) -> list[float]:
    """The mean score over each set's images, one per set."""
    return [float(np.mean([scores(hr) for _, hr in images])) for images in sets.values()]


def score_model(
    sets: dict[str, list[tuple[str, U8Image]]], scale: int, upscale: Upscaler
) -> dict[str, list[tuple[str, float]]]:
    """Every image's PSNR for one upscaler, by set."""
    return {
        set_name: [(name, model_psnr(hr, scale, upscale)) for name, hr in images]
        for set_name, images in sets.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding set5/ and set14/")
    parser.add_argument(
        "--scales", nargs="*", type=int, default=[2], choices=(2, 3, 4), help="the scales to run (default 2)"
    )
    parser.add_argument(
        "--models",
        nargs="*",
        default=list(WAIFU2X_MODELS),
        choices=MODELS,
        help="each runs at those of --scales it has natively (default: the waifu2x models)",
    )
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=SETS, help="benchmark sets")
    parser.add_argument("--threads", type=int, default=2, help="ncnn threads")
    parser.add_argument("--srd-tile", type=int, default=None, help="srd's tile (default: the engine's own)")
    parser.add_argument("--no-srd", action="store_true", help="skip srd even when srd.engine is present")
    parser.add_argument("--per-image", action="store_true", help="also print every image's PSNR")
    parser.add_argument(
        "--no-bf16", action="store_true", help="skip the bfloat16 rows (srd --conv native-bf16)"
    )
    args = parser.parse_args(argv)
    set_names: tuple[str, ...] = tuple(args.sets)
    sets = {name: load_set(args.data / name) for name in set_names}
    why_no_srd = "disabled by --no-srd" if args.no_srd else srd_available()
    runner_names = ["ncnn"] if why_no_srd is not None else ["srd", "ncnn"]
    for scale in args.scales:
        models = [model for model in args.models if scale in native_scales(model)]
        float32_means = print_scale(sets, scale, models, runner_names, args)
        waifu2x = [model for model in models if model in WAIFU2X_MODELS]
        if why_no_srd is None and not args.no_bf16 and waifu2x:
            print_bf16_rows(sets, scale, waifu2x, args.srd_tile, float32_means)
    if why_no_srd is not None:
        print(f"srd columns skipped: {why_no_srd}")
    return 0


def print_scale(
    sets: dict[str, list[tuple[str, U8Image]]],
    scale: int,
    models: Sequence[str],
    runner_names: Sequence[str],
    args: argparse.Namespace,
) -> dict[str, list[float]]:
    """Print the bicubic rows and each model's row at one scale; return srd's mean per set by model (for
    the bfloat16 rows)."""
    set_names = tuple(sets)
    print(f"PSNR (dB) at {scale}x, Y channel, {scale} px shaved, mean per set; data: {args.data}", flush=True)
    print(f"{'bicubic':<26}" + "".join(f"{name:>10}" for name in set_names))
    srcnn = mean_row(sets, lambda hr: srcnn_bicubic_psnr(hr, scale))
    rgb = mean_row(sets, lambda hr: model_psnr(hr, scale, bicubic_upscaler(scale)))
    print(f"{'  SRCNN protocol':<26}" + "".join(f"{v:>10.2f}" for v in srcnn))
    print(f"{'  RGB protocol':<26}" + "".join(f"{v:>10.2f}" for v in rgb))
    columns = [f"{set_name} {runner}" for set_name in set_names for runner in runner_names]
    print(f"{'model (noise -1)':<26}" + "".join(f"{c:>13}" for c in columns) + "   gap, seconds", flush=True)
    float32_means: dict[str, list[float]] = {}
    for model in models:
        results: dict[str, dict[str, list[tuple[str, float]]]] = {}
        seconds: dict[str, float] = {}
        for runner in runner_names:
            upscale = (
                srd_upscaler(model, scale, args.srd_tile)
                if runner == "srd"
                else ncnn_upscaler(model, scale, args.threads)
            )
            started = time.perf_counter()
            results[runner] = score_model(sets, scale, upscale)
            seconds[runner] = time.perf_counter() - started
        means = [
            float(np.mean([p for _, p in results[runner][set_name]]))
            for set_name in set_names
            for runner in runner_names
        ]
        timing = " ".join(f"{runner}={seconds[runner]:.1f}" for runner in runner_names)
        if "srd" in runner_names:
            float32_means[model] = [means[i] for i in range(0, len(means), len(runner_names))]
        if len(runner_names) == 2:
            gap = max(abs(means[i] - means[i + 1]) for i in range(0, len(means), 2))
            timing = f"|srd-ncnn| <= {gap:.3f} dB   " + timing
        label = f"  {model} {scale}x"
        print(f"{label:<26}" + "".join(f"{v:>13.2f}" for v in means) + f"   {timing}", flush=True)
        if args.per_image:
            for runner in runner_names:
                for set_name, rows in results[runner].items():
                    print(f"    {runner} {set_name}: " + " ".join(f"{n}={p:.3f}" for n, p in rows))
    return float32_means


def print_bf16_rows(
    sets: dict[str, list[tuple[str, U8Image]]],
    scale: int,
    models: Sequence[str],
    tile: int | None,
    float32_means: dict[str, list[float]],
) -> None:
    """srd with bfloat16 matmuls (--conv native-bf16) and its PSNR cost against srd's float32 rows."""
    why = bf16_unavailable()
    if why is not None:
        print(f"bfloat16 rows skipped: {why}")
        return
    set_names = tuple(sets)
    columns = [f"{name} bf16" for name in set_names] + [f"{name} cost" for name in set_names]
    print(f"{'srd --conv native-bf16':<26}" + "".join(f"{c:>13}" for c in columns) + "   seconds")
    for model in models:
        upscale = srd_upscaler(model, scale, tile, "native-bf16")
        started = time.perf_counter()
        results = score_model(sets, scale, upscale)
        seconds = time.perf_counter() - started
        means = [float(np.mean([p for _, p in results[set_name]])) for set_name in set_names]
        costs = [f32 - bf16 for f32, bf16 in zip(float32_means[model], means, strict=True)]
        print(
            f"{'  ' + model:<26}"
            + "".join(f"{v:>13.2f}" for v in means)
            + "".join(f"{v:>13.3f}" for v in costs)
            + f"   {seconds:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    raise SystemExit(main())
