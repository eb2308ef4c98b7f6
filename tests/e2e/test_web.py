"""`srd web` over its UNIX socket and a loopback port, in front of a real daemon that has run real jobs."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from support.daemon import DaemonProcess, make_png, queue_drained, status, wait_for, write_config
from support.web import Response, WebProcess, request

pytestmark = pytest.mark.slow

HOSTILE = "<img src=x onerror=alert(1)>.png"
GOOD = {"a.png": (32, 24), "sub/b.png": (40, 40)}


@dataclass
class Served:
    root: Path
    daemon: DaemonProcess
    web: WebProcess

    def get(self, path: str, transport: str = "unix", **kwargs: Any) -> Response:
        connection = self.web.unix() if transport == "unix" else self.web.tcp()
        return request(connection, path, **kwargs)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("web")
    cache = tmp_path_factory.getbasetemp() / "jax-cache"
    config = write_config(
        root,
        cache,
        watch={"settle_seconds": 0.3},
        metrics_file="metrics/srd.prom",
        web={"listen": "127.0.0.1:0", "actions": True, "thumbnail_size": 32},
    )
    (root / "metrics").mkdir()
    daemon = DaemonProcess(config).wait_ready()
    web = WebProcess(config).wait_listening()
    for seed, (name, size) in enumerate(GOOD.items()):
        make_png(root / "inbox" / name, size, seed=seed)
    (root / "inbox" / HOSTILE).write_text("not an image")
    wait_for(lambda: queue_drained(root, 3), 90, "three jobs to finish")
    wait_for(lambda: len(daemon.job_lines()) == 3, 60, "three job lines")
    wait_for(lambda: status(root).get("done") == 2 and status(root).get("failed") == 1, 30, "status.json")
    yield Served(root, daemon, web)
    web.stop()
    daemon.stop()
    DaemonProcess.reap_all()


def _csrf(served: Served) -> str:
    match = re.search(rb'name="csrf-token" content="([^"]+)"', served.get("/").body)
    assert match is not None
    return match.group(1).decode()


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_every_endpoint_answers(served: Served, transport: str) -> None:
    """/, its script and style, /api/status, /api/jobs, /metrics, /healthz and /readyz all answer 200."""
    host = "localhost" if transport == "unix" else f"127.0.0.1:{served.web.port}"
    expected = {
        "/": "text/html",
        "/static/app.js": "text/javascript",
        "/static/style.css": "text/css",
        "/api/status": "application/json",
        "/api/jobs": "application/json",
        "/metrics": "text/plain; version=0.0.4",
        "/healthz": "application/json",
        "/readyz": "application/json",
    }
    for path, content_type in expected.items():
        response = served.get(path, transport, host=host)
        assert response.status == 200, (path, response.body)
        assert response.headers["content-type"].startswith(content_type), path
    status = served.get("/api/status", transport, host=host).json()
    assert status["alive"] is True and status["ready"] is True and status["state"] == "running"
    assert (status["done"], status["failed"]) == (2, 1)
    assert status["model"].startswith("upconv7-art")
    assert status["actions"] == ("on" if transport == "unix" else "off")  # TCP without a token: no actions
    assert served.get("/healthz", transport, host=host).json() == {"alive": True, "state": "running"}


def test_jobs_list_the_finished_jobs_and_the_error_with_its_reason(served: Served) -> None:
    """/api/jobs lists every job that ended, newest first, and the error report's reason from its sidecar."""
    jobs = served.get("/api/jobs").json()
    assert sorted(job["input"] for job in jobs["recent"]) == sorted([*GOOD, HOSTILE])
    done = {job["input"]: job for job in jobs["recent"] if job["outcome"] == "done"}
    for name, (width, height) in GOOD.items():
        assert done[name]["input_size"] == [width, height]
        assert done[name]["output_size"] == [2 * width, 2 * height]
        assert done[name]["output"] == name  # relative to the outbox
    [error] = jobs["errors"]
    sidecar = json.loads((served.root / "errors" / f"{HOSTILE}.error.json").read_text())
    assert error["input"] == HOSTILE
    assert error["reason"] == sidecar["reason"] and error["error_type"] == "UnsupportedFormatError"
    assert error["job_id"] == sidecar["job_id"]


