"""Tests for srd.publish: no-replace publishing, numbered names, moves that never follow symlinks."""

from __future__ import annotations

import json
import os
from pathlib import Path

from srd.jobs.fsops import (
    fit_name,
    hidden_temp_name,
    is_published_temp,
    link_no_replace,
    move_no_replace,
    numbered_name,
    publish_output,
    write_file_synced,
    write_json_no_replace,
)


def test_numbered_names() -> None:
    """Numbers go before the last suffix; names without one get a plain suffix."""
    assert numbered_name("a.png", 0) == "a.png"
    assert numbered_name("a.png", 2) == "a-2.png"
    assert numbered_name("a.b.png", 1) == "a.b-1.png"
    assert numbered_name("README", 1) == "README-1"


def test_publish_never_replaces_an_existing_file(tmp_path: Path) -> None:
    """A taken name gets a numbered suffix; the existing file keeps its bytes; the temp name is gone."""
    (tmp_path / "a.png").write_bytes(b"old")
    (tmp_path / "a-1.png").write_bytes(b"older")
    temp = tmp_path / ".a.png.tmp"
    write_file_synced(temp, b"new")
    recorded: list[Path] = []
    final = publish_output(temp, tmp_path, "a.png", on_linked=recorded.append)
    assert final == tmp_path / "a-2.png"
    assert recorded == [final]
    assert final.read_bytes() == b"new"
    assert (tmp_path / "a.png").read_bytes() == b"old"
    assert not temp.exists()


def test_published_temp_is_recognised_by_its_link_count(tmp_path: Path) -> None:
    """A temp file that already has its final name (crash before unlink) has two links."""
    temp = tmp_path / ".x.tmp"
    write_file_synced(temp, b"x")
    assert not is_published_temp(temp)
    link_no_replace(temp, tmp_path, "x.png")
    assert is_published_temp(temp)
    assert not is_published_temp(tmp_path / "missing")


def test_move_does_not_follow_symlinks(tmp_path: Path) -> None:
    """Moving a symlink moves the link itself; its target is untouched."""
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"secret")
    link = tmp_path / "link.png"
    link.symlink_to(outside)
    moved = move_no_replace(link, tmp_path / "errors", "link.png")
    assert moved.is_symlink()
    assert not link.exists() and not link.is_symlink()
    assert outside.read_bytes() == b"secret"


def test_move_into_a_taken_name_keeps_both(tmp_path: Path) -> None:
    """A move onto an existing name picks a numbered one instead."""
    target = tmp_path / "archive"
    target.mkdir()
    (target / "a.png").write_bytes(b"first")
    source = tmp_path / "a.png"
    source.write_bytes(b"second")
    moved = move_no_replace(source, target, "a.png")
    assert moved.name == "a-1.png"
    assert (target / "a.png").read_bytes() == b"first"


def test_json_reports_are_written_without_replacing(tmp_path: Path) -> None:
    """write_json_no_replace leaves earlier reports alone and no temporary file behind."""
    first = write_json_no_replace(tmp_path, "a.png.error.json", {"n": 1})
    second = write_json_no_replace(tmp_path, "a.png.error.json", {"n": 2})
    assert first != second
    assert json.loads(first.read_text()) == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png.error-1.json", "a.png.error.json"]


def test_names_derived_from_a_255_byte_name_still_fit() -> None:
    """Numbered variants, reports and temporary names of a 255-byte (multi-byte) name fit NAME_MAX."""
    long_name = "é" * 125 + "x.png"  # 255 bytes in UTF-8
    assert len(os.fsencode(long_name)) == 255
    for derived in (
        numbered_name(long_name, 0),
        numbered_name(long_name, 12),
        numbered_name(long_name + ".error.json", 3),
        hidden_temp_name(long_name, ".srd-0123456789abcdef-01234567.tmp"),
    ):
        assert len(os.fsencode(derived)) <= 255, derived
    assert numbered_name(long_name, 12).endswith("-12.png")
    assert fit_name("short.png") == "short.png"
