"""Lease keeping: renew the leases of live workers, return the messages of
dead ones.

This is storage work, and storage can hang (a frozen Redis waits out its
socket timeout), so it runs on the scheduler thread, never on the
supervisor's main loop: the main loop only hands over who is alive and who
died, and stays free to act on signals at once.
"""
from __future__ import annotations

import collections
import logging
import time
from typing import Deque, FrozenSet, Iterable, NamedTuple

logger = logging.getLogger('huey.consumer.leases')


class Departure(NamedTuple):
    owner: str
    number: int
    crashed: bool  # False when the supervisor cut it short: no delivery counted


class LeaseKeeper:
    def __init__(self, huey, lease: float):
        self.huey = huey
        self.lease = lease
        self._owners: FrozenSet[str] = frozenset()  # replaced whole, never mutated
        self._departed: Deque[Departure] = collections.deque()
        self._last_renewal = time.monotonic()

    # -- called by the supervisor's main loop (cheap, never touches storage)
    def set_owners(self, owners: Iterable[str]) -> None:
        self._owners = frozenset(owners)

    def departed(self, owner: str, number: int, crashed: bool) -> None:
        self._departed.append(Departure(owner, number, crashed))

    def pending(self) -> int:
        return len(self._departed)

    # -- called on the scheduler thread ------------------------------------
    def tick(self) -> None:
        """Return departed workers' messages, then renew if due. Raises
        StorageError (the caller logs outages once)."""
        self.return_departed()
        if time.monotonic() - self._last_renewal >= self.lease / 3:
            self.renew()

    def return_departed(self) -> None:
        while self._departed:
            departure = self._departed[0]
            self._return(departure)
            self._departed.popleft()  # only once storage took it

    def _return(self, departure: Departure) -> None:
        freed = self.huey.release_locks_of(departure.owner)
        returned = self.huey.storage.release_owner(departure.owner,
                                                   count_delivery=departure.crashed)
        if freed:
            logger.warning('freed locks %s held by worker %d', ', '.join(freed), departure.number)
        if returned:
            logger.warning('returned %d message%s of worker %d to the queue', returned,
                           '' if returned == 1 else 's', departure.number)

    def renew(self) -> None:
        for owner in self._owners:
            self.huey.storage.renew(owner, self.lease, time.time())
        self._last_renewal = time.monotonic()