def test_thumbnails_are_served_by_job_id(served: Served) -> None:
    """Each done job's before/after thumbnails are WebP files fitted in thumbnail_size."""
    jobs = served.get("/api/jobs").json()["recent"]
    for job in (job for job in jobs if job["outcome"] == "done"):
        width, height = job["input_size"]
        for side, scale in (("before", 1), ("after", 2)):
            url = job["thumbnails"][side]
            assert url == f"/thumbs/{job['job_id']}/{side}.webp"
            response = served.get(url)
            assert response.status == 200 and response.headers["content-type"] == "image/webp"
            with Image.open(io.BytesIO(response.body)) as image:
                fit = min(1.0, 32 / max(width * scale, height * scale))
                assert image.size == (round(width * scale * fit), round(height * scale * fit)), (side, job)
    failed = next(job for job in jobs if job["outcome"] == "failed")
    assert failed["thumbnails"] == {}
    assert served.get(f"/thumbs/{failed['job_id']}/before.webp").status == 404


def test_every_response_carries_the_security_headers(served: Served) -> None:
    """The CSP allows nothing from elsewhere, with nosniff, on pages, JSON, scripts, 404s and refusals."""
    paths = ["/", "/api/status", "/metrics", "/nothing-here", "/../x", "/static/app.js"]
    for path in paths:
        for transport in ("unix", "tcp"):
            host = "localhost" if transport == "unix" else "127.0.0.1"
            headers = served.get(path, transport, host=host).headers
            csp = headers["content-security-policy"]
            assert csp.startswith("default-src 'none';") and "frame-ancestors 'none'" in csp, path
            assert "script-src 'self'" in csp and "img-src 'self'" in csp and "style-src 'self'" in csp
            assert headers["x-content-type-options"] == "nosniff", path
    assert served.get("/api/status").headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "raw", [b"GARBAGE\r\n\r\n", b"GET /api/status\r\n\r\n", b"PUT / HTTP/1.1\r\nHost: localhost\r\n\r\n"]
)
def test_malformed_requests_get_a_status_line_and_the_headers(served: Served, raw: bytes) -> None:
    """A garbled request line, HTTP/0.9 or an unknown method is answered 4xx/5xx with the same headers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(served.web.socket_path))
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert re.fullmatch(rb"HTTP/1\.1 (400|421|501) .*", status_line), answer
    assert b"X-Content-Type-Options: nosniff" in rest and b"default-src 'none'" in rest


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "127.0.0.2", "localhost.evil.example", ""]
)
def test_a_host_outside_the_allow_list_is_refused(served: Served, host: str) -> None:
    """DNS rebinding: a Host that is not localhost (or listed in web.allowed_hosts) gets 421 and no data."""
    for transport in ("unix", "tcp"):
        response = served.get("/api/status", transport, host=host)
        assert response.status == 421
        assert b"done" not in response.body
    assert served.get("/api/status", "tcp", host=None).status == 421  # no Host at all


def test_a_hostile_file_name_is_escaped(served: Served) -> None:
    """The inbox writer's `<img ...>` name reaches the page only as JSON text, with < and > escaped."""
    body = served.get("/api/jobs").body
    assert b"<img" not in body and b"\\u003cimg src=x onerror=alert(1)\\u003e.png" in body
    assert HOSTILE in [job["input"] for job in json.loads(body)["recent"]]
    assert b"<img" not in served.get("/api/status").body
    assert b"onerror" not in served.get("/").body  # the page itself is static: names arrive by fetch


