"""Charts of the benchmark tables: srd against ncnn, time per model and size (docs/perf/speed.png), and
Set14 PSNR against srd's speed in output Mpx/s, one point per model and scale (docs/perf/quality-speed.png).

Run from the repository root (needs matplotlib: ``pip install 'srd[bench]'``):
``python bench/charts.py [--results FILE | --speed FILE] [--quality FILE] [--machine TEXT]``.

Speed comes from one measurement round kept as data in bench/results/ (one CSV per machine and round,
bench/results/README.md says its columns; by default the newest, by its file name), or from the table
`bench/speed.py` prints, saved to a file (``python bench/speed.py ... > speed.txt``; Markdown rows as
docs/performance.md prints them read too). Quality comes from the table `bench/quality.py` prints or, by
default, from docs/performance.md's Markdown tables (PSNR does not depend on the machine). Rows marked
"loaded" are drawn hatched.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PERFORMANCE_PAGE = REPO / "docs" / "performance.md"

# speed.py's report line: "name 2x  size  ncnn srd ratio diff  ncnn srd ratio diff ..."
_SPEED_LINE = re.compile(
    r"^(?P<model>[a-z0-9-]+) (?P<scale>\d)x\s+(?P<size>\d+(?:x\d+)?)"
    r"\s+(?P<ncnn_net>[\d.]+)\s+(?P<srd_net>[\d.]+)"
    r"\s+[\d.]+\s+\d+\s+(?P<ncnn_whole>[\d.]+)\s+(?P<srd_whole>[\d.]+)\s+[\d.]+\s+\d+(?P<rest>.*)$"
)
# A Markdown row (docs/performance.md, the README):
# "| name 2x | size | ncnn / srd s (ratio) | ncnn / srd s (ratio) | diff |"
_SPEED_ROW = re.compile(
    r"^\| (?P<model>[a-z0-9-]+) (?P<scale>\d)x \| (?P<size>\d+(?:x\d+)?) \|"
    r" (?P<ncnn_net>[\d.]+) / (?P<srd_net>[\d.]+)"
    r"(?P<net_note>[^|]*)\| (?P<ncnn_whole>[\d.]+) / (?P<srd_whole>[\d.]+)(?P<rest>[^|]*)\|"
)
_SCALES = re.compile(r"^(?P<name>[a-z0-9-]+)((?: \d+x(?: /)?)*)")


@dataclass(frozen=True)
class SpeedRow:
    """One model and size: seconds for the one-tile network and the whole image, ncnn and srd."""

    model: str
    scale: int
    size: str  # "512" (512 x 512) or "333x517" (width x height)
    ncnn_net: float
    srd_net: float
    ncnn_whole: float
    srd_whole: float
    loaded: bool

    @property
    def label(self) -> str:
        return f"{self.model} {self.scale}x\n{self.size} px" + (" (loaded)" if self.loaded else "")

    @property
    def pixels(self) -> int:
        """Input pixels: width x height."""
        width, _, height = self.size.partition("x")
        return int(width) * int(height or width)

    @property
    def output_mpx_per_s(self) -> float:
        """srd's whole-image speed in output megapixels per second."""
        return self.pixels * self.scale**2 / 1e6 / self.srd_whole


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, for a chart measured on this machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "this machine"


def section(text: str, title: str) -> str:
    """The Markdown section whose heading contains `title`, up to the next heading of its level or above."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") and title in line:
            level = len(line) - len(line.lstrip("#"))
            end = next(
                (
                    j
                    for j in range(i + 1, len(lines))
                    if lines[j].startswith("#") and len(lines[j]) - len(lines[j].lstrip("#")) <= level
                ),
                len(lines),
            )
            return "\n".join(lines[i:end])
    raise ValueError(f"no heading containing {title!r}")


def parse_speed(text: str) -> list[SpeedRow]:
    """Every speed row in speed.py's output or in Markdown tables made from it."""
    rows = []
    for line in text.splitlines():
        match = _SPEED_LINE.match(line) or _SPEED_ROW.match(line)
        if match is None:
            continue
        values = match.groupdict()
        rows.append(
            SpeedRow(
                values["model"],
                int(values["scale"]),
                values["size"],
                *(float(values[k]) for k in ("ncnn_net", "srd_net", "ncnn_whole", "srd_whole")),
                loaded="loaded" in line,
            )
        )
    return rows


