"""srd against PyTorch on community model files: each architecture at its published size, on the CPU,
float32, the same number of cores.

Run from the repository root:
``python bench/community_speed.py [--models ...] [--sizes 128 256] [--big] [--threads 2] [--repeat 3]``
(a size is N for N x N, or W x H, as in bench/speed.py).

Each model is spandrel's own class (imported without spandrel's __init__, as tests/support/spandrel_ref.py
does) with random weights of a published model's shape (MODELS), its last convolution rescaled so that
the output is not saturated (as the tests do), saved with torch.save to a temporary .pth that srd reads
as it reads a user's file. For each model and size, the network on the whole image as one tile, the best
of ``--repeat`` timed runs after a warm-up (speed.py's ``best_times``):

- torch: the model's forward, eval mode, under ``torch.inference_mode``, with ``torch.set_num_threads``
  equal to ``--threads``, on the image mirrored by srd's 10 px context (what srd computes: the
  definition in spandrel_ref.forward_reflect);
- srd: ``Engine.upscale`` with its tile set to the image (speed.py's ``SrdRunner``), so one jitted call
  plus srd's own padding and copies;
- ratio = srd seconds / torch seconds, against the goal (0.5 for convolutional networks, 1.0 for
  transformers), and the largest 8-bit difference between the two outputs (at most 1 when srd is right).

An architecture srd does not read yet (srd's ModelError) prints one "skipped" line and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import charts  # bench/charts.py, beside this script: the CPU's name
import numpy as np
from speed import DEFAULT_IMAGE, Size, SrdRunner, U8Image, best_times, max_diff, pin_cores, test_image

# tests/support/spandrel_ref.py: spandrel's architectures without its package __init__ (which imports a
# torchvision that fails beside torch's CPU build), and the tests' random weights and calibration.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import torch
from support.spandrel_ref import architecture, calibrate, randomise

from srd.errors import ModelError
from srd.models.family import OVERLAP_CONTEXT

CONVOLUTIONAL, TRANSFORMER = 0.5, 1.0  # the srd / torch ratio aimed at
CALIBRATION_SIZE = Size(64, 64)  # the image the last layer is rescaled on: small, so it costs little


@dataclass(frozen=True)
class CommunityModel:
    """One benchmarked shape: spandrel's class (spandrel.architectures.<arch>.<cls>) and its arguments."""

    arch: str
    cls: str
    scale: int  # the file's: ESRGAN's `scale` argument is before its pixel unshuffle
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    goal: float = CONVOLUTIONAL
    # The longest side timed without --big (None: every size): torch takes most of a minute a run on 2
    # cores beyond it.
    quick_up_to: int | None = None

    def build(self, seed: int) -> Any:
        """The model in eval mode with random weights (spandrel_ref.randomise), or AttributeError /
        ImportError where this spandrel lacks the class."""
        model = getattr(architecture(self.arch), self.cls)(**self.kwargs)
        return randomise(model, seed, scale=0.3)


def _swinir(embed: int, depth: int, upsampler: str) -> dict[str, Any]:
    """SwinIR's published x4 hyperparameters (window 8, MLP ratio 2, one-conv residual connection)."""
    shape = {"embed_dim": embed, "depths": [6] * depth, "num_heads": [6] * depth, "window_size": 8}
    return shape | {"img_size": 64, "mlp_ratio": 2.0, "upscale": 4, "upsampler": upsampler}


def _hat(embed: int, compress: int, squeeze: int) -> dict[str, Any]:
    """HAT's published x4 hyperparameters (6 groups of 6 blocks, 6 heads, window 16, overlap ratio 0.5,
    MLP ratio 2): HAT-S with embed 144, compress ratio 24 and squeeze factor 24, HAT with 180, 3 and 30."""
    shape = {"embed_dim": embed, "depths": [6] * 6, "num_heads": [6] * 6, "window_size": 16}
    shape |= {"compress_ratio": compress, "squeeze_factor": squeeze, "overlap_ratio": 0.5}
    return shape | {"img_size": 64, "mlp_ratio": 2.0, "upscale": 4, "upsampler": "pixelshuffle"}


def _dat(embed: int, depth: list[int], split: list[int], expansion: float, upsampler: str) -> dict[str, Any]:
    """DAT's published x4 hyperparameters (6 heads a group): DAT (6 groups of 6, split 8x32, expansion
    4), DAT-2 (expansion 2: the shape 4x-UltraSharpV2 is reported to have), DAT-S (split 8x16,
    expansion 2), DAT-light (embed 60, one group of 18, 3conv, pixelshuffledirect)."""
    shape = {"embed_dim": embed, "depth": depth, "num_heads": [6] * len(depth), "split_size": split}
    shape["resi_connection"] = "3conv" if upsampler == "pixelshuffledirect" else "1conv"
    return shape | {"expansion_factor": expansion, "upscale": 4, "upsampler": upsampler}


MODELS = {
    # 4x-UltraSharp, Remacri, ESRGAN's own RRDB_ESRGAN_x4 shape
    "esrgan-4x-23x64": CommunityModel(
        "ESRGAN", "ESRGAN", 4, {"num_filters": 64, "num_blocks": 23, "scale": 4}, quick_up_to=128
    ),
    # Real-ESRGAN x2plus: the same RRDB on a 2x pixel-unshuffled input
    "esrgan-2x-23x64": CommunityModel(
        "ESRGAN",
        "ESRGAN",
        2,
        {"in_nc": 12, "num_filters": 64, "num_blocks": 23, "scale": 4, "shuffle_factor": 2},
    ),
    "compact-4x-64x16": CommunityModel(
        "Compact",
        "Compact",
        4,
        {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 16, "upscale": 4},
    ),
    # AnimeJaNai's 2x shape
    "compact-2x-64x16": CommunityModel(
        "Compact",
        "Compact",
        2,
        {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 16, "upscale": 2},
    ),
    "span-4x-48": CommunityModel(
        "SPAN", "SPAN", 4, {"num_in_ch": 3, "num_out_ch": 3, "feature_channels": 48, "upscale": 4}
    ),
    "realplksr-4x-64x28": CommunityModel(
        "PLKSR", "RealPLKSR", 4, {"dim": 64, "n_blocks": 28, "upscaling_factor": 4}
    ),
    "swinir-4x-classical": CommunityModel(
        "SwinIR", "SwinIR", 4, _swinir(180, 6, "pixelshuffle"), TRANSFORMER, quick_up_to=128
    ),
    "swinir-4x-light": CommunityModel(
        "SwinIR", "SwinIR", 4, _swinir(60, 4, "pixelshuffledirect"), TRANSFORMER
    ),
    "hat-s-4x": CommunityModel("HAT", "HAT", 4, _hat(144, 24, 24), TRANSFORMER, quick_up_to=128),
    "hat-4x": CommunityModel("HAT", "HAT", 4, _hat(180, 3, 30), TRANSFORMER, quick_up_to=128),
    "dat-light-4x": CommunityModel(
        "DAT", "DAT", 4, _dat(60, [18], [8, 32], 2.0, "pixelshuffledirect"), TRANSFORMER
    ),
    "dat-s-4x": CommunityModel(
        "DAT", "DAT", 4, _dat(180, [6] * 6, [8, 16], 2.0, "pixelshuffle"), TRANSFORMER, quick_up_to=128
    ),
    "dat-2-4x": CommunityModel(
        "DAT", "DAT", 4, _dat(180, [6] * 6, [8, 32], 2.0, "pixelshuffle"), TRANSFORMER, quick_up_to=128
    ),
    "dat-4x": CommunityModel(
        "DAT", "DAT", 4, _dat(180, [6] * 6, [8, 32], 4.0, "pixelshuffle"), TRANSFORMER, quick_up_to=128
    ),
}


def last_conv(model: Any) -> str:
    """The name of the model's last registered Conv2d: for every model here the last layer its output
    depends on linearly (before pixel shuffles and skip additions), which spandrel_ref.calibrate rescales."""
    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)][-1]