@pytest.mark.parametrize(
    "path",
    [
        "/../srd.yaml",
        "/static/../../srd.yaml",
        "/static/%2e%2e/%2e%2e/srd.yaml",
        "/%2e%2e/work/status.json",
        "/thumbs/..%2f..%2fsrd.yaml/before.webp",
        "//etc/passwd",
        "/etc/passwd",
        "/static/../views.py",
        "http://localhost/etc/passwd",
        "/thumbs/0-00000000/before.webp",
        "/work/.srd-history/history.json",
        "/static/index.html%00.js",
    ],
)
def test_a_path_that_tries_to_escape_is_refused(served: Served, path: str) -> None:
    """Request paths never reach the file system: escapes (plain, encoded, absolute) get 4xx and no file."""
    secret = (served.root / "srd.yaml").read_bytes()[:40]
    response = served.get(path)
    assert 400 <= response.status < 500, (path, response.status)
    assert secret not in response.body and b"root:" not in response.body


def test_metrics_count_the_jobs_just_run(served: Served) -> None:
    """/metrics, parsed by prometheus_client, counts what the daemon's job lines report."""
    lines = served.daemon.job_lines()
    ok = [line for line in lines if line["outcome"] == "ok"]
    samples = _samples(served.get("/metrics").body.decode())
    assert samples[("srd_jobs_total", (("outcome", "done"),))] == 2
    assert samples[("srd_jobs_total", (("outcome", "failed"),))] == 1
    assert samples[("srd_job_failures_total", (("reason", "unsupported_format"),))] == 1
    assert samples[("srd_job_failures_total", (("reason", "corrupt"),))] == 0
    assert samples[("srd_job_duration_seconds_count", ())] == 2
    assert samples[("srd_job_duration_seconds_sum", ())] == pytest.approx(
        sum(j["ms"] for j in ok) / 1000, abs=2e-3
    )
    assert samples[("srd_job_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("srd_job_queue_wait_seconds_count", ())] == 3
    assert samples[("srd_input_pixels_total", ())] == sum(w * h for w, h in GOOD.values())
    assert samples[("srd_output_pixels_total", ())] == sum(4 * w * h for w, h in GOOD.values())
    outputs = [p for p in (served.root / "outbox").rglob("*.png")]
    assert samples[("srd_output_bytes_total", ())] == sum(p.stat().st_size for p in outputs)
    assert samples[("srd_input_bytes_total", ())] == sum(j["input_bytes"] for j in ok)
    assert samples[("srd_queue_jobs", (("state", "waiting"),))] == 0
    assert samples[("srd_worker_restarts_total", (("reason", "crashed"),))] == 0
    assert samples[("srd_up", ())] == 1 and samples[("srd_ready", ())] == 1
    assert samples[("srd_last_success_timestamp_seconds", ())] > 0
    [info] = [labels for name, labels in samples if name == "srd_build_info"]
    assert dict(info)["model"].startswith("upconv7-art")


def test_the_textfile_matches_metrics(served: Served) -> None:
    """The daemon's node_exporter textfile carries the same counters as /metrics, and no temporary is left."""
    prom = served.root / "metrics" / "srd.prom"
    wait_for(prom.exists, 10, "the textfile")
    from_file = _samples(prom.read_text())
    from_web = _samples(served.get("/metrics").body.decode())
    for key in [k for k in from_web if k[0].endswith(("_total", "_count"))]:
        assert from_file[key] == from_web[key], key
    assert [p.name for p in prom.parent.iterdir()] == ["srd.prom"]


def test_actions_need_the_csrf_token_and_the_socket(served: Served) -> None:
    """A retry without the page's CSRF token, from another origin, or over TCP without a token is refused."""
    [error] = served.get("/api/jobs").json()["errors"]
    path = f"/api/errors/{error['job_id']}/retry"
    csrf = _csrf(served)
    refusals = [
        ("unix", {}),
        ("unix", {"X-CSRF-Token": "wrong"}),
        ("unix", {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}),
        ("unix", {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}),
        ("tcp", {"X-CSRF-Token": csrf}),
    ]
    for transport, headers in refusals:
        host = "localhost" if transport == "unix" else "127.0.0.1"
        response = served.get(path, transport, method="POST", headers=headers, host=host)
        assert response.status == 403, (transport, headers, response.body)
    assert (served.root / "errors" / HOSTILE).exists()
    assert (
        served.get("/api/errors/0-00000000/retry", method="POST", headers={"X-CSRF-Token": csrf}).status
        == 404
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
