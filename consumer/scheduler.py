"""The scheduler: moves due delayed tasks into the queue, returns expired
leases, and enqueues periodic tasks once per matching minute.

:meth:`Scheduler.loop` is one tick driven by an explicit ``now`` so tests can
walk it through a day in milliseconds; :class:`SchedulerThread` runs ticks in
the supervisor. Each tick runs while holding ``fork_gate``: the supervisor
takes the same lock before forking, so no fork happens while this thread holds
a logging or connection-pool lock (DESIGN.md: fork from a safe point).
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Callable, Optional

from huey.exceptions import StorageError

logger = logging.getLogger('huey.consumer.scheduler')

# After a long stall (a suspended laptop, a stopped VM) enqueue at most this
# many missed minutes of periodic tasks, not hours of them.
MAX_CATCH_UP_MINUTES = 10
FINAL_RETRY = 0.5  # seconds between tries to return messages during a stop


class Scheduler:
    def __init__(self, huey, periodic: bool = True, use_utc: bool = True):
        self.huey = huey
        self.periodic = periodic
        self.use_utc = use_utc
        self._next_minute: Optional[int] = None  # epoch minute not yet checked

    def loop(self, now: Optional[float] = None) -> None:
        """One tick: due messages, expired leases, periodic minutes up to ``now``."""
        now = time.time() if now is None else now
        moved = self.huey.move_due(now)
        if moved:
            logger.debug('moved %d due tasks into the queue', moved)
        reclaimed = self.huey.storage.reclaim_expired(now)
        if reclaimed:
            logger.warning('returned %d message%s whose lease ran out (a consumer died '
                           'unseen?) to the queue', reclaimed, '' if reclaimed == 1 else 's')
        if self.periodic:
            self.enqueue_periodic(now)

    def enqueue_periodic(self, now: float) -> None:
        """Check every minute from the last one checked through ``now``'s, so a
        late tick skips none and a second tick in one minute repeats none."""
        current = int(now // 60)
        if self._next_minute is None:
            self._next_minute = current
        if current - self._next_minute >= MAX_CATCH_UP_MINUTES:
            skipped = current - self._next_minute - MAX_CATCH_UP_MINUTES + 1
            logger.warning('scheduler was stalled: skipping periodic checks of %d '
                           'minutes', skipped)
            self._next_minute += skipped
        while self._next_minute <= current:
            dt = self.minute_datetime(self._next_minute)
            for task in self.huey.enqueue_periodic(dt):
                logger.info('enqueued periodic task %s for %s', task.name, dt.strftime('%H:%M'))
            self._next_minute += 1

    def minute_datetime(self, epoch_minute: int) -> datetime.datetime:
        """A naive datetime in the chosen clock, as crontabs expect."""
        ts = epoch_minute * 60
        if self.use_utc:
            return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(tzinfo=None)
        return datetime.datetime.fromtimestamp(ts)


class SchedulerThread(threading.Thread):
    """The supervisor's one storage thread: each tick runs the scheduler
    (unless scheduling was stopped) and the lease keeper, holding
    ``fork_gate``. Storage outages are logged once, and once more on recovery.
    """

    def __init__(self, scheduler: Scheduler, keeper, interval: float,
                 fork_gate: threading.Lock, clock: Callable[[], float] = time.time):
        super().__init__(name='huey-scheduler', daemon=True)
        self.scheduler = scheduler
        self.keeper = keeper
        self.interval = interval
        self.fork_gate = fork_gate
        self.clock = clock
        self.scheduling = True
        self._stop_event = threading.Event()
        self._wake_event = threading.Event()
        self._failing = False

    def stop_scheduling(self) -> None:
        """No more due or periodic tasks; lease keeping goes on."""
        self.scheduling = False

    def wake(self) -> None:
        """Tick now (a worker died: return its messages without waiting)."""
        self._wake_event.set()

    def stop(self) -> None:
        """Finish after one last tick (returning what departed workers held)."""
        self._stop_event.set()
        self._wake_event.set()

    def run(self) -> None:
        while True:
            stopping = self._stop_event.is_set()
            with self.fork_gate:
                self._tick()
            if stopping and not self.keeper.pending():
                return
            # Stopping with messages not yet returned (storage unreachable):
            # keep trying while the supervisor waits for us.
            self._wake_event.wait(FINAL_RETRY if stopping else self._pause())
            self._wake_event.clear()

    def _pause(self) -> float:
        # Wake at the minute boundary if it comes before the next tick, so
        # periodic tasks start on time rather than up to `interval` late.
        # Also tick often enough for the lease keeper to renew in time,
        # whatever -s says.
        now = self.clock()
        to_minute = 60 - (now % 60) + 0.01
        base = self.interval * (5 if self._failing else 1)
        return max(0.01, min(base, to_minute, self.keeper.lease / 4))

    def _tick(self) -> None:
        try:
            # Leases first: after an outage our own running tasks' leases are
            # overdue, and the scheduler's reclaim must not take them back.
            self.keeper.tick()
            if self.scheduling:
                self.scheduler.loop(self.clock())
        except StorageError as exc:
            if not self._failing:
                logger.error('consumer cannot reach storage: %s (retrying; running '
                             'tasks go on)', exc)
            self._failing = True
            return
        except Exception:
            logger.exception('scheduler tick failed; continuing')
            return
        if self._failing:
            logger.warning('consumer reached storage again; resuming')
        self._failing = False
