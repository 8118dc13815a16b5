"""SQLite twins of the seed's Redis classes: ``(name, filename='huey.db')``."""
from __future__ import annotations

from huey.backends.base import BaseDataStore, BaseQueue, BaseSchedule
from huey.storage.sqlite import SqliteStorage


class SqliteQueue(BaseQueue):
    storage_class = SqliteStorage


class SqliteDataStore(BaseDataStore):
    storage_class = SqliteStorage


class SqliteSchedule(BaseSchedule):
    storage_class = SqliteStorage
