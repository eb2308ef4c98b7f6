"""The measures behind /metrics: a cumulative histogram, and the fixed set of failure reasons.

They live in the daemon's Stats and travel to `srd web` inside status.json, so both are plain data that
round-trips through JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Jobs run from a quarter of a second (a small image, warm) to minutes (a large one through an RRDB net).
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Waiting includes settle_seconds (2 s by default) and, under a flood, the queue ahead.
WAIT_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# Failure reasons as metric labels: a fixed set, never a file name or a message.
FAILURE_REASONS = (
    "unsupported_format",
    "corrupt",
    "too_large",
    "not_regular_file",
    "attempts_exhausted",
    "input",
    "other",
)
_REASON_OF_ERROR = {
    "UnsupportedFormatError": "unsupported_format",
    "CorruptImageError": "corrupt",
    "ImageTooLargeError": "too_large",
    "NotARegularFileError": "not_regular_file",
    "AttemptsExhausted": "attempts_exhausted",
    "InputError": "input",
}
JOB_OUTCOMES = ("done", "failed", "retried")
# How the supervisor lost a worker (srd.workers.supervisor.LossReason's values), each followed by a restart.
WORKER_LOSS_REASONS = ("crashed", "timeout", "hung", "start_timeout")


def failure_reason(error_type: str) -> str:
    """The metric label for a failed job's error type (the class name its report carries)."""
    return _REASON_OF_ERROR.get(error_type, "other")


@dataclass
class Histogram:
    """Cumulative-at-render histogram: one count per bucket (the observations <= its bound, not below it),
    their sum and their number."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        for index, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[index] += 1
                break
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs as Prometheus exposes them, +Inf last."""
        pairs: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            pairs.append((_format_bound(bound), running))
        pairs.append(("+Inf", self.count))
        return pairs

    def document(self) -> dict[str, object]:
        return {"buckets": dict(self.cumulative()), "sum": round(self.total, 6), "count": self.count}


def _format_bound(bound: float) -> str:
    return repr(float(bound))


def seconds_left(elapsed: float, done: float, total: float) -> float | None:
    """The time the rest of a job takes at the rate of its units done so far; None before the first."""
    return elapsed / done * (total - done) if done > 0 else None
