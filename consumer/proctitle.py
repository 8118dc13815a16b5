"""Process titles, so `ps` shows what the consumer is doing."""
from __future__ import annotations

try:
    from setproctitle import setproctitle as _set
except ImportError:  # a missing C extension must not stop the consumer
    def _set(title: str) -> None:
        pass


def supervisor_title(app_path: str, workers: int, state: str = '') -> str:
    text = 'huey: supervisor %s %d workers' % (app_path, workers)
    return text + (' ' + state if state else '')


def worker_title(number: int, task_name: str = None, elapsed: float = None) -> str:
    if task_name is None:
        return 'huey: worker %d idle' % number
    return 'huey: worker %d busy %s %.1fs' % (number, task_name, elapsed or 0.0)


def set_title(title: str) -> None:
    _set(title)