def newest_results(folder: Path = RESULTS) -> Path:
    """The newest round in bench/results/: files are named DATE-N-MACHINE-WHAT.csv, N counting that day's
    rounds, so the last name is the newest."""
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise SystemExit(f"no results in {folder}")
    return files[-1]


def read_results(path: Path) -> tuple[list[SpeedRow], str]:
    """A bench/results/ CSV's rows, and the machine and date they were measured on, for the chart's title."""
    with path.open(newline="", encoding="utf-8") as file:
        records = list(csv.DictReader(file))
    rows = [
        SpeedRow(
            record["model"],
            int(record["scale"]),
            record["size"],
            *(float(record[k]) for k in ("ncnn_net_s", "srd_net_s", "ncnn_whole_s", "srd_whole_s")),
            loaded="loaded" in record["note"],
        )
        for record in records
    ]
    machines = sorted({f"{record['machine']}, {record['date']}" for record in records})
    return rows, "; ".join(machines) + ", float32, 2 threads each"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_quality(text: str) -> dict[tuple[str, int], float]:
    """Set14 PSNR by (model, scale) from quality.py's output or docs/performance.md's tables (the srd
    column where there is one; "bicubic" as a model; bfloat16 rows left out)."""
    psnr: dict[tuple[str, int], float] = {}
    column: int | None = None
    scale = 2
    bicubic_sets: list[str] = []
    for line in text.splitlines():
        if line.startswith("PSNR (dB) at "):
            scale = int(line.removeprefix("PSNR (dB) at ").split("x")[0])
        if line.startswith("bicubic "):
            bicubic_sets = line.lower().split()[1:]
        if line.startswith("  SRCNN protocol") and "set14" in bicubic_sets:
            psnr[("bicubic", scale)] = float(line.split()[2 + bicubic_sets.index("set14")])
        if line.startswith("|"):
            cells = _cells(line)
            if column is None or set(line) <= set("|-: "):
                if any("set14" in c.lower() for c in cells):
                    srd = [i for i, c in enumerate(cells) if "set14" in c.lower() and "ncnn" not in c.lower()]
                    column = srd[0]
                continue
            _add_row(psnr, cells[0], cells[column] if column < len(cells) else "")
        elif line.startswith("model (noise -1)"):
            names = re.findall(r"set\d+ \w+", line.lower())
            column = names.index("set14 srd") + 1 if "set14 srd" in names else None
        elif line.startswith("  ") and column is not None and not line.startswith("   "):
            parts = line.split()
            if len(parts) > column + 1 and re.fullmatch(r"\d+x", parts[1]):
                psnr[(parts[0], int(parts[1][:-1]))] = float(parts[1 + column])
        elif not line.strip():
            column = None if not line.startswith("|") else column
    return psnr


def _add_row(psnr: dict[tuple[str, int], float], name_cell: str, value_cell: str) -> None:
    """A Markdown row such as "realcugan-se 2x / 3x / 4x | 32.12 / 30.11 / 28.72" (2x when no scale)."""
    if "bf16" in name_cell or "not run" in value_cell:
        return
    match = _SCALES.match(name_cell)
    values = [v.split()[0] for v in value_cell.split(" / ") if v.strip()]
    if match is None or not values or not all(re.fullmatch(r"\d+\.\d+", v) for v in values):
        return
    scales = [int(s) for s in re.findall(r"(\d+)x", match.group(2))] or [2]
    for s, v in zip(scales, values, strict=False):
        psnr[(match["name"], s)] = float(v)


