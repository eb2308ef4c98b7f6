"""The parts behind `srd web`: Host parsing, metrics rendering, the textfile, thumbnails, the history,
the web settings, liveness without a daemon, socket activation and the systemd units."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from support.web import UnixHTTPConnection, WebProcess, request

from srd.errors import ConfigError
from srd.imaging.raster import RasterImage
from srd.settings import parse_config
from srd.status.history import FinishedJob, JobHistory, thumbnail_path, thumbnails_dir
from srd.status.measures import Histogram, failure_reason
from srd.status.metrics import render_metrics, write_textfile
from srd.status.stats import Stats
from srd.status.thumbnails import thumbnail_image
from srd.status.web import host_name

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {"inbox": "in", "outbox": "out", "errors": "err", "work": "work", "archive": "delete"}


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8765", "localhost"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]:8765", "::1"),
        ("[::1]", "::1"),
        ("[::1]x", None),
        ("evil.example:80:80", None),
        ("user@localhost", None),
        ("localhost/x", None),
        ("", None),
        (None, None),
    ],
)
def test_host_name_strips_the_port_and_rejects_odd_headers(header: str | None, host: str | None) -> None:
    """Host headers parse to a bare lower-case name; anything unusual is None (and refused)."""
    assert host_name(header) == host


def test_histogram_is_cumulative_with_an_inf_bucket() -> None:
    """Observations land in the first bucket that holds them; the rendering is cumulative with +Inf."""
    histogram = Histogram((1.0, 10.0))
    for value in (0.5, 1.0, 3.0, 400.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("1.0", 2), ("10.0", 3), ("+Inf", 4)]
    assert histogram.total == pytest.approx(404.5)


def test_failure_reasons_are_a_fixed_set() -> None:
    """An error type maps to a fixed label; an unknown one (or a file name) becomes "other"."""
    assert failure_reason("ImageTooLargeError") == "too_large"
    assert failure_reason("<img src=x>.png") == "other"


def test_metrics_parse_and_escape_labels() -> None:
    """A fresh daemon's metrics parse with prometheus_client; a model name with quotes stays one label."""
    stats = Stats(model='odd "model"\nname', device="cpu:0")
    stats.job_started("1-00000000", time.time() - 2.0, first_attempt=True)
    stats.job_failed("a.png", "CorruptImageError", "a.png: truncated", "1-00000000")
    text = render_metrics({**stats.document(), "updated_at": time.time()}, alive=True)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    [info] = families["srd_build_info"].samples
    assert info.labels["model"] == 'odd "model"\nname'
    samples = {(s.name, tuple(s.labels.items())): s.value for f in families.values() for s in f.samples}
    assert samples[("srd_job_failures_total", (("reason", "corrupt"),))] == 1
    assert samples[("srd_jobs_total", (("outcome", "failed"),))] == 1
    assert samples[("srd_job_queue_wait_seconds_count", ())] == 1
    assert samples[("srd_job_queue_wait_seconds_bucket", (("le", "2.5"),))] == 1
    assert samples[("srd_ready", ())] == 0  # alive but READY=1 not sent yet


def test_textfile_is_replaced_atomically(tmp_path: Path) -> None:
    """The .prom file is replaced by a rename and no temporary file stays behind."""
    path = tmp_path / "srd.prom"
    path.write_text("old\n")
    inode = path.stat().st_ino
    write_textfile(path, "srd_up 1\n")
    assert path.read_text() == "srd_up 1\n" and path.stat().st_ino != inode
    assert [p.name for p in tmp_path.iterdir()] == ["srd.prom"]


def test_thumbnails_fit_and_never_enlarge() -> None:
    """Thumbnails fit the size (a big image subsampled first), small ones keep their size, alpha is kept."""
    big = RasterImage(np.random.default_rng(0).random((900, 1600, 3), dtype=np.float32))
    assert thumbnail_image(big, 320).size == (320, 180)
    gray = RasterImage(np.full((20, 30, 1), 0.5, np.float32), alpha=np.ones((20, 30), np.float32))
    thumb = thumbnail_image(gray, 320)
    assert thumb.size == (30, 20) and thumb.mode == "RGBA"


