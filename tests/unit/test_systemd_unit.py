"""systemd/srd.service and srd-worker.service pass `systemd-analyze verify`, offline exposure <= 2.0."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = [
    Path(__file__).resolve().parents[2] / "systemd" / name for name in ("srd.service", "srd-worker.service")
]
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)"
)


def installed_copy(tmp_path: Path, unit: Path) -> Path:
    """The unit with ExecStart naming this environment's srd, as if installed (verify checks it exists)."""
    srd = Path(sys.executable).parent / "srd"
    if not srd.exists():
        pytest.skip(f"no srd console script at {srd} to stand in for /usr/local/bin/srd")
    text = unit.read_text().replace("ExecStart=/usr/local/bin/srd ", f"ExecStart={srd} ")
    assert str(srd) in text, "ExecStart no longer names /usr/local/bin/srd; update this test"
    copy = tmp_path / unit.name
    copy.write_text(text)
    return copy


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_unit_verifies_cleanly(tmp_path: Path, unit: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning."""
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "verify", str(installed_copy(tmp_path, unit))], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_security_exposure_is_at_most_two(tmp_path: Path, unit: Path) -> None:
    """`systemd-analyze security --offline=yes` rates the unit's exposure at 2.0 or better."""
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(installed_copy(tmp_path, unit))],
        capture_output=True,
        text=True,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip(f"this systemd-analyze has no offline security mode: {result.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout
