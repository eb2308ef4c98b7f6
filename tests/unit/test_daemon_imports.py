"""The daemon's side never imports JAX: only the spawned worker builds an engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Every module of these packages is imported; the worker's engine is imported lazily, inside the process.
JAX_FREE_PACKAGES = ("srd.daemon", "srd.status", "srd.jobs", "srd.workers")

_PROBE = """
import importlib, pkgutil, sys
names = []
for package_name in sys.argv[1:]:
    package = importlib.import_module(package_name)
    names.append(package_name)
    for module in pkgutil.walk_packages(package.__path__, package_name + "."):
        importlib.import_module(module.name)
        names.append(module.name)
print(",".join(names))
leaked = sorted(name for name in sys.modules if name == "jax" or name.startswith(("jax.", "jaxlib")))
print(",".join(leaked))
"""


def test_no_daemon_status_jobs_or_workers_module_imports_jax() -> None:
    """A fresh interpreter that imports every srd.daemon/status/jobs/workers module has no jax loaded."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *JAX_FREE_PACKAGES],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    imported, leaked = result.stdout.splitlines()
    assert {"srd.daemon.service", "srd.daemon.scheduler", "srd.workers.process"} <= set(imported.split(","))
    assert leaked == "", f"JAX imported by the daemon's side: {leaked}"


def test_models_help_and_status_do_not_import_jax(tmp_path: Path) -> None:
    """`srd models`, `srd --help`, `srd status` and check-config of a schema problem never import JAX."""
    config = tmp_path / "srd.yaml"
    config.write_text("inbox: in\noutbox: out\nerrors: e\nwork: w\narchive: delete\nmodel: {noise: 9}\n")
    probe = (
        "import sys; from srd.cli import main; rc = main(sys.argv[1:]);"
        " print('JAX' if 'jax' in sys.modules else 'no JAX', file=sys.stderr)"
    )
    for argv in (["models"], ["--help"], ["status", "--config", str(config)], ["check-config", str(config)]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.stderr.strip().endswith("no JAX"), (argv, result.stderr)


def test_models_and_help_do_not_import_numpy_or_the_codecs() -> None:
    """The parser needs the format table only: `srd models` and `srd --help` load neither numpy nor
    srd's decoders and encoders (start-up, issue 32)."""
    probe = (
        "import sys; from srd.cli import main; rc = main(sys.argv[1:]);"
        " names = ('numpy', 'srd.imaging.decode', 'srd.imaging.encode');"
        " heavy = sorted(m for m in names if m in sys.modules);"
        " print(','.join(heavy) or 'light', file=sys.stderr)"
    )
    for argv in (["models"], ["--help"], ["upscale", "--help"]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.stderr.strip().endswith("light"), (argv, result.stderr)


def test_a_one_shot_upscale_imports_no_logging_stack_or_community_architectures() -> None:
    """`srd upscale` of a built-in model needs JAX but neither structlog (the daemon's logging) nor the
    community architectures (they load when a model file asks): start-up, issue 32."""
    probe = (
        "import sys, srd.cli.upscale;"
        " names = ('structlog', 'srd.models.community', 'srd.status.stats', 'av');"
        " print(','.join(sorted(m for m in names if m in sys.modules)) or 'light')"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "light"
