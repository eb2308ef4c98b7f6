"""Run a folder of animations through srd and say which came out whole (issue 33's measure).

Each GIF, PNG/APNG and WebP file is read by Pillow (the reference), then upscaled by the worker's own job
function (srd.jobs.runner.run_job: decode -> upscale -> encode, as the daemon runs it) with
output.animation (`same` by default) and read back by Pillow. A file is *kept* when its output is animated
with the same frame count (an APNG's default image outside the animation is not a frame; a WebP output
may merge identical consecutive frames) and a total duration within 5% or 20 ms of the input's. The line
also says where frame durations, the play count or the pixels differ (pixels: the output downscaled
against Pillow's frames, in 8-bit levels; srd composites GIFs as browsers do where Pillow does not, see
README, Formats). Files Pillow cannot read whole are listed as undecodable and one-frame files as stills;
neither counts in the share.

    python bench/animation_corpus.py DIR                      # every animation in DIR, pixel-repeat 2x
    python bench/animation_corpus.py DIR --model upconv7-art  # through a real network (slower)
    python bench/animation_corpus.py --generate DIR           # write tests/support's odd corpus, then run

`--model repeat` (the default) upscales by repeating pixels, so that the run measures srd's animation
handling alone, quickly; any `srd models` name runs that network. Exit 0 when the share is >= --goal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.animation_compare import (  # noqa: E402 -- the test helpers live beside the tests
    PixelRepeat,
    Verdict,
    compare,
    pillow_timeline,
)

from srd.jobs import JobDone, JobSpec  # noqa: E402
from srd.jobs.runner import Upscaler, run_job  # noqa: E402
from srd.settings import OutputSettings  # noqa: E402

SUFFIXES = (".gif", ".png", ".apng", ".webp")


def _engine(model: str, scale: int, tile: int) -> tuple[Upscaler, int]:
    if model == "repeat":
        return PixelRepeat(), PixelRepeat.scale
    from srd.engine.engine import Engine
    from srd.settings import EngineSettings, ModelSettings

    return Engine(ModelSettings(name=model, scale=scale), EngineSettings(tile=tile)), scale


def check_file(path: Path, engine: Upscaler, scale: int, output: OutputSettings, work: Path) -> Verdict | str:
    """The verdict on one file, or why it does not count ("undecodable: ...", "still")."""
    try:
        source = pillow_timeline(path)
    except Exception as exc:  # Pillow's many error types: the file is not a reference
        return f"undecodable by Pillow ({type(exc).__name__}: {exc})"
    if len(source.frames) <= 1:
        return "still (one frame)"
    spec = JobSpec(path.name, path, work / f".{path.name}.tmp", output, 10**9, 10**9, max_frames=100_000)
    result = run_job(engine, spec)
    if not isinstance(result, JobDone):
        verdict = Verdict(path.name, len(source.frames), 0, source.total_ms, 0.0, False)
        verdict.problems.append(f"srd failed: {result.error_type}: {result.message}")
        return verdict
    out = pillow_timeline(spec.temp, skip_default_image=False, clip=False)
    spec.temp.unlink()
    return compare(path.name, source, out, scale=scale, merged_ok=out.format == "WEBP")


def _line(verdict: Verdict) -> str:
    error = "" if verdict.content_error is None else f" px {verdict.content_error:.1f}"
    problems = "; ".join(verdict.problems)
    return (
        f"{'kept' if verdict.kept else 'NOT KEPT':8s} {verdict.name:48s} {verdict.frames_in:4d} -> "
        f"{verdict.frames_out:<4d} {verdict.ms_in:8.0f} -> {verdict.ms_out:<8.0f}{error}"
        + (f"  [{problems}]" if problems else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of animations (searched recursively)")
    parser.add_argument("--generate", action="store_true", help="first write the odd corpus into it")
    parser.add_argument("--model", default="repeat", help="repeat (pixel repeat 2x) or a model name")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--animation", default="same", choices=["same", "png", "webp", "gif"])
    parser.add_argument("--lossless", action="store_true", help="WebP outputs lossless")
    parser.add_argument("--goal", type=float, default=0.98, help="the share that must be kept")
    args = parser.parse_args(argv)
    if args.generate:
        from support.odd_corpus import odd_corpus

        args.folder.mkdir(parents=True, exist_ok=True)
        for case in odd_corpus():
            (args.folder / case.name).write_bytes(case.data)
    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    engine, scale = _engine(args.model, args.scale, args.tile)
    output = OutputSettings(animation=args.animation, format="same", webp_lossless=args.lossless)
    verdicts: list[Verdict] = []
    skipped: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        for path in files:
            verdict = check_file(path, engine, scale, output, Path(work))
            if isinstance(verdict, str):
                skipped.append(f"{'-':8s} {path.name:48s} {verdict}")
                continue
            verdicts.append(verdict)
            print(_line(verdict), flush=True)
    for line in skipped:
        print(line)
    kept = sum(v.kept for v in verdicts)
    share = kept / len(verdicts) if verdicts else 1.0
    print(
        f"\n{kept} of {len(verdicts)} animations kept ({share:.1%}; goal {args.goal:.0%}); "
        f"{len(skipped)} not counted (stills, undecodable); {time.monotonic() - started:.1f} s"
    )
    return 0 if share >= args.goal else 1


if __name__ == "__main__":
    sys.exit(main())
