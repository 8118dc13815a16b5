"""The seed's Redis classes: ``RedisQueue``, ``RedisBlockingQueue``,
``RedisDataStore``, ``RedisSchedule`` and ``RedisEventEmitter``.

Each takes ``(name, host=, port=, db=, password=)`` or ``url=`` or
``connection_pool=``.
"""
from __future__ import annotations

import json
import time

from huey.backends.base import BaseDataStore, BaseQueue, BaseSchedule
from huey.storage.redis import RedisStorage


class RedisQueue(BaseQueue):
    """A Redis queue. Workers block for work on it (no polling)."""

    storage_class = RedisStorage
    blocking = True


class RedisBlockingQueue(RedisQueue):
    """The seed's name for the blocking Redis queue; same as :class:`RedisQueue`:
    reservations here always block, so both names give the same queue."""


class RedisDataStore(BaseDataStore):
    storage_class = RedisStorage


class RedisSchedule(BaseSchedule):
    storage_class = RedisStorage


class RedisEventEmitter:
    """Publishes a JSON event on a Redis channel for each task lifecycle signal.

    Each event is ``{"status": signal, "id": ..., "task": ..., "retries": ...,
    "retry_delay": ..., "execute_time": ..., "error": bool, "traceback": ...}``;
    subscribe with ``redis-cli subscribe <channel>``.
    """

    def __init__(self, channel: str, **connection):
        self.channel = channel
        self.storage = RedisStorage(channel, **connection)

    def emit(self, message: str) -> None:
        self.storage.publish(self.channel, message)

    def emit_signal(self, signal: str, task, *args) -> None:
        error = args[0] if args and isinstance(args[0], BaseException) else None
        event = {
            'status': signal, 'id': getattr(task, 'id', None),
            'task': getattr(task, 'name', None), 'retries': getattr(task, 'retries', None),
            'retry_delay': getattr(task, 'retry_delay', None), 'execute_time': time.time(),
            'error': error is not None, 'traceback': repr(error) if error else None}
        self.emit(json.dumps(event))
