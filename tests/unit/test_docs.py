"""docs/: the configuration reference is what the settings schema renders, and every relative link in the
README and docs/ points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

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
