"""The storage interface every backend implements.

A storage object holds everything of one queue *name*: pending messages,
reservations, the schedule of delayed messages, a small key/value space
(results, locks, revocations, periodic slots) and the dead letters.

Messages are opaque ``bytes`` here; :mod:`huey.message` gives them meaning.
Each stored message gets a *token* from the storage: a string unique within
the storage and ordered so that, within one priority, the older token sorts
first. A token follows its message from the queue into a reservation and back,
so a returned reservation keeps its place in line.

Time never comes from the backend: callers pass ``now`` (seconds since the
epoch, UTC) so that tests drive the clock and every backend agrees.

Delivery is a *reservation*, not a destructive pop: :meth:`Storage.reserve`
hands a message to an *owner* (a worker) under a lease; :meth:`Storage.ack`
ends it; a reservation whose owner died goes back with
:meth:`Storage.release_owner` (the supervisor saw the death) or
:meth:`Storage.reclaim_expired` (nobody did, the lease ran out).
"""
from __future__ import annotations

from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple


class Reservation(NamedTuple):
    """A message handed to one owner until it is acked or returned."""
    token: str
    data: bytes
    deliveries: int  # how many times this message was reserved, this one included
    owner: Optional[str] = None  # filled in by Huey.reserve


class DeadLetter(NamedTuple):
    """A message that could not run, kept for a person to inspect."""
    id: str
    data: bytes
    reason: str
    time: float
    priority: int


