"""Logging set-up: every record names the process that wrote it.

Records carry ``%(role)s``: ``supervisor`` or ``worker-N``, next to the pid.
With ``--logfile`` the supervisor owns rotation (RotatingFileHandler) and the
workers append through a WatchedFileHandler, which reopens the file after the
supervisor rotated it; only one process ever renames the file.
"""
from __future__ import annotations

import logging
import logging.handlers
from typing import Optional

FORMAT = '[%(asctime)s] %(levelname)s %(role)s:%(process)d %(name)s: %(message)s'
MAX_BYTES = 10 * 1024 * 1024
BACKUP_COUNT = 5


class RoleFilter(logging.Filter):
    """Stamps each record with the role of the process writing it."""

    def __init__(self, role: str):
        super().__init__()
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self.role
        return True


def level_for(config) -> int:
    if config.verbose:
        return logging.DEBUG
    if config.quiet:
        return logging.WARNING
    return logging.INFO


def setup_logging(config, role: str, owner_of_file: bool) -> Optional[logging.Handler]:
    """(Re)configure the root logger for this process; return its handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        # Removed, not closed: a worker must not close (or ever rotate) the
        # stream of the supervisor's handler it inherited.
        root.removeHandler(handler)
    if config.logfile and owner_of_file:
        handler = logging.handlers.RotatingFileHandler(
            config.logfile, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, delay=False)
    elif config.logfile:
        handler = logging.handlers.WatchedFileHandler(config.logfile)
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RoleFilter(role))
    root.addHandler(handler)
    root.setLevel(level_for(config))
    return handler


def rotate_if_due(handler: Optional[logging.Handler]) -> None:
    """The supervisor calls this now and then: workers write most of the log,
    and the rotating handler only checks the size when its own process logs."""
    if isinstance(handler, logging.handlers.RotatingFileHandler):
        probe = logging.LogRecord('huey', logging.INFO, __file__, 0, '', (), None)
        probe.role = 'supervisor'  # shouldRollover formats it, without the filters
        with handler.lock:  # the scheduler thread may be logging meanwhile
            if handler.shouldRollover(probe):
                handler.doRollover()
