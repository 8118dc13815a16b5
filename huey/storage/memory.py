"""Storage in this process's memory: for tests and immediate mode.

Thread-safe (immediate mode may run tasks from many threads), blocking
:meth:`reserve` with a condition variable. Nothing survives the process, and a
forked child gets a copy, not a share: do not run a consumer on it.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Dict, List, Optional, Tuple

from huey.storage.base import DeadLetter, Reservation, Storage


class _Entry:
    __slots__ = ('token', 'data', 'priority', 'deliveries', 'owner', 'deadline')

    def __init__(self, token, data, priority):
        self.token, self.data, self.priority = token, data, priority
        self.deliveries, self.owner, self.deadline = 0, None, None


class MemoryStorage(Storage):
    blocking = True

    def __init__(self, name: str = 'huey'):
        super().__init__(name)
        self._cond = threading.Condition()
        self._seq = itertools.count(1)
        self._pending: Dict[str, _Entry] = {}
        self._reserved: Dict[str, _Entry] = {}
        self._schedule: Dict[str, Tuple[float, _Entry]] = {}
        self._kv: Dict[str, Tuple[bytes, Optional[float]]] = {}
        self._dead: Dict[str, DeadLetter] = {}

    def _token(self) -> str:
        # Zero-padded so string order is arrival order, as in every backend.
        return '%016d' % next(self._seq)

    def _order(self, entry: _Entry):
        return (-entry.priority, entry.token)

    # -- queue ---------------------------------------------------------
    def enqueue_many(self, items):
        with self._cond:
            tokens = []
            for data, priority in items:
                entry = _Entry(self._token(), bytes(data), int(priority or 0))
                self._pending[entry.token] = entry
                tokens.append(entry.token)
            self._cond.notify(len(tokens))
            return tokens

    def enqueue_once(self, key, ttl, data, priority=0):
        with self._cond:
            if not self._claim(key, b'1', ttl):
                return None
            return self.enqueue(data, priority)

    def reserve(self, owner, lease, now, timeout=0):
        deadline = time.monotonic() + max(timeout, 0)
        with self._cond:
            while not self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            entry = min(self._pending.values(), key=self._order)
            del self._pending[entry.token]
            entry.deliveries += 1
            entry.owner, entry.deadline = owner, now + lease
            self._reserved[entry.token] = entry
            return Reservation(entry.token, entry.data, entry.deliveries)

    def _take(self, token, owner):
        """The reservation of ``token`` (held by ``owner``, if given), removed."""
        entry = self._reserved.get(token)
        if entry is None or (owner is not None and entry.owner != owner):
            return None
        return self._reserved.pop(token)

    def ack(self, token, owner=None):
        with self._cond:
            return self._take(token, owner) is not None

    def _return(self, entry, count_delivery=True):
        if not count_delivery:
            entry.deliveries = max(entry.deliveries - 1, 0)
        entry.owner = entry.deadline = None
        self._pending[entry.token] = entry
        self._cond.notify()

    def requeue(self, token, count_delivery=True, owner=None):
        with self._cond:
            entry = self._take(token, owner)
            if entry is None:
                return False
            self._return(entry, count_delivery)
            return True

    def release_owner(self, owner, count_delivery=True):
        with self._cond:
            tokens = [t for t, e in self._reserved.items() if e.owner == owner]
            for token in tokens:
                self._return(self._reserved.pop(token), count_delivery)
            return len(tokens)

    def renew(self, owner, lease, now):
        with self._cond:
            held = [e for e in self._reserved.values() if e.owner == owner]
            for entry in held:
                entry.deadline = now + lease
            return len(held)

    def reclaim_expired(self, now):
        with self._cond:
            tokens = [t for t, e in self._reserved.items() if e.deadline < now]
            for token in tokens:
                self._return(self._reserved.pop(token))
            return len(tokens)

    def queue_size(self):
        with self._cond:
            return len(self._pending)

    def reserved_size(self):
        with self._cond:
            return len(self._reserved)

    def queue_items(self, limit=None):
        with self._cond:
            entries = sorted(self._pending.values(), key=self._order)
            return [e.data for e in entries[:limit]]

    def flush_queue(self):
        with self._cond:
            self._pending.clear()
            self._reserved.clear()

    # -- schedule ------------------------------------------------------
    def schedule_add(self, data, eta, priority=0):
        with self._cond:
            entry = _Entry(self._token(), bytes(data), int(priority or 0))
            self._schedule[entry.token] = (float(eta), entry)
            return entry.token

    def schedule_move_due(self, now, limit=1000):
        with self._cond:
            due = sorted((eta, t) for t, (eta, _) in self._schedule.items() if eta <= now)
            for _, token in due[:limit]:
                _, entry = self._schedule.pop(token)
                self._pending[token] = entry
            moved = len(due[:limit])
            self._cond.notify(moved)
            return moved

    def schedule_size(self):
        with self._cond:
            return len(self._schedule)

    def schedule_items(self, limit=None):
        with self._cond:
            items = sorted((eta, e.token, e.data) for eta, e in self._schedule.values())
            return [(eta, data) for eta, _, data in items[:limit]]

    def flush_schedule(self):
        with self._cond:
            self._schedule.clear()

    # -- key/value -----------------------------------------------------
    def _live(self, key):
        item = self._kv.get(key)
        if item is not None and item[1] is not None and item[1] <= time.time():
            del self._kv[key]
            return None
        return item

    def _claim(self, key, value, ttl):
        if self._live(key) is not None:
            return False
        expires = time.time() + ttl if ttl else None
        self._kv[key] = (bytes(value), expires)
        return True

    def put_data(self, key, value):
        with self._cond:
            self._kv[key] = (bytes(value), None)

    def peek_data(self, key):
        with self._cond:
            item = self._live(key)
            return None if item is None else item[0]

    def pop_data(self, key):
        with self._cond:
            item = self._live(key)
            if item is None:
                return None
            del self._kv[key]
            return item[0]

    def delete_data(self, key):
        with self._cond:
            return self._kv.pop(key, None) is not None

    def put_if_empty(self, key, value, ttl=None):
        with self._cond:
            return self._claim(key, value, ttl)

    def result_count(self):
        with self._cond:
            return sum(1 for value, expires in self._kv.values() if expires is None)

    def flush_results(self):
        with self._cond:
            self._kv.clear()

    # -- dead letters --------------------------------------------------
    def dead_letter(self, token, reason, now, owner=None):
        with self._cond:
            entry = self._take(token, owner)
            if entry is None:
                return None
            return self._add_dead(entry.data, reason, now, entry.priority)

    def _add_dead(self, data, reason, now, priority):
        letter = DeadLetter(self._token(), bytes(data), reason, float(now), priority)
        self._dead[letter.id] = letter
        return letter.id

    def dead_letter_add(self, data, reason, now, priority=0):
        with self._cond:
            return self._add_dead(data, reason, now, priority)

    def dead_letters(self) -> List[DeadLetter]:
        with self._cond:
            return sorted(self._dead.values(), key=lambda d: d.id)

    def requeue_dead_letters(self, ids=None):
        with self._cond:
            chosen = list(self._dead) if ids is None else [i for i in ids if i in self._dead]
            letters = [self._dead.pop(i) for i in chosen]
        self.enqueue_many([(d.data, d.priority) for d in letters])
        return len(letters)

    def purge_dead_letters(self):
        with self._cond:
            count = len(self._dead)
            self._dead.clear()
            return count