class Storage:
    """Base class: documents the verbs; backends implement them.

    ``blocking`` says whether :meth:`reserve` can wait for work without
    polling; the consumer polls with back-off when it cannot.
    """

    blocking = False

    def __init__(self, name: str):
        if not name or not isinstance(name, str):
            raise ValueError('storage name must be a non-empty string, got %r' % (name,))
        self.name = name

    # -- queue ---------------------------------------------------------
    def enqueue(self, data: bytes, priority: int = 0) -> str:
        """Add a message to the pending queue; return its token."""
        return self.enqueue_many([(data, priority)])[0]

    def enqueue_many(self, items: Sequence[Tuple[bytes, int]]) -> List[str]:
        """Add many ``(data, priority)`` messages in one round trip."""
        raise NotImplementedError

    def enqueue_once(self, key: str, ttl: float, data: bytes, priority: int = 0) -> Optional[str]:
        """Claim ``key`` for ``ttl`` seconds and enqueue ``data``, atomically.

        Returns the token, or ``None`` when the key was already claimed (so
        another consumer enqueued this periodic slot). Claim and enqueue happen
        together so a crash cannot claim a slot without enqueueing it.
        """
        raise NotImplementedError

    def reserve(self, owner: str, lease: float, now: float,
                timeout: float = 0) -> Optional[Reservation]:
        """Hand the next pending message to ``owner`` until ``now + lease``.

        Highest priority first, oldest first within a priority. Returns
        ``None`` when nothing is pending; a blocking backend may first wait up
        to ``timeout`` seconds for a message to arrive.
        """
        raise NotImplementedError

    def ack(self, token: str, owner: Optional[str] = None) -> bool:
        """Finish a reservation: the message is gone. False if unknown.

        With ``owner``, only that owner's reservation is finished: a worker
        whose lease ran out must not end the reservation of the worker that
        got the message next (it keeps its token)."""
        raise NotImplementedError

    def requeue(self, token: str, count_delivery: bool = True,
                owner: Optional[str] = None) -> bool:
        """Return a reserved message to the queue, at its old place.

        ``count_delivery=False`` takes back the delivery its reservation
        counted: the message was handed back, or its run was cut short by a
        stop, not by a crash, so it must not look like poison.
        """
        raise NotImplementedError

    def release_owner(self, owner: str, count_delivery: bool = True) -> int:
        """Return every reservation ``owner`` holds; how many were returned.
        ``count_delivery`` as for :meth:`requeue`."""
        raise NotImplementedError

    def renew(self, owner: str, lease: float, now: float) -> int:
        """Extend every lease ``owner`` holds to ``now + lease``."""
        raise NotImplementedError

    def reclaim_expired(self, now: float) -> int:
        """Return reservations whose lease ended before ``now``."""
        raise NotImplementedError

    def queue_size(self) -> int:
        """Pending messages (not reserved, not scheduled)."""
        raise NotImplementedError

    def reserved_size(self) -> int:
        raise NotImplementedError

    def queue_items(self, limit: Optional[int] = None) -> List[bytes]:
        """Pending messages in the order they would be reserved."""
        raise NotImplementedError

    def flush_queue(self) -> None:
        """Drop pending and reserved messages."""
        raise NotImplementedError

    # -- schedule ------------------------------------------------------
    def schedule_add(self, data: bytes, eta: float, priority: int = 0) -> str:
        """Keep a message until ``eta``; return its token."""
        raise NotImplementedError

    def schedule_move_due(self, now: float, limit: int = 1000) -> int:
        """Move up to ``limit`` messages with ``eta <= now`` into the queue.

        Atomic per message: two consumers calling this at once never move the
        same message twice, and a crash never leaves one in neither place.
        """
        raise NotImplementedError

    def schedule_size(self) -> int:
        raise NotImplementedError

    def schedule_items(self, limit: Optional[int] = None) -> List[Tuple[float, bytes]]:
        """``(eta, data)`` pairs, soonest first."""
        raise NotImplementedError

    def flush_schedule(self) -> None:
        raise NotImplementedError

    # -- key/value (results, locks, revocations) -----------------------
    def put_data(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    def peek_data(self, key: str) -> Optional[bytes]:
        """The value, or ``None`` when the key is not set."""
        raise NotImplementedError

    def peek_many(self, keys: Sequence[str]) -> List[Optional[bytes]]:
        """The values of ``keys`` in order (``None`` where not set); backends
        with round trips override it to read them all at once."""
        return [self.peek_data(key) for key in keys]

    def pop_data(self, key: str) -> Optional[bytes]:
        """Read and delete; ``None`` when the key is not set."""
        raise NotImplementedError

    def delete_data(self, key: str) -> bool:
        raise NotImplementedError

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        """Set ``key`` only when unset (or expired); True if this call set it."""
        raise NotImplementedError

    def has_data_for_key(self, key: str) -> bool:
        return self.peek_data(key) is not None

    def result_count(self) -> int:
        """Key/value entries kept until deleted (results, locks, revocations);
        entries with a TTL (claims, brief markers) are transient, not counted."""
        raise NotImplementedError

    def flush_results(self) -> None:
        raise NotImplementedError

    # -- dead letters --------------------------------------------------
    def dead_letter(self, token: str, reason: str, now: float,
                    owner: Optional[str] = None) -> Optional[str]:
        """Move a reserved message to the dead letters (ack and keep,
        atomically); ``owner`` as for :meth:`ack`."""
        raise NotImplementedError

    def dead_letter_add(self, data: bytes, reason: str, now: float, priority: int = 0) -> str:
        """Keep a message that never reached the queue as a dead letter."""
        raise NotImplementedError

    def dead_letters(self) -> List[DeadLetter]:
        """Oldest first."""
        raise NotImplementedError

    def requeue_dead_letters(self, ids: Optional[Iterable[str]] = None) -> int:
        """Put dead letters (all, or those in ``ids``) back on the queue."""
        raise NotImplementedError

    def purge_dead_letters(self) -> int:
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------
    def close(self) -> None:
        """Drop connections; the next call opens new ones (after a fork)."""

    def flush_all(self) -> None:
        """Delete everything stored under this name."""
        self.flush_queue()
        self.flush_schedule()
        self.flush_results()
        self.purge_dead_letters()

    def describe_server(self) -> str:
        """The server (or file) behind this storage, without its name."""
        return type(self).__name__

    def describe(self) -> str:
        """Where this storage lives, for log lines and error messages."""
        return '%s %r' % (type(self).__name__, self.name)
