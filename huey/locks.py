"""Task locks: at most one holder at a time, across every consumer."""
from __future__ import annotations

import functools

from huey.exceptions import TaskLockedException


class TaskLock:
    """``huey.lock_task('name')``: a context manager and a decorator.

    Taking a held lock raises :class:`TaskLockedException`; inside a task the
    worker reports it with the ``locked`` signal and does not retry unless
    the task has retries left. The lock records its holder (the worker), so
    when a worker dies holding one, the supervisor frees it.
    """

    def __init__(self, huey, name: str):
        self.huey = huey
        self.name = name
        self.key = 'lock.%s' % name

    def is_locked(self) -> bool:
        return self.huey.storage.has_data_for_key(self.key)

    def acquire(self) -> None:
        holder = self.huey.lock_holder().encode()
        if not self.huey.storage.put_if_empty(self.key, holder):
            raise TaskLockedException('unable to take lock %r: it is held' % self.name)

    def release(self) -> bool:
        return self.huey.storage.delete_data(self.key)

    def clear(self) -> bool:
        return self.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def __call__(self, func):
        @functools.wraps(func)
        def inner(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return inner
