"""docs/: the configuration reference is what the settings schema renders, every relative link in the
README and docs/ points at a file that exists, and bench/charts.py reads the benchmark tables: the
results files in bench/results/, which the README's and docs/performance.md's tables print."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from srd.settings_reference import example_comments, render

REPO = Path(__file__).resolve().parents[2]
_LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def test_configuration_reference_matches_the_schema() -> None:
    """docs/configuration.md is exactly what `python -m srd.settings_reference` renders now."""
    rendered = render((REPO / "config.example.yaml").read_text(encoding="utf-8"))
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == rendered, "regenerate: python -m srd.settings_reference > docs/configuration.md"


def test_a_key_without_a_comment_in_the_example_is_refused() -> None:
    """Rendering names a schema key that config.example.yaml does not explain."""
    text = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    without = re.sub(r"\n  # JAX device[^\n]*\n", "\n", text)
    assert example_comments(without)["engine.device"] == ""
    with pytest.raises(ValueError, match=r"no comment above 'engine\.device'"):
        render(without)


def test_every_relative_link_resolves() -> None:
    """Each relative Markdown link in README.md and docs/*.md names a file or folder that exists."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for match in _LINK.finditer(page.read_text(encoding="utf-8")):
            target = match["target"]
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []
    assert len(pages) >= 8


def _charts() -> ModuleType:
    """bench/charts.py as a module (bench/ is scripts, not a package); its parsers need no matplotlib."""
    if "bench_charts" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_charts", REPO / "bench" / "charts.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_charts"] = module  # dataclasses look their module up while being made
        spec.loader.exec_module(module)
    return sys.modules["bench_charts"]


def test_charts_read_speed_py_output_and_the_published_tables_alike() -> None:
    """bench/charts.py reads a speed.py report line and the Markdown row made from it to the same figures."""
    charts = _charts()
    line = (
        "cunet 2x                     512    1.355    1.087   0.80     1     1.721    1.502   0.87     1"
        "   photo, load 0.4"
    )
    row = "| cunet 2x | 512 | 1.355 / 1.087 (0.80) | 1.721 / 1.502 (0.87) | 1 |"
    assert charts.parse_speed(line) == charts.parse_speed(row) != []


def test_every_published_speed_table_is_a_results_file() -> None:
    """Each bench/results/ CSV reads with its machine and date, every speed row that docs/performance.md
    prints is in one of them, and the README's table is exactly the newest round."""
    charts = _charts()
    rounds = sorted((REPO / "bench" / "results").glob("*.csv"))
    assert len(rounds) >= 2
    measured = set()
    for path in rounds:
        rows, machine = charts.read_results(path)
        assert rows != [] and path.name[:10] in machine, path.name
        measured |= set(rows)
    page = charts.parse_speed((REPO / "docs" / "performance.md").read_text(encoding="utf-8"))
    assert page != [] and set(page) <= measured
    newest, _ = charts.read_results(charts.newest_results())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert charts.parse_speed(charts.section(readme, "Performance")) == newest
    assert {r.model for r in newest} >= {"upconv7-art", "cunet", "realcugan-se"}


def test_charts_read_quality_py_output_and_the_published_tables_alike() -> None:
    """Set14 srd PSNR comes from quality.py's columns and from both of docs/performance.md's table layouts,
    and the page's own tables give the figures the quality chart plots."""
    charts = _charts()
    report = "\n".join(
        [
            "PSNR (dB) at 4x, Y channel, 4 px shaved, mean per set; data: ../shared/data",
            "bicubic                         set5     set14",
            "  SRCNN protocol               28.42     26.00",
            "model (noise -1)               set5 srd    set5 ncnn   set14 srd   set14 ncnn   gap, seconds",
            "  realcugan-se 4x                 28.72        28.72        26.82        26.82   seconds",
        ]
    )
    table = "\n".join(
        [
            "| model (noise -1) | Set5 | Set14 |",
            "|---|---|---|",
            "| realcugan-se 2x / 3x / 4x | 32.12 / 30.11 / 28.72 | 29.88 / 27.93 / 26.82 |",
            "| bicubic 2x / 3x / 4x | 33.66 / 30.39 / 28.42 | 30.23 / 27.54 / 26.00 |",
        ]
    )
    from_report, from_table = charts.parse_quality(report), charts.parse_quality(table)
    for key in (("realcugan-se", 4), ("bicubic", 4)):
        assert from_report[key] == from_table[key]
    assert from_table[("realcugan-se", 2)] == 29.88
    published = charts.parse_quality((REPO / "docs" / "performance.md").read_text(encoding="utf-8"))
    assert published[("cunet", 2)] == 32.94 and published[("realcugan-se", 4)] == 26.82
