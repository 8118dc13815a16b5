"""Storage in one SQLite file, shared by every process on one machine.

Schema (created on first use; every row carries the storage's ``name`` in a
``queue`` column, so many queues share one file and each flush deletes only
its own rows):

``messages``
    One row per message in any of three states: ``pending`` (waiting in the
    queue), ``scheduled`` (waiting for its ``eta``) and ``reserved`` (held by
    ``owner`` until ``lease_deadline``). The ``id`` is the ordering token
    (``'%016d' % id``, so string order is arrival order). A message changes
    state in place and so keeps its token, and with it its place in line,
    through the schedule, a reservation and a requeue. ``AUTOINCREMENT``
    makes sure an id is never handed out twice, even after the newest row is
    deleted: a stale token can never ack somebody else's message.
``kv``
    Results, locks, revocations and periodic slots; ``expires`` (wall time)
    is NULL for keys that do not expire. Expired rows count as absent and are
    deleted when a claim on this name comes by.
``dead_letters``
    Messages kept for a person to inspect; ``'%016d' % id`` is their id.

Concurrency: forked consumer workers and producers open the same file, so
the file is in WAL mode (readers never block the one writer) and every
connection waits up to ``timeout`` seconds for a lock instead of failing at
once. Every verb that reads and then writes runs in one ``BEGIN IMMEDIATE``
transaction: it takes the write lock before its read, so two processes can
never both see the same pending row and both reserve it. Reads that only
read run as single statements, each on its own consistent snapshot.

SQLite connections must not cross a fork or be shared by threads, so there is
one connection per thread *and* per process: it is opened on first use and
opened again when the process id has changed since. A connection inherited
through a fork is never touched, not even closed. Calling :meth:`close`
before forking is still best: the child then inherits nothing at all.

There is nothing to wait on in SQLite, so :meth:`SqliteStorage.reserve`
never blocks (``blocking = False``): the consumer polls with back-off.
"""
from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Iterator, List, Optional

from huey.exceptions import StorageError, StorageUnavailable
from huey.storage.base import DeadLetter, Reservation, Storage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'scheduled', 'reserved')),
    priority INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL,
    eta REAL,
    owner TEXT,
    lease_deadline REAL,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_reserve
    ON messages (queue, state, priority DESC, id);
CREATE INDEX IF NOT EXISTS messages_eta
    ON messages (queue, state, eta, id);
CREATE INDEX IF NOT EXISTS messages_lease
    ON messages (queue, state, lease_deadline);
CREATE TABLE IF NOT EXISTS kv (
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires REAL,
    PRIMARY KEY (queue, key)
);
CREATE INDEX IF NOT EXISTS kv_expires
    ON kv (queue, expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    data BLOB NOT NULL,
    reason TEXT NOT NULL,
    time REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue, id);
