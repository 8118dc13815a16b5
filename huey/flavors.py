"""Today's front doors: one storage for queue, schedule and results.

``RedisHuey('app', url=...)``, ``SqliteHuey('app', filename=...)`` and
``MemoryHuey('app')`` each build one storage and hand it to :class:`Huey` as
both queue and result store.
"""
from __future__ import annotations

from huey.api import Huey
from huey.storage.memory import MemoryStorage


class _OneStorageHuey(Huey):
    def __init__(self, name='huey', results=True, store_none=False, immediate=False,
                 events=None, **storage_kwargs):
        storage = self.make_storage(name, **storage_kwargs)
        super().__init__(storage, result_store=storage if results else None,
                         events=events, store_none=store_none, always_eager=immediate,
                         name=name)

    def make_storage(self, name, **kwargs):
        raise NotImplementedError


class RedisHuey(_OneStorageHuey):
    """``RedisHuey('app', url='redis://...')`` or ``host=/port=/db=/password=``,
    or ``connection_pool=``."""

    def make_storage(self, name, **kwargs):
        from huey.storage.redis import RedisStorage
        return RedisStorage(name, **kwargs)


class SqliteHuey(_OneStorageHuey):
    """``SqliteHuey('app', filename='huey.db')``: no server, one machine."""

    def make_storage(self, name, **kwargs):
        from huey.storage.sqlite import SqliteStorage
        return SqliteStorage(name, **kwargs)


class MemoryHuey(_OneStorageHuey):
    """In this process only: for tests and immediate mode."""

    def make_storage(self, name, **kwargs):
        return MemoryStorage(name, **kwargs)