class TorchPeer:
    """spandrel's model on PyTorch's CPU, on one image mirrored by srd's context, as one tile."""

    def __init__(self, model: Any, image: U8Image, scale: int) -> None:
        pad = OVERLAP_CONTEXT
        pixels = image.astype(np.float32) / np.float32(255.0)
        padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        self.input = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
        self.model = model
        self.crop = pad * scale
        self.last: Any = None

    def run(self) -> Any:
        """One forward (what is timed); its output is kept for `output_u8`."""
        with torch.inference_mode():
            self.last = self.model(self.input)
        return self.last

    def output_u8(self) -> U8Image:
        """The last forward's output, cropped of the context, as 8-bit RGB rounded half up as srd does."""
        c = self.crop
        y = self.last[0].numpy().transpose(1, 2, 0)[c:-c, c:-c]
        pixels: U8Image = np.floor(np.clip(y, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return pixels


def saved_model(name: str, spec: CommunityModel, folder: Path) -> tuple[Any, Path]:
    """The model with random, calibrated weights, and the .pth srd reads it from."""
    model = spec.build(seed=len(name))
    calibration, _ = test_image(CALIBRATION_SIZE, DEFAULT_IMAGE)
    model = calibrate(model, last_conv(model), calibration.astype(np.float32) / np.float32(255.0))
    path = folder / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return model, path


def bench_one(name: str, model: Any, path: Path, size: Size, args: argparse.Namespace) -> str:
    """Time one (model, size) pair and return its report line; ModelError where srd cannot read it."""
    spec = MODELS[name]
    image, label = test_image(size, args.image)
    srd = SrdRunner(str(path), size.longest, image, args.conv, spec.scale)
    peer = TorchPeer(model, image, spec.scale)
    load = f"load {os.getloadavg()[0]:.1f}"
    t = best_times(args.repeat, {"torch": peer.run, "srd": srd.run})
    expected = peer.output_u8()
    unclipped = float(np.mean((expected > 0) & (expected < 255)))
    diff = max_diff(srd.output_u8(), expected)
    ratio = t["srd"] / t["torch"]
    verdict = "ok" if ratio <= spec.goal else "MISS"
    return (
        f"{name:<26}{size!s:>8}{t['torch']:>9.3f}{t['srd']:>9.3f}{ratio:>7.2f}{diff:>6}"
        f"{spec.goal:>6.1f} {verdict:<5}  {label}, output {unclipped:.0%} unclipped, {load}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--sizes", nargs="*", type=Size.parse, default=[Size(128, 128), Size(256, 256)], help="N or WxH"
    )
    parser.add_argument(
        "--big", action="store_true", help="also the big models' larger sizes (minutes a run)"
    )
    parser.add_argument("--threads", type=int, default=2, help="cores for both torch and srd")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up; the best counts")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="source photo (noise if absent)")
    parser.add_argument("--conv", default="auto", help="srd's convolution (as `srd upscale --conv`)")
    args = parser.parse_args(argv)
    cores = pin_cores(args.threads)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", "torch.meshgrid", UserWarning)  # SwinIR's, HAT's, DAT's, in torch
    print(
        f"{charts.cpu_name()}, {datetime.date.today()}, os.cpu_count()={os.cpu_count()}, pinned to cores"
        f" {cores}, threads={args.threads}, srd --conv {args.conv} against torch {torch.__version__}"
        f" float32, best of {args.repeat} after warm-up; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    print(f"{'model':<26}{'size':>8}{'torch':>9}{'srd':>9}{'ratio':>7}{'diff':>6}{'goal':>6}")
    print(f"{'':<34}{'--- network, one tile (s) ---'}")
    with tempfile.TemporaryDirectory(prefix="srd-community-bench-") as folder:
        for name in args.models:
            spec = MODELS[name]
            try:
                model, path = saved_model(name, spec, Path(folder))
            except (ImportError, AttributeError) as exc:
                print(
                    f"{name:<26}   skipped: this spandrel has no {spec.arch}.{spec.cls} ({exc})", flush=True
                )
                continue
            for size in args.sizes:
                if not args.big and spec.quick_up_to is not None and size.longest > spec.quick_up_to:
                    print(f"{name:<26}{size!s:>8}   skipped: minutes a run, timed with --big", flush=True)
                    continue
                try:
                    line = bench_one(name, model, path, size, args)
                except ModelError as exc:
                    reason = str(exc).removeprefix(f"model file {path}: ")
                    print(f"{name:<26}   skipped: srd cannot read it yet ({reason})", flush=True)
                    break
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
