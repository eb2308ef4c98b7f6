"""The daemon (never imports JAX): watch the inbox, claim jobs, schedule them onto workers, notify systemd."""

from srd.daemon.scheduler import Scheduler
from srd.daemon.service import Daemon, run_daemon

__all__ = ["Daemon", "Scheduler", "run_daemon"]
