"""/metrics: the status document rendered in Prometheus' text format, and node_exporter's textfile.

Names follow Prometheus' conventions: the `srd_` prefix, base units (seconds, bytes), `_total` on
counters; labels come from fixed sets only (srd/status/measures.py), never from file names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from srd.status.measures import FAILURE_REASONS, JOB_OUTCOMES, WORKER_LOSS_REASONS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUEUE_STATES = ("waiting", "settling", "in_flight")


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, object]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _number(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    try:
        return repr(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "0"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: object, labels: Mapping[str, object] | None = None) -> None:
        self.lines.append(f"{name}{_labels(labels or {})} {_number(value)}")

    def metric(self, name: str, kind: str, help_text: str, value: object) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)

    def labelled(
        self, name: str, kind: str, help_text: str, label: str, values: Mapping[str, Any], keys: Iterable[str]
    ) -> None:
        self.family(name, kind, help_text)
        for key in dict.fromkeys([*keys, *values]):  # the fixed set first, then anything newer
            self.sample(name, values.get(key, 0), {label: key})

    def histogram(self, name: str, help_text: str, document: Mapping[str, Any]) -> None:
        self.family(name, "histogram", help_text)
        buckets = document.get("buckets") or {"+Inf": 0}
        for bound, count in buckets.items():
            self.sample(f"{name}_bucket", count, {"le": bound})
        self.sample(f"{name}_sum", document.get("sum", 0))
        self.sample(f"{name}_count", document.get("count", 0))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def render_metrics(document: Mapping[str, Any], *, alive: bool) -> str:
    """Prometheus text for a status document; `alive` is `srd status`'s liveness test of the daemon."""
    out = _Writer()
    measures = _mapping(document.get("metrics"))
    queue = _mapping(document.get("queue"))
    in_flight = document.get("in_flight")
    out.family("srd_build_info", "gauge", "srd's version, and the model and device its worker runs.")
    info = {key: document.get(key) or "" for key in ("version", "model", "device")}
    out.sample("srd_build_info", 1, info)
    out.metric("srd_up", "gauge", "1 while the daemon is alive (its status file is fresh).", alive)
    ready = alive and bool(document.get("ready"))
    out.metric("srd_ready", "gauge", "1 once the daemon has told systemd READY=1 and runs.", ready)
    out.metric(
        "srd_start_time_seconds",
        "gauge",
        "When the daemon started (Unix time).",
        document.get("started_at", 0),
    )
    out.metric(
        "srd_status_updated_timestamp_seconds",
        "gauge",
        "When the daemon last rewrote its status file (Unix time).",
        document.get("updated_at", 0),
    )
    depths = {
        "waiting": queue.get("waiting", 0),
        "settling": queue.get("settling", 0),
        "in_flight": len(in_flight) if isinstance(in_flight, list) else 0,
    }
    out.labelled("srd_queue_jobs", "gauge", "Jobs in the queue, by state.", "state", depths, QUEUE_STATES)
    out.labelled(
        "srd_jobs_total",
        "counter",
        "Jobs ended or retried, by outcome.",
        "outcome",
        _mapping(measures.get("jobs")),
        JOB_OUTCOMES,
    )
    out.labelled(
        "srd_job_failures_total",
        "counter",
        "Jobs moved to errors, by reason.",
        "reason",
        _mapping(measures.get("failures")),
        FAILURE_REASONS,
    )
    out.labelled(
        "srd_worker_restarts_total",
        "counter",
        "Workers lost and restarted, by how they were lost.",
        "reason",
        _mapping(measures.get("worker_restarts")),
        WORKER_LOSS_REASONS,
    )
    out.histogram(
        "srd_job_duration_seconds",
        "Worker time of each published job: decode, upscale, encode, write.",
        _mapping(measures.get("job_duration_seconds")),
    )
    out.histogram(
        "srd_job_queue_wait_seconds",
        "From first seen in the inbox (settling included) to handed to a worker.",
        _mapping(measures.get("queue_wait_seconds")),
    )
    for key, help_text in (
        ("input_pixels", "Pixels of the published jobs' inputs."),
        ("output_pixels", "Pixels of the published outputs."),
        ("input_bytes", "Bytes of the published jobs' input files."),
        ("output_bytes", "Bytes of the published output files."),
    ):
        out.metric(f"srd_{key}_total", "counter", help_text, measures.get(key, 0))
    out.metric(
        "srd_last_success_timestamp_seconds",
        "gauge",
        "When a job last succeeded (Unix time; 0 before the first).",
        measures.get("last_success") or 0,
    )
    return "\n".join(out.lines) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Replace node_exporter's textfile atomically: it must never read a half-written file.

    The temporary name does not end in .prom, so the collector ignores it.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
        raise
