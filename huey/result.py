"""Result handles: what calling a task returns when there is a result store."""
from __future__ import annotations

import pickle
import time
from typing import Any, List, Optional

from huey.exceptions import DataStoreTimeout, ResultTimeout, TaskException

_MISSING = object()


class ErrorResult:
    """What the worker stores when a task failed for good. Holds only plain
    data (never the exception object) so it always pickles."""

    def __init__(self, metadata: dict):
        self.metadata = metadata


class NoneResult:
    """Marks "the task returned None" when ``store_none`` is off; kept briefly
    so a waiting ``get()`` returns instead of waiting out its timeout."""


def encode_result(value: Any) -> bytes:
    return pickle.dumps(value, protocol=4)


def decode_result(data: bytes) -> Any:
    value = pickle.loads(data)
    return None if isinstance(value, NoneResult) else value


class Result:
    """The pending result of one task instance."""

    def __init__(self, huey, task):
        self.huey = huey
        self.task = task
        self._value = _MISSING

    @property
    def id(self) -> str:
        return self.task.id

    def __repr__(self):
        return '<Result %s %s>' % (self.task.name, self.id)

    def __call__(self, *args, **kwargs):
        return self.get(*args, **kwargs)

    def _read(self, preserve: bool) -> Any:
        store = self.huey.result_storage
        data = store.peek_data(self.id) if preserve else store.pop_data(self.id)
        return _MISSING if data is None else decode_result(data)

    def get_raw_result(self, blocking=False, timeout=None, backoff=1.15, max_delay=1.0,
                       revoke_on_timeout=False, preserve=False) -> Any:
        if self._value is not _MISSING:
            return self._value
        value = self._read(preserve)
        if blocking:
            delay = 0.05
            deadline = None if timeout is None else time.monotonic() + timeout
            while value is _MISSING:
                if deadline is not None and time.monotonic() >= deadline:
                    if revoke_on_timeout:
                        self.revoke()
                    raise ResultTimeout('no result for %s after %ss' % (self._label(), timeout))
                pause = delay if deadline is None else min(delay, max(deadline - time.monotonic(), 0))
                time.sleep(pause)
                delay = min(delay * backoff, max_delay)
                value = self._read(preserve)
        if value is not _MISSING:
            self._value = value
        return None if value is _MISSING else value

    def get(self, blocking=False, timeout=None, backoff=1.15, max_delay=1.0,
            revoke_on_timeout=False, preserve=False) -> Any:
        """The task's return value; ``None`` while not ready (non-blocking).
        A task that failed raises :class:`~huey.exceptions.TaskException`."""
        value = self.get_raw_result(blocking, timeout, backoff, max_delay,
                                    revoke_on_timeout, preserve)
        if isinstance(value, ErrorResult):
            raise TaskException(value.metadata)
        return value

    def _label(self) -> str:
        if self.task.name is None:  # huey.result(id): only the id is known
            return 'task id %s' % self.id
        return 'task %s (%s)' % (self.task.name, self.id)

    def is_ready(self) -> bool:
        return self._value is not _MISSING or self.huey.result_storage.has_data_for_key(self.id)

    def reset(self) -> None:
        self._value = _MISSING

    def revoke(self, revoke_once=True) -> None:
        self.huey.revoke_by_id(self.id, revoke_once=revoke_once)

    def restore(self) -> bool:
        return self.huey.restore_by_id(self.id)

    def is_revoked(self) -> bool:
        """This instance revoked, by id or with all instances of its task."""
        return self.huey.is_revoked(self.task if self.task.name else self.id)

    def reschedule(self, eta=None, delay=None):
        return self.huey.reschedule(self.task, eta=eta, delay=delay)


class ResultGroup:
    """Results of ``.map()`` or a pipeline, in order."""

    def __init__(self, results: List[Result]):
        self.results = results

    def get(self, *args, **kwargs) -> List[Any]:
        return [r.get(*args, **kwargs) for r in self.results]

    __call__ = get

    def __getitem__(self, index):
        return self.results[index]

    def __iter__(self):
        return iter(self.results)

    def __len__(self):
        return len(self.results)

    def as_completed(self, timeout: Optional[float] = None):
        """Yield values as tasks finish, in whatever order they finish."""
        pending = list(self.results)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while pending:
            for result in list(pending):
                if result.is_ready():
                    pending.remove(result)
                    yield result.get()
            if pending:
                if deadline is not None and time.monotonic() >= deadline:
                    raise DataStoreTimeout('%d results not ready after %ss' % (len(pending), timeout))
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