def test_thumbnails_show_the_image() -> None:
    """A thumbnail is the picture made small: a 1024 px gradient with a red square (box-reduced, then
    bicubic) matches Pillow's own Lanczos of the full image within a few levels; gray becomes RGB."""
    yy, xx = np.mgrid[0:1024, 0:960].astype(np.float32)
    pixels = np.stack([xx / 960, yy / 1024, np.full_like(xx, 0.25)], axis=2)
    pixels[200:500, 300:700] = (1.0, 0.0, 0.0)
    full = Image.fromarray(np.round(pixels * 255).astype(np.uint8), "RGB")
    full.thumbnail((320, 320), Image.Resampling.LANCZOS)
    thumb = thumbnail_image(RasterImage(pixels), 320)
    assert thumb.size == full.size == (300, 320)
    difference = np.abs(np.asarray(thumb, np.int16) - np.asarray(full, np.int16))
    assert np.median(difference) <= 1 and np.percentile(difference, 99) <= 24
    assert thumbnail_image(RasterImage(np.full((2, 6000, 1), 0.3, np.float32)), 320).size == (320, 1)
    assert thumbnail_image(RasterImage(np.full((5000, 3, 3), 0.3, np.float32)), 320).size == (1, 320)
    gray = thumbnail_image(RasterImage(pixels[:, :, :1].copy()), 100)
    assert gray.mode == "RGB" and np.array_equal(np.asarray(gray)[..., 0], np.asarray(gray)[..., 2])


def test_history_keeps_the_last_jobs_and_prunes_their_thumbnails(tmp_path: Path) -> None:
    """Past `keep` jobs the oldest entry goes with its thumbnails; a restart drops orphaned thumbnails."""
    history = JobHistory(tmp_path, keep=2)
    folder = thumbnails_dir(tmp_path)
    ids = [f"{n:x}-0000000{n}" for n in (1, 2, 3)]
    for job_id in ids:
        for side in ("before", "after"):
            thumbnail_path(folder, job_id, side).write_bytes(b"webp")
        history.record(FinishedJob(job_id, f"{job_id}.png", "done", time.time()))
    document = json.loads((tmp_path / ".srd-history" / "history.json").read_text())
    assert [job["job_id"] for job in document["jobs"]] == ids[1:]
    assert sorted(p.name.split(".")[0] for p in folder.iterdir()) == sorted(ids[1:] * 2)
    (folder / "ff-deadbeef.after.webp").write_bytes(b"a job that never finished")
    JobHistory(tmp_path, keep=2)
    assert not (folder / "ff-deadbeef.after.webp").exists()
    with pytest.raises(ValueError, match="not a thumbnail"):
        thumbnail_path(folder, "../../etc/passwd", "before")


def test_a_remote_listen_address_needs_allow_remote(tmp_path: Path) -> None:
    """web.listen off loopback is refused unless allow_remote says the admin put a proxy in front."""
    with pytest.raises(ConfigError, match="not a loopback address"):
        parse_config({**FOLDERS, "web": {"listen": "0.0.0.0:8765"}}, tmp_path)
    config = parse_config({**FOLDERS, "web": {"listen": "0.0.0.0:8765", "allow_remote": True}}, tmp_path)
    assert config.web.listen == "0.0.0.0:8765"
    with pytest.raises(ConfigError, match=r"At 'web\.listen': expected HOST:PORT"):
        parse_config({**FOLDERS, "web": {"listen": "8765"}}, tmp_path)


def _config(tmp_path: Path, **web: object) -> Path:
    path = tmp_path / "srd.yaml"
    path.write_text(yaml.safe_dump({**FOLDERS, "logging": {"format": "json"}, "web": web}))
    return path


def test_without_a_running_daemon_health_and_readiness_fail(tmp_path: Path) -> None:
    """No status file, or one whose daemon is gone, makes /healthz and /readyz 503; the page still loads."""
    config = _config(tmp_path)
    web = WebProcess(config).wait_listening()
    try:
        assert stat.S_IMODE(os.stat(web.socket_path).st_mode) == 0o660
        for path in ("/healthz", "/readyz"):
            assert request(web.unix(), path).status == 503
        assert request(web.unix(), "/").status == 200
        dead = {"state": "running", "ready": True, "pid": 2**22 + 1, "updated_at": time.time()}
        (tmp_path / "work" / "status.json").write_text(json.dumps(dead))
        assert request(web.unix(), "/healthz").json() == {"alive": False, "state": "running"}
        assert request(web.unix(), "/readyz").status == 503
        metrics = request(web.unix(), "/metrics").body.decode()
        assert "srd_up 0" in metrics and "srd_ready 0" in metrics
    finally:
        assert web.stop() == 0
    assert not web.socket_path.exists()  # the socket it created is removed