def speed_chart(rows: list[SpeedRow], machine: str, out: Path) -> None:
    """Bars of ncnn's and srd's seconds per model and size, one-tile network and whole image, log scale."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    x = list(range(len(rows)))
    for ax, part, title in ((axes[0], "net", "network, one tile"), (axes[1], "whole", "whole image")):
        for offset, side, colour in ((-0.2, "ncnn", "#999999"), (0.2, "srd", "#1f77b4")):
            heights = [getattr(row, f"{side}_{part}") for row in rows]
            bars = ax.bar([i + offset for i in x], heights, 0.4, label=side, color=colour)
            for bar, row in zip(bars, rows, strict=True):
                if row.loaded:
                    bar.set_hatch("//")
        for i, row in enumerate(rows):
            ratio = getattr(row, f"srd_{part}") / getattr(row, f"ncnn_{part}")
            top = max(getattr(row, f"srd_{part}"), getattr(row, f"ncnn_{part}"))
            ax.annotate(f"{ratio:.2f}", (i, top), ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.set_title(f"{title} (numbers: srd / ncnn time)", fontsize=10)
        ax.set_xticks(x, [row.label for row in rows], rotation=60, ha="right", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("seconds (log scale; lower is faster)")
    axes[0].legend()
    fig.suptitle(f"srd vs ncnn, same model files and tiles; {machine}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def quality_speed_chart(
    rows: list[SpeedRow], psnr: dict[tuple[str, int], float], machine: str, out: Path
) -> list[str]:
    """Set14 PSNR against srd's whole-image output Mpx/s (its largest size measured on a quiet machine per
    model and scale, a loaded one only where there is no other); returns the models left out for want of
    a Set14 figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    largest: dict[tuple[str, int], SpeedRow] = {}
    for row in rows:
        key = (row.model, row.scale)
        best = largest.get(key)
        if best is None or (not row.loaded, row.pixels) > (not best.loaded, best.pixels):
            largest[key] = row
    fig, ax = plt.subplots(figsize=(7.5, 5))
    colours = {2: "#1f77b4", 3: "#2ca02c", 4: "#d62728"}
    missing = []
    plotted = set()
    for (model, scale), row in sorted(largest.items()):
        if (model, scale) not in psnr:
            missing.append(f"{model} {scale}x")
            continue
        plotted.add(scale)
        ax.scatter(row.output_mpx_per_s, psnr[(model, scale)], color=colours.get(scale, "black"), s=36)
        ax.annotate(f" {model} {scale}x", (row.output_mpx_per_s, psnr[(model, scale)]), fontsize=8)
    for scale, colour in colours.items():
        if ("bicubic", scale) in psnr and scale in plotted:
            ax.axhline(psnr[("bicubic", scale)], color=colour, ls="--", lw=0.8, label=f"bicubic {scale}x")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel(f"srd output Mpx/s, whole image (log scale); {machine.split(',', maxsplit=1)[0]}")
    ax.set_ylabel("Set14 PSNR, Y, dB (SRCNN protocol)")
    ax.set_title(
        "Quality vs speed (GAN-trained models are not PSNR-optimised:\nhigher is not always better-looking)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--results", type=Path, help="a bench/results/ CSV (default: the newest)")
    source.add_argument("--speed", type=Path, help="speed.py output instead")
    parser.add_argument("--quality", type=Path, help="quality.py output (default: docs/performance.md)")
    parser.add_argument("--machine", help="what the figures were measured on (default: the CSV's)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "perf")
    args = parser.parse_args(argv)
    if args.speed:
        rows, machine = parse_speed(args.speed.read_text()), f"{cpu_name()}, float32"
    else:
        rows, machine = read_results(args.results or newest_results())
    quality_text = (args.quality or PERFORMANCE_PAGE).read_text(encoding="utf-8")
    psnr = parse_quality(quality_text)
    if not rows:
        raise SystemExit("no speed rows found")
    machine = args.machine or machine
    args.out.mkdir(parents=True, exist_ok=True)
    speed_chart(rows, machine, args.out / "speed.png")
    missing = quality_speed_chart(rows, psnr, machine, args.out / "quality-speed.png")
    print(f"{len(rows)} speed rows, {len(psnr)} PSNR figures; wrote {args.out}/speed.png, quality-speed.png")
    if missing:
        print(f"left out of the scatter (no Set14 PSNR): {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
