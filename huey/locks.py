"""Task locks: at most one holder at a time, across every consumer."""
from __future__ import annotations

import functools
import pickle
from typing import List

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
        # Noted before taking it: a worker killed in between leaves a note
        # for a lock it does not hold, which the clean-up skips; the other
        # order could leave a held lock nobody knows to free.
        owner = self.huey.worker_owner
        noted = owner and note_held(self.huey, owner, self.name, True)
        if not self.huey.storage.put_if_empty(self.key, self.huey.lock_holder().encode()):
            if noted:  # a failed second attempt must not drop the first one's note
                note_held(self.huey, owner, self.name, False)
            raise TaskLockedException('unable to take lock %r: it is held' % self.name)

    def release(self) -> bool:
        released = self.huey.storage.delete_data(self.key)
        if self.huey.worker_owner:
            note_held(self.huey, self.huey.worker_owner, self.name, False)
        return released

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


def _held_key(owner: str) -> str:
    return 'locks-held:%s' % owner


def _held_names(huey, owner: str) -> set:
    data = huey.storage.peek_data(_held_key(owner))
    return set(pickle.loads(data)) if data else set()


def note_held(huey, owner: str, name: str, held: bool) -> bool:
    """Keep the names of the locks a worker holds in storage, so that its
    supervisor can free them if it dies: a lock may be named only inside a
    task (``with huey.lock_task('job-%s' % id)``), out of the supervisor's sight.
    Only the worker itself writes its note, one task at a time."""
    names = _held_names(huey, owner)
    if (name in names) == held:
        return False  # nothing to change
    names.add(name) if held else names.discard(name)
    if names:
        huey.storage.put_data(_held_key(owner), pickle.dumps(sorted(names)))
    else:
        huey.storage.delete_data(_held_key(owner))
    return True


def release_locks_of(huey, owner: str) -> List[str]:
    """Free the locks ``owner`` (a dead worker) still holds."""
    freed = []
    for name in sorted(_held_names(huey, owner) | huey.lock_names):
        lock = TaskLock(huey, name)
        if huey.storage.peek_data(lock.key) == owner.encode():
            huey.storage.delete_data(lock.key)
            freed.append(name)
    huey.storage.delete_data(_held_key(owner))
    return freed