def test_a_socket_passed_by_systemd_is_served_and_left_alone(tmp_path: Path) -> None:
    """With LISTEN_FDS (srd-web.socket), srd web serves fd 3 and never removes systemd's socket file."""
    path = tmp_path / "passed.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    script = Path(sys.executable).parent / "srd"
    fd = listener.fileno()
    # The shell moves the socket to fd 3, as systemd passes it (no preexec_fn: that would fork a process
    # that may have imported JAX, which warns of a deadlock, an error under this suite's warning filter).
    move = "" if fd == 3 else f"exec 3<&{fd} {fd}<&-; "
    command = f'{move}LISTEN_PID=$$ LISTEN_FDS=1 exec "{script}" web --config "{_config(tmp_path)}"'
    process = subprocess.Popen(
        ["bash", "-c", command],
        pass_fds=(fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = request(UnixHTTPConnection(path, timeout=2), "/api/status")
                break
            except (ConnectionError, TimeoutError, OSError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.status == 200 and response.json()["state"] == "not running"
        assert not (tmp_path / "work" / "web.sock").exists()  # it opened no socket of its own
    finally:
        process.terminate()
        process.wait(20)
        listener.close()
    assert path.exists()


ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_web_units_verify_and_are_tightly_sandboxed(tmp_path: Path) -> None:
    """srd-web.socket and srd-web.service pass `systemd-analyze verify`; the service's exposure is <= 1.0."""
    assert ANALYZE is not None
    srd = Path(sys.executable).parent / "srd"
    for name in ("srd-web.socket", "srd-web.service"):
        text = (REPO / "systemd" / name).read_text().replace("/usr/local/bin/srd ", f"{srd} ")
        (tmp_path / name).write_text(text)
    units = [str(tmp_path / "srd-web.socket"), str(tmp_path / "srd-web.service")]
    verify = subprocess.run([ANALYZE, "verify", *units], capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", units[1]],
        capture_output=True,
        text=True,
        check=False,
    )
    if "unrecognized" in security.stderr:
        pytest.skip("this systemd-analyze has no offline security mode")
    exposure = float(security.stdout.rsplit("Overall exposure level for srd-web.service: ", 1)[1].split()[0])
    assert exposure <= 1.0, security.stdout


def _report(folder: Path, name: str, job_id: str, **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    document = {"file": name, "original_path": f"sub/{name}", "reason": "bad", "job_id": job_id, **fields}
    (folder / f"{name}.error.json").write_text(json.dumps(document))


def test_retry_over_the_socket_moves_the_file_back_once(tmp_path: Path) -> None:
    """A retry with the CSRF token puts errors/sub/x.png back as inbox/sub/x.png, once; a report naming a
    file outside its folder, or an inbox subfolder swapped for a symlink, is refused."""
    config = _config(tmp_path, actions=True)
    (tmp_path / "in").mkdir()  # the daemon's, made at its start
    errors = tmp_path / "err" / "sub"
    _report(errors, "x.png", "1-0000000a")
    (errors / "x.png").write_bytes(b"pixels")
    _report(errors, "y.png", "1-0000000b", file="../../srd.yaml")
    web = WebProcess(config).wait_listening()
    try:
        page = request(web.unix(), "/").body.decode()
        csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        headers = {"X-CSRF-Token": csrf}
        answer = request(web.unix(), "/api/errors/1-0000000a/retry", method="POST", headers=headers)
        assert (answer.status, answer.json()) == (200, {"retried": "sub/x.png"})
        assert (tmp_path / "in" / "sub" / "x.png").read_bytes() == b"pixels"
        assert not (errors / "x.png").exists() and not (errors / "x.png.error.json").exists()
        again = request(web.unix(), "/api/errors/1-0000000a/retry", method="POST", headers=headers)
        assert again.status == 404
        escape = request(web.unix(), "/api/errors/1-0000000b/retry", method="POST", headers=headers)
        assert escape.status == 409 and (tmp_path / "srd.yaml").exists()
        # An inbox writer swaps the subfolder for a symlink to a place they cannot write: refused.
        (tmp_path / "elsewhere").mkdir()
        shutil.rmtree(tmp_path / "in" / "sub")
        (tmp_path / "in" / "sub").symlink_to(tmp_path / "elsewhere")
        _report(errors, "z.png", "1-0000000c")
        (errors / "z.png").write_bytes(b"pixels")
        swapped = request(web.unix(), "/api/errors/1-0000000c/retry", method="POST", headers=headers)
        assert swapped.status == 409 and list((tmp_path / "elsewhere").iterdir()) == []
        assert (errors / "z.png").exists() and (errors / "z.png.error.json").exists()
    finally:
        web.stop()


def test_a_name_that_is_not_utf8_is_served(tmp_path: Path) -> None:
    """A history entry whose name holds undecodable bytes (lone surrogates) is served as JSON escapes."""
    name = os.fsdecode(b"bad-\xff\xfe.png")
    history = tmp_path / "work" / ".srd-history"
    history.mkdir(parents=True)
    entry = {"job_id": "1-0000000a", "input": name, "outcome": "failed", "finished_at": time.time()}
    (history / "history.json").write_text(json.dumps({"jobs": [entry]}))
    web = WebProcess(_config(tmp_path)).wait_listening()
    try:
        answer = request(web.unix(), "/api/jobs")
        assert answer.status == 200 and answer.body.isascii()
        assert answer.json()["recent"][0]["input"] == name
    finally:
        web.stop()
