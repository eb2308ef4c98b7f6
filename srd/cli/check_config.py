"""`srd check-config FILE`: every check `srd run` makes at start-up, short of compiling, all at once."""

from __future__ import annotations

import sys
from pathlib import Path

from srd.daemon.folders import folder_problems
from srd.errors import ConfigError, ExitCode
from srd.settings import load_config, raw_layout_problems


def check_config_command(path: Path, *, check_model: bool = True) -> ExitCode:
    """Print every problem with its key path; OK when `srd run` would start with this file.

    The exit code is the one `srd run` would exit with: 78 for an invalid schema or a model/engine setting
    that cannot run, 73 for a folder problem (both are excluded from systemd's Restart=).
    """
    try:
        config = load_config(path)
    except ConfigError as exc:
        layout = raw_layout_problems(path)  # every problem at once: the folders too, where they are spelt out
        print("\n  ".join([str(exc), *layout]), file=sys.stderr)
        return exc.exit_code
    folders = folder_problems(config)
    queue: list[str] = []
    if config.queue.backend == "celery":
        from srd.workers.celery_app import make_app

        try:
            make_app(config)  # Celery and its Redis client are installed (the broker is not contacted)
        except ConfigError as exc:
            queue.append(f"At 'queue.backend': {exc}")
    engine: list[str] = []
    if check_model:
        from srd.runtime import configure_runtime

        configure_runtime()  # loading a model traces it with JAX (shape inference)
        from srd.engine.engine import check_engine

        engine = check_engine(config.model, config.engine)
    if folders or engine or queue:
        print(f"{path}: cannot start:\n  " + "\n  ".join([*engine, *queue, *folders]), file=sys.stderr)
        return ExitCode.CONFIG if engine or queue else ExitCode.CANT_CREATE
    for note in config.web.notes:
        print(f"{path}: note: {note}", file=sys.stderr)
    archive = config.archive if config.archive is not None else "delete originals"
    print(
        f"{path}: OK (inbox {config.inbox}, outbox {config.outbox}, archive {archive}, "
        f"model {config.model.model_id})"
    )
    return ExitCode.OK