"""

# sqlite3 error texts that mean "this file cannot be used at all", with the
# fix to print. Other errors (a lock held past the timeout, say) go up as they
# are: a retry may well fix those.
_OPEN_ERRORS = (
    ('unable to open database file',
     'check that the directory exists and that this user may create files in '
     'it (SQLite adds -wal and -shm files next to the database)'),
    ('file is not a database',
     'the file exists but is not a SQLite database; pass another filename'),
    ('readonly database',
     'make the file and its directory writable by this user'),
)

_NOT_EXPIRED = '(expires IS NULL OR expires > ?)'


def _token(row_id: int) -> str:
    # Zero-padded so string order is arrival order, as in every backend.
    return '%016d' % row_id


def _row_id(token) -> Optional[int]:
    """The row id in a token or dead-letter id; None when it is not one."""
    try:
        return int(token)
    except (TypeError, ValueError):
        return None


def _limit(limit: Optional[int]) -> int:
    return -1 if limit is None else max(int(limit), 0)  # -1: no limit in SQLite


class _Handle:
    """One thread's connection. Closed when dropped (its thread ended, or the
    storage went away) in the process that opened it, so threads that never
    call close() leave no "unclosed database" behind; in a forked child it is
    parked in ``orphans`` instead, never closed (see ``_orphans``)."""

    __slots__ = ('conn', 'pid', 'orphans')

    def __init__(self, conn: sqlite3.Connection, orphans: list):
        self.conn, self.pid, self.orphans = conn, os.getpid(), orphans

    def __del__(self):
        if self.pid == os.getpid():
            self.conn.close()
        else:
            self.orphans.append(self.conn)


class SqliteStorage(Storage):
    """Messages, schedule, key/value data and dead letters in one SQLite file.

    ``timeout`` is how long (seconds) a call waits for another process's lock.
    Other keyword arguments go to :func:`sqlite3.connect` (``timeout`` and
    ``isolation_level`` are this class's own: transactions are explicit).
    """

    blocking = False

    def __init__(self, name: str, filename: str = 'huey.db', timeout: float = 10.0,
                 **kwargs):
        super().__init__(name)
        self.filename = filename
        self.timeout = float(timeout)
        self._connect_kwargs = dict(kwargs)
        self._local = threading.local()
        # Connections inherited through a fork: kept referenced so that the
        # child never closes (finalises) them. SQLite forbids using a
        # connection across a fork, closing included: it would act on lock
        # and WAL bookkeeping copied from the parent, which still uses it.
        self._orphans: List[sqlite3.Connection] = []

    def describe_server(self) -> str:
        return 'sqlite %s' % os.path.abspath(self.filename)

    def describe(self) -> str:
        return '%s %r in %s' % (type(self).__name__, self.name,
                                os.path.abspath(self.filename))

    # -- connections ---------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection in this process, opened on first use."""
        handle = getattr(self._local, 'handle', None)
        if handle is not None and handle.pid == os.getpid():
            return handle.conn
        self._local.handle = None  # a parent's handle parks its conn as it goes
        self._local.handle = _Handle(self._open(), self._orphans)
        return self._local.handle.conn

    def _open(self) -> sqlite3.Connection:
        kwargs = dict(self._connect_kwargs, timeout=self.timeout, isolation_level=None)
        conn = None
        try:
            conn = sqlite3.connect(self.filename, **kwargs)
            self._use_wal(conn)
            # Many processes may create the schema at once: one at a time.
            # (In the script: executescript() commits any open transaction.)
            conn.executescript('BEGIN IMMEDIATE;' + _SCHEMA + 'COMMIT;')
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise self._open_error(exc) or exc
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode (a property of the file; again is a no-op).

        Switching a fresh file takes a lock that SQLite does not wait for, so
        when several processes open a new file at once the losers get
        "database is locked" at once: retry them here, within ``timeout``.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute('PRAGMA journal_mode=WAL')
                return
            except sqlite3.OperationalError as exc:
                if 'locked' not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _open_error(self, exc: Exception) -> Optional[StorageError]:
        text = str(exc)
        for needle, fix in _OPEN_ERRORS:
            if needle in text:
                return StorageError('cannot use SQLite database %s (%s): %s'
                                    % (os.path.abspath(self.filename), text, fix))
        return None

    def close(self) -> None:
        self._local.handle = None  # the handle closes or parks its connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock before any read."""
        conn = self._conn()
        conn.execute('BEGIN IMMEDIATE')
        try:
            yield conn
            conn.execute('COMMIT')
        except BaseException:
            # SQLite may already have rolled back (a full disk, say).
            if conn.in_transaction:
                conn.execute('ROLLBACK')
            raise

    def _one(self, sql: str, *params):
        return self._conn().execute(sql, params).fetchone()

    def _count(self, sql: str, *params) -> int:
        return self._one(sql, *params)[0]

    # -- queue ---------------------------------------------------------
    def _insert(self, conn, data, priority, state='pending', eta=None) -> str:
        cursor = conn.execute(
            'INSERT INTO messages (queue, state, priority, data, eta) '
            'VALUES (?, ?, ?, ?, ?)',
            (self.name, state, int(priority or 0), bytes(data), eta))
        return _token(cursor.lastrowid)

    def enqueue_many(self, items):
        with self._write() as conn:
            return [self._insert(conn, data, priority) for data, priority in items]

    def enqueue_once(self, key, ttl, data, priority=0):
        with self._write() as conn:
            if not self._claim(conn, key, b'1', ttl):
                return None
            return self._insert(conn, data, priority)

    def reserve(self, owner, lease, now, timeout=0):
        # ``timeout`` is ignored: nothing to wait on, the consumer polls.
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, data, deliveries FROM messages "
                "WHERE queue = ? AND state = 'pending' "
                "ORDER BY priority DESC, id LIMIT 1", (self.name,)).fetchone()
            if row is None:
                return None
            row_id, data, deliveries = row
            conn.execute(
                "UPDATE messages SET state = 'reserved', owner = ?, "
                "lease_deadline = ?, deliveries = deliveries + 1 WHERE id = ?",
                (owner, now + lease, row_id))
            return Reservation(_token(row_id), data, deliveries + 1)

    def ack(self, token, owner=None):
        # One statement is its own transaction: nothing to read first.
        cursor = self._conn().execute(
            "DELETE FROM messages WHERE id = ? AND queue = ? AND state = 'reserved' "
            "AND (? IS NULL OR owner = ?)",
            (_row_id(token), self.name, owner, owner))
        return cursor.rowcount > 0

    def _return_where(self, where: str, *params, count_delivery: bool = True) -> int:
        """Put reserved messages matching ``where`` back in the queue."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE messages SET state = 'pending', owner = NULL, "
                "lease_deadline = NULL, deliveries = MAX(deliveries - ?, 0) "
                "WHERE queue = ? AND state = 'reserved' AND " + where,
                (0 if count_delivery else 1, self.name) + params)
            return cursor.rowcount

    def requeue(self, token, count_delivery=True, owner=None):
        return self._return_where('id = ? AND (? IS NULL OR owner = ?)', _row_id(token),
                                  owner, owner, count_delivery=count_delivery) > 0

    def release_owner(self, owner, count_delivery=True):
        return self._return_where('owner = ?', owner, count_delivery=count_delivery)

    def reclaim_expired(self, now):
        return self._return_where('lease_deadline < ?', now)

    def renew(self, owner, lease, now):
        cursor = self._conn().execute(
            "UPDATE messages SET lease_deadline = ? "
            "WHERE queue = ? AND state = 'reserved' AND owner = ?",
            (now + lease, self.name, owner))
        return cursor.rowcount

    def queue_size(self):
        return self._count("SELECT COUNT(*) FROM messages "
                           "WHERE queue = ? AND state = 'pending'", self.name)

    def reserved_size(self):
        return self._count("SELECT COUNT(*) FROM messages "
                           "WHERE queue = ? AND state = 'reserved'", self.name)

    def queue_items(self, limit=None):
        rows = self._conn().execute(
            "SELECT data FROM messages WHERE queue = ? AND state = 'pending' "
            "ORDER BY priority DESC, id LIMIT ?", (self.name, _limit(limit)))
        return [data for data, in rows]

    def flush_queue(self):
        self._conn().execute(
            "DELETE FROM messages WHERE queue = ? AND state IN ('pending', 'reserved')",
            (self.name,))

    # -- schedule ------------------------------------------------------
    def schedule_add(self, data, eta, priority=0):
        with self._write() as conn:
            return self._insert(conn, data, priority, 'scheduled', float(eta))

    def schedule_move_due(self, now, limit=1000):
        # The message keeps its id, so its token and its place among equals.
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE messages SET state = 'pending', eta = NULL WHERE id IN ("
                " SELECT id FROM messages"
                " WHERE queue = ? AND state = 'scheduled' AND eta <= ?"
                " ORDER BY eta, id LIMIT ?)",
                (self.name, now, _limit(limit)))
            return cursor.rowcount

    def schedule_size(self):
        return self._count("SELECT COUNT(*) FROM messages "
                           "WHERE queue = ? AND state = 'scheduled'", self.name)

    def schedule_items(self, limit=None):
        rows = self._conn().execute(
            "SELECT eta, data FROM messages WHERE queue = ? AND state = 'scheduled' "
            "ORDER BY eta, id LIMIT ?", (self.name, _limit(limit)))
        return [(eta, data) for eta, data in rows]

    def flush_schedule(self):
        self._conn().execute(
            "DELETE FROM messages WHERE queue = ? AND state = 'scheduled'", (self.name,))

    # -- key/value -----------------------------------------------------
    def _claim(self, conn, key, value, ttl) -> bool:
        """Set ``key`` unless a live row holds it; call inside ``_write``."""
        now = time.time()
        # Opportunistic clean-up: expired rows of this name, the key's included.
        conn.execute('DELETE FROM kv WHERE queue = ? AND expires <= ?', (self.name, now))
        expires = now + ttl if ttl else None  # as in memory: no ttl, no expiry
        cursor = conn.execute(
            'INSERT OR IGNORE INTO kv (queue, key, value, expires) VALUES (?, ?, ?, ?)',
            (self.name, key, bytes(value), expires))
        return cursor.rowcount > 0

    def put_data(self, key, value):
        self._conn().execute(
            'INSERT OR REPLACE INTO kv (queue, key, value, expires) VALUES (?, ?, ?, NULL)',
            (self.name, key, bytes(value)))

    def peek_data(self, key):
        row = self._one('SELECT value FROM kv WHERE queue = ? AND key = ? AND '
                        + _NOT_EXPIRED, self.name, key, time.time())
        return None if row is None else row[0]

    def pop_data(self, key):
        # Read and delete together, so two poppers never both get the value.
        with self._write() as conn:
            row = conn.execute(
                'SELECT value FROM kv WHERE queue = ? AND key = ? AND ' + _NOT_EXPIRED,
                (self.name, key, time.time())).fetchone()
            conn.execute('DELETE FROM kv WHERE queue = ? AND key = ?', (self.name, key))
            return None if row is None else row[0]

    def delete_data(self, key):
        with self._write() as conn:
            live = conn.execute(
                'SELECT 1 FROM kv WHERE queue = ? AND key = ? AND ' + _NOT_EXPIRED,
                (self.name, key, time.time())).fetchone()
            conn.execute('DELETE FROM kv WHERE queue = ? AND key = ?', (self.name, key))
            return live is not None  # an expired key was already absent

    def put_if_empty(self, key, value, ttl=None):
        with self._write() as conn:
            return self._claim(conn, key, value, ttl)

    def result_count(self):
        return self._count('SELECT COUNT(*) FROM kv WHERE queue = ? AND expires IS NULL',
                           self.name)

    def flush_results(self):
        self._conn().execute('DELETE FROM kv WHERE queue = ?', (self.name,))

    # -- dead letters --------------------------------------------------
    def _add_dead(self, conn, data, reason, now, priority) -> str:
        cursor = conn.execute(
            'INSERT INTO dead_letters (queue, data, reason, time, priority) '
            'VALUES (?, ?, ?, ?, ?)',
            (self.name, bytes(data), str(reason), float(now), int(priority or 0)))
        return _token(cursor.lastrowid)

    def dead_letter(self, token, reason, now, owner=None):
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, data, priority FROM messages "
                "WHERE id = ? AND queue = ? AND state = 'reserved' "
                "AND (? IS NULL OR owner = ?)",
                (_row_id(token), self.name, owner, owner)).fetchone()
            if row is None:
                return None
            conn.execute('DELETE FROM messages WHERE id = ?', (row[0],))
            return self._add_dead(conn, row[1], reason, now, row[2])

    def dead_letter_add(self, data, reason, now, priority=0):
        with self._write() as conn:
            return self._add_dead(conn, data, reason, now, priority)

    def dead_letters(self):
        rows = self._conn().execute(
            'SELECT id, data, reason, time, priority FROM dead_letters '
            'WHERE queue = ? ORDER BY id', (self.name,))
        return [DeadLetter(_token(i), data, reason, when, priority)
                for i, data, reason, when, priority in rows]

    def requeue_dead_letters(self, ids=None):
        with self._write() as conn:
            rows = conn.execute(
                'SELECT id, data, priority FROM dead_letters WHERE queue = ? ORDER BY id',
                (self.name,)).fetchall()
            if ids is not None:
                wanted = {_row_id(i) for i in ids}
                rows = [row for row in rows if row[0] in wanted]
            for row_id, data, priority in rows:
                self._insert(conn, data, priority)  # a new token: back of the line
                conn.execute('DELETE FROM dead_letters WHERE id = ?', (row_id,))
            return len(rows)

    def purge_dead_letters(self):
        cursor = self._conn().execute('DELETE FROM dead_letters WHERE queue = ?',
                                      (self.name,))
        return cursor.rowcount

    # -- lifecycle -----------------------------------------------------
    def flush_all(self):
        # One transaction: another process never sees half of a flush.
        with self._write() as conn:
            for table in ('messages', 'kv', 'dead_letters'):
                conn.execute('DELETE FROM %s WHERE queue = ?' % table, (self.name,))


def _guard(method):
    """Turn "database is locked" (another process held the write lock past
    ``timeout``) into StorageUnavailable, from any verb: a pause, not a
    fault, which callers that retry (the consumer) treat like an outage."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if 'locked' not in str(exc) and 'busy' not in str(exc):
                raise
            raise StorageUnavailable(
                'SQLite database %s stayed locked by another process for %ss; '
                'raise timeout= or look for a process holding a long transaction'
                % (os.path.abspath(self.filename), self.timeout)) from exc
    return guarded


# Every verb of the storage interface (and the few extras) gets the guard.
for _name in [n for n, v in vars(Storage).items()
              if callable(v) and not n.startswith('_') and n in vars(SqliteStorage)]:
    setattr(SqliteStorage, _name, _guard(getattr(SqliteStorage, _name)))
del _name
