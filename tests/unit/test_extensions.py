"""srd's compiled extensions: a missing one is said once, with why, not found later in a profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from srd import extensions


@pytest.mark.parametrize(
    ("checkout", "fix"), [(True, r"source tree.*build_ext --inplace"), (False, r"without a C\+\+17 compiler")]
)
def test_a_missing_extension_warns_once_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkout: bool, fix: str
) -> None:
    """load_extension of an extension that is not built returns None with one RuntimeWarning per process
    naming it and the fix: in a source checkout (setup.py beside srd/), build in place or run elsewhere;
    in an installed srd, reinstall with a compiler."""
    (tmp_path / "srd").mkdir()
    if checkout:
        (tmp_path / "setup.py").write_text("")
    monkeypatch.setattr(extensions, "_PACKAGE", tmp_path / "srd")
    monkeypatch.setattr(extensions, "_warned", set())
    with pytest.warns(RuntimeWarning, match=rf"srd\._nowhere is missing.*{fix}"):
        assert extensions.load_extension("_nowhere") is None
    assert extensions.load_extension("_nowhere_either") is None  # said once: no second warning (errors here)


def test_the_built_extensions_load_without_a_warning() -> None:
    """The installed srd has its three extensions (CI builds them; pytest turns warnings into errors)."""
    for name in ("_winograd", "_pngfilter", "_quantize"):
        assert extensions.load_extension(name) is not None
