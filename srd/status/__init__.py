"""How the daemon reports itself: one Stats object, the status.json file, and `srd status`'s rendering."""

from srd.status.stats import InFlightJob, JobProgress, LastError, Stats
from srd.status.status_file import StatusFile, format_status, read_status

__all__ = ["InFlightJob", "JobProgress", "LastError", "Stats", "StatusFile", "format_status", "read_status"]
