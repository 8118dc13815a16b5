"""What every seed-era front door shares."""
from __future__ import annotations

from huey.storage.base import Storage


class FrontDoor:
    """A named view of one storage, the way the seed's backends were built."""

    storage_class = None

    def __init__(self, name: str, **connection):
        self.name = name
        self.storage: Storage = self.make_storage(name, **connection)

    def make_storage(self, name, **connection) -> Storage:
        return self.storage_class(name, **connection)

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.storage.describe())


class BaseQueue(FrontDoor):
    """Queue verbs, as the seed's queues had them."""

    blocking = False

    def write(self, data: bytes, priority: int = 0) -> str:
        return self.storage.enqueue(data, priority)

    def __len__(self) -> int:
        return self.storage.queue_size()

    def flush(self) -> None:
        self.storage.flush_queue()


class BaseDataStore(FrontDoor):
    """Key/value verbs: results live here."""

    def put(self, key: str, value: bytes) -> None:
        self.storage.put_data(key, value)

    def peek(self, key: str):
        return self.storage.peek_data(key)

    def get(self, key: str):
        return self.storage.pop_data(key)

    def flush(self) -> None:
        self.storage.flush_results()

    def __len__(self) -> int:
        return self.storage.result_count()


class BaseSchedule(FrontDoor):
    """Delayed messages. Must sit on the queue's server (see ``Huey``)."""

    def add(self, data: bytes, ts: float, priority: int = 0) -> str:
        return self.storage.schedule_add(data, ts, priority)

    def __len__(self) -> int:
        return self.storage.schedule_size()

    def flush(self) -> None:
        self.storage.flush_schedule()
