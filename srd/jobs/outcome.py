"""Where a job ends: its output published and original archived, or its original in errors/ with a report."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from srd import __version__
from srd.imaging.formats import suffix_guess
from srd.jobs.fsops import (
    find_other_name,
    fit_name,
    fsync_dir,
    hidden_temp_name,
    is_published_temp,
    move_no_replace,
    publish_output,
    staging_dir,
    write_json_no_replace,
)
from srd.jobs.pages import PublishStep, commit_pages, discard_staging, publish_pages
from srd.jobs.record import Job
from srd.settings import Config


@dataclass(frozen=True)
class OutputPlan:
    """Where a job's output is written first (a hidden temporary name) and what it is published as."""

    directory: Path
    filename: str
    temp: Path

    @property
    def staging(self) -> Path:
        """Where a job of several outputs stages them (srd/jobs/pages.py)."""
        return staging_dir(self.temp)


def plan_output(job: Job, config: Config, suffix: str = "") -> OutputPlan:
    """The output's folder, name and temporary name. The temporary name is the same whatever `suffix`: the
    worker reports the suffix it wrote (output.format `same`, animations) and the name follows it."""
    stem = Path(job.rel_path).stem
    model = config.model
    name = config.output.name.format(stem=stem, scale=model.scale, noise=model.noise, model=model.name)
    planned = fit_name(name + suffix_guess(config.output.format, job.rel_path))
    filename = fit_name(name + suffix) if suffix else planned
    directory = config.outbox / job.rel_dir
    # Dotfile, so the output is invisible to anyone watching the outbox until it is complete.
    return OutputPlan(directory, filename, directory / hidden_temp_name(planned, f".srd-{job.job_id}.tmp"))


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _dispose_original(job: Job, config: Config) -> Path | None:
    """Archive the original (mirroring its subfolder) or delete it; only ever after the output is durable."""
    if config.archive is None:
        job.input_path.unlink(missing_ok=True)
        fsync_dir(job.directory)
        return None
    return move_no_replace(job.input_path, config.archive / job.rel_dir, job.input_path.name)


def complete_job(
    job: Job,
    config: Config,
    suffix: str = "",
    on_published: Callable[[], None] | None = None,
    *,
    pages: tuple[str, ...] = (),
    on_page: PublishStep | None = None,
) -> Path:
    """Publish the worker's temporary output without replacing anything, then archive or delete the input;
    returns the output's path (the first page's, for a job of several).

    `suffix` is the one the worker wrote, when it is not the planned one. `pages` are a job's several
    outputs in its staging folder (JobDone.pages), published all or none (srd/jobs/pages.py; `on_page` runs
    after each step). `on_published` runs once the output and its record are durable, before the input is
    touched (the fault tests stop a worker there: a redelivered job must then finish without a second
    output).
    """
    plan = plan_output(job, config, suffix)

    def record_output(final: Path) -> None:
        job.output = str(final)
        job.save()

    if pages:
        commit_pages(job, plan.filename, pages)
        published = publish_pages(job, plan.directory, plan.staging, on_page)
        final = published[0] if published else plan.directory
    else:
        final = publish_output(plan.temp, plan.directory, plan.filename, on_linked=record_output)
    if on_published is not None:
        on_published()
    _dispose_original(job, config)
    job.remove()
    return final


def fail_job(
    job: Job,
    config: Config,
    *,
    error_type: str,
    reason: str,
    model_id: str,
    trace: str | None = None,
) -> Path:
    """Move the original to errors/ (mirrored path) with NAME.error.json beside it, and drop the job."""
    plan = plan_output(job, config)
    plan.temp.unlink(missing_ok=True)
    discard_staging(plan.staging)
    directory = config.errors / job.rel_dir
    moved = move_no_replace(job.input_path, directory, job.input_path.name)
    report: dict[str, object] = {
        "file": moved.name,
        "original_path": job.rel_path,
        "reason": reason,
        "error_type": error_type,
        "attempts": job.attempts,
        "first_seen": _timestamp(job.first_seen),
        "claimed_at": _timestamp(job.claimed_at),
        "failed_at": _timestamp(datetime.now(UTC).timestamp()),
        "srd_version": __version__,
        "model": model_id,
        "job_id": job.job_id,
    }
    if trace:
        report["traceback"] = trace
    write_json_no_replace(directory, f"{moved.name}.error.json", report)
    job.remove()
    return moved


def recover_job(job: Job, config: Config) -> Path | None:
    """Finish a job an earlier run left in work/ after publishing; returns its output, or None to requeue it.

    A crash between publishing and archiving must not produce a second output on the next start; one in
    the middle of publishing several outputs completes the set (srd/jobs/pages.py).
    """
    plan = plan_output(job, config)
    if job.pages:
        published = publish_pages(job, plan.directory, plan.staging)
        plan.temp.unlink(missing_ok=True)
        _dispose_original(job, config)
        job.remove()
        return published[0] if published else plan.directory
    discard_staging(plan.staging)  # pages written but never committed: the job runs again
    if job.output is None and is_published_temp(plan.temp):
        other = find_other_name(plan.temp)
        job.output = str(other) if other is not None else str(plan.temp)
        job.save()
    if job.output is not None:
        plan.temp.unlink(missing_ok=True)
        _dispose_original(job, config)
        job.remove()
        return Path(job.output)
    if os.path.lexists(plan.temp):
        plan.temp.unlink()  # written but never published: the job runs again from the start
    return None
