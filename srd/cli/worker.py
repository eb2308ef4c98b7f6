"""`srd worker --config FILE`: take jobs from the broker (queue.backend celery) and run them on this host."""

from __future__ import annotations

from pathlib import Path

from srd.errors import ConfigError
from srd.logs import configure_logging
from srd.settings import load_config


def worker_command(config_path: Path) -> int:
    """Run a Celery worker with one supervised worker process per device until SIGTERM."""
    config = load_config(config_path)
    if config.queue.backend != "celery":
        raise ConfigError(f"{config_path}: At 'queue.backend': `srd worker` needs celery, got local")
    configure_logging(config.logging.format, config.logging.level)
    for key in ("work", "outbox", "errors"):
        folder: Path = getattr(config, key)
        if not folder.is_dir():
            raise ConfigError(
                f"At '{key}': {folder} is not a folder here; every host mounts the same folders at the same"
                " paths, and the watcher (`srd run`) creates them"
            )
    from srd.workers.celery import serve

    return serve(config)
