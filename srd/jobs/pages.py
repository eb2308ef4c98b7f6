"""Several outputs for one job (output.tiff_pages `separate`: each page of a multi-page TIFF its own file),
published all or none, whatever crashes where.

The worker writes every page, fsynced, into the job's staging folder (a hidden folder beside the outputs,
srd.jobs.fsops.staging_dir) as p001.png, p002.png, ... The publisher then

1. records the whole set in the job record (staged name -> the name it is published as): the commit point.
   A crash before it leaves a staging folder that recovery deletes, and the job runs again;
2. publishes each page as srd.jobs.fsops.publish_output publishes one output: a hard link under its final
   name (never replacing a file), that path recorded, then the staged name removed.

Recovery of a committed job repeats step 2 for the pages not yet recorded (rolls forward): a page linked
before the crash is found by its inode (its staged name has a second link), one not linked yet is linked
now. Every page ends in the outbox exactly once; only then is the input archived.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from srd.jobs.fsops import (
    NAME_MAX,
    find_other_name,
    fsync_dir,
    is_published_temp,
    link_no_replace,
)
from srd.jobs.record import Job

# Called after each step of a page's publishing ("linked", "recorded", "removed") with the page's staged
# name: the fault tests stop the process there.
PublishStep = Callable[[str, str], None]


def page_file_name(number: int, count: int, suffix: str) -> str:
    """The staged name of page `number` (1-based) of `count`: p001.png, ... (four digits past 999 pages)."""
    return f"p{number:0{max(3, len(str(count)))}d}{suffix}"


def published_page_name(filename: str, page: str) -> str:
    """The outbox name of the staged page `page` for a job whose one output would be `filename`:
    `doc.png` and `p001.png` give `doc.p001.png`; the stem is shortened to fit, never the page number."""
    stem = filename.rpartition(".")[0] or filename
    limit = NAME_MAX - len(os.fsencode(f".{page}"))
    while len(os.fsencode(stem)) > limit:
        stem = stem[:-1]
    return f"{stem}.{page}"


def commit_pages(job: Job, filename: str, pages: tuple[str, ...]) -> None:
    """Record the set of pages to publish (step 1): from here on the job can only end published."""
    job.pages = {page: published_page_name(filename, page) for page in pages}
    job.outputs = {}
    job.save()


def publish_pages(job: Job, directory: Path, staging: Path, step: PublishStep | None = None) -> list[Path]:
    """Publish the committed pages not yet published (step 2; idempotent, so recovery runs it again) and
    remove the staging folder; returns every page's published path, in page order."""
    for page, name in job.pages.items():
        staged = staging / page
        if page not in job.outputs:
            if is_published_temp(staged):  # linked, then a crash before its path was recorded
                final = find_other_name(staged, directory) or directory / name
            elif os.path.lexists(staged):
                final = link_no_replace(staged, directory, name)
                fsync_dir(directory)
            else:
                continue  # cannot happen by a crash (its path is recorded before the staged name goes)
            if step is not None:
                step("linked", page)
            job.outputs[page] = str(final)
            job.save()
            if step is not None:
                step("recorded", page)
        staged.unlink(missing_ok=True)
        if step is not None:
            step("removed", page)
    shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(directory)
    return [Path(job.outputs[page]) for page in job.pages if page in job.outputs]


def discard_staging(staging: Path) -> None:
    """Remove the staged pages of a job that never committed them (it runs again, or failed)."""
    if os.path.lexists(staging):
        shutil.rmtree(staging, ignore_errors=True)
