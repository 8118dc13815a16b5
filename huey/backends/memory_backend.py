"""In-memory twins of the seed's classes, for tests (one process only)."""
from __future__ import annotations

from huey.backends.base import BaseDataStore, BaseQueue, BaseSchedule
from huey.storage.memory import MemoryStorage


class MemoryQueue(BaseQueue):
    storage_class = MemoryStorage
    blocking = True


class MemoryDataStore(BaseDataStore):
    storage_class = MemoryStorage


class MemorySchedule(BaseSchedule):
    storage_class = MemoryStorage
