"""Task lifecycle signals: names, and a dispatcher that never lets a handler
break the task that sent the signal."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Callable, Dict, List, Optional

logger = logging.getLogger('huey.signals')

SIGNAL_ENQUEUED = 'enqueued'
SIGNAL_SCHEDULED = 'scheduled'
SIGNAL_EXECUTING = 'executing'
SIGNAL_COMPLETE = 'complete'
SIGNAL_ERROR = 'error'
SIGNAL_RETRYING = 'retrying'
SIGNAL_REVOKED = 'revoked'
SIGNAL_EXPIRED = 'expired'
SIGNAL_LOCKED = 'locked'
SIGNAL_CANCELED = 'canceled'
SIGNAL_INTERRUPTED = 'interrupted'
SIGNAL_DEAD_LETTER = 'dead_letter'

ALL_SIGNALS = (SIGNAL_ENQUEUED, SIGNAL_SCHEDULED, SIGNAL_EXECUTING, SIGNAL_COMPLETE,
               SIGNAL_ERROR, SIGNAL_RETRYING, SIGNAL_REVOKED, SIGNAL_EXPIRED,
               SIGNAL_LOCKED, SIGNAL_CANCELED, SIGNAL_INTERRUPTED, SIGNAL_DEAD_LETTER)


class Signals:
    """Handlers by signal name; a handler with no names gets every signal."""

    def __init__(self):
        self._handlers: Dict[Optional[str], List[Callable]] = defaultdict(list)

    def connect(self, handler: Callable, *names: str) -> None:
        for name in names or (None,):
            if name is not None and name not in ALL_SIGNALS:
                raise ValueError('unknown signal %r; known: %s' % (name, ', '.join(ALL_SIGNALS)))
            self._handlers[name].append(handler)

    def disconnect(self, handler: Callable, *names: str) -> None:
        for name in names or list(self._handlers):
            if handler in self._handlers.get(name, ()):
                self._handlers[name].remove(handler)

    def send(self, name: str, task, *args) -> None:
        for handler in self._handlers.get(name, []) + self._handlers.get(None, []):
            try:
                handler(name, task, *args)
            except Exception:
                logger.exception('signal handler %r failed on %s for %s', handler, name, task)
