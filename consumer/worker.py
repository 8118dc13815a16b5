"""A worker process: reserve a message, run it, ack it; again.

Forked by the supervisor with the registry already imported. It drops the
connections it inherited, runs the app's startup hooks, reports ``ready`` on
its pipe, then loops until asked to stop (SIGTERM) or its parent is gone.
Messages about the worker's state go to the supervisor over that pipe, one
byte each: ``R`` ready, ``B`` busy, ``I`` idle; or ``F`` and one line, the
error that kept it from starting.
"""
from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import sys
import threading
import time
from typing import Optional

from consumer import exitcodes
from consumer.logs import setup_logging
from consumer.proctitle import set_title, worker_title
from huey.exceptions import StorageError

logger = logging.getLogger('huey.consumer.worker')

PR_SET_PDEATHSIG = 1
BLOCKING_WAIT = 1.0  # seconds a blocking reserve waits before re-checking stop flags


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the supervisor dies, so a
    `kill -9` of the supervisor leaves no orphan. Elsewhere the loop's
    parent check does it, between tasks."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class TitleTicker(threading.Thread):
    """Refreshes the busy title each second so `ps` shows how long the task
    has run. Touches only the title; never logs, never locks."""

    def __init__(self, number: int):
        super().__init__(name='huey-title', daemon=True)
        self.number = number
        self.task_name: Optional[str] = None
        self.started = 0.0
        self.done = threading.Event()

    def busy(self, task_name: str) -> None:
        self.task_name, self.started = task_name, time.monotonic()
        set_title(worker_title(self.number, task_name, 0.0))

    def idle(self) -> None:
        self.task_name = None
        set_title(worker_title(self.number))

    def run(self) -> None:
        while not self.done.wait(1.0):
            name = self.task_name
            if name is not None:
                set_title(worker_title(self.number, name, time.monotonic() - self.started))


class Worker:
    def __init__(self, huey, config, number: int, supervisor_pid: int, pipe_fd: int,
                 stop_flag=None):
        self.huey = huey
        self.config = config
        self.number = number
        self.supervisor_pid = supervisor_pid
        self.pipe_fd = pipe_fd
        self.owner = owner_id(supervisor_pid, os.getpid())
        self._term_received = False
        self._stop_flag = stop_flag  # a shared byte the supervisor sets
        self.current_task = None
        self._wake_r, self._wake_w = os.pipe()
        self._poll_delay = config.delay
        self._storage_down_since: Optional[float] = None
        self._reserve_may_be_lost = False
        self.ticker = TitleTicker(number)

    # -- lifecycle ---------------------------------------------------------
    def run(self) -> int:
        """The whole life of the process; returns its exit code."""
        try:
            self.initialize()
        except Exception as exc:
            logger.exception('worker %d failed to start', self.number)
            self.tell(b'F' + _one_line(exc).encode('utf-8', 'replace') + b'\n')
            return exitcodes.WORKER_BOOT_ERROR
        self.tell(b'R')
        logger.info('worker %d started', self.number)
        try:
            while not self.stop_requested and self.parent_alive():
                self.loop()
        finally:
            self.shutdown()
        return exitcodes.OK

    def initialize(self) -> None:
        die_with_parent()
        # Ctrl-C and SIGHUP are the supervisor's to handle. A handler that
        # does nothing, not SIG_IGN: programs a task starts must get the
        # default dispositions back (an ignored signal stays ignored on exec).
        signal.signal(signal.SIGINT, _ignore)
        signal.signal(signal.SIGHUP, _ignore)
        signal.signal(signal.SIGTERM, self._on_term)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        set_title(worker_title(self.number))
        setup_logging(self.config, 'worker-%d' % self.number, owner_of_file=False)
        self.huey.close()  # never share the parent's sockets or sqlite handles
        self.huey.worker_owner = self.owner  # locks taken here name this worker
        self.huey.run_startup_hooks()
        self.ticker.start()

    def _on_term(self, signum, frame) -> None:
        self._term_received = True

    @property
    def stop_requested(self) -> bool:
        """SIGTERM, or the supervisor's flag: the signal is lost when a task
        had SIGTERM ignored while it arrived; the flag never is."""
        return self._term_received or bool(self._stop_flag and self._stop_flag[0])

    def shutdown(self) -> None:
        self.ticker.done.set()
        self.huey.run_shutdown_hooks()
        logger.info('worker %d stopped', self.number)

    def parent_alive(self) -> bool:
        return os.getppid() == self.supervisor_pid

    def tell(self, state: bytes) -> None:
        try:
            os.write(self.pipe_fd, state)
        except OSError:
            pass  # the supervisor is gone; the parent check ends the loop

    # -- the loop --------------------------------------------------------
    def loop(self) -> None:
        """Reserve one message and run it, or wait for one."""
        try:
            if self._reserve_may_be_lost:
                self.return_lost_reservations()
            reservation = self.huey.reserve(self.owner, self.config.lease,
                                            timeout=self._reserve_timeout())
        except StorageError as exc:
            # The reserve may have run in storage with its reply lost: the
            # message would sit under our name, renewed by the supervisor,
            # never run. Return whatever we hold before reserving again.
            self._reserve_may_be_lost = True
            self._storage_failed(exc)
            return
        self._storage_ok()
        if reservation is None:
            self._idle_wait()
            return
        if self.stop_requested:
            self.hand_back(reservation)
            return
        self._poll_delay = self.config.delay
        self.run_reservation(reservation)

    def return_lost_reservations(self) -> None:
        """Between tasks this worker holds nothing: what storage says it holds
        is a message whose finish never reached storage, or came from a
        reserve whose reply never arrived. Either way it goes back."""
        returned = self.huey.storage.release_owner(self.owner, count_delivery=False)
        self._reserve_may_be_lost = False
        if returned:
            logger.warning('worker %d returned %d message(s) it could not finish or '
                           'never received during the outage; they run again',
                           self.number, returned)

    def hand_back(self, reservation) -> None:
        """Asked to stop while a blocking reserve waited: take no new work."""
        try:
            self.huey.storage.requeue(reservation.token, count_delivery=False,
                                      owner=self.owner)
        except StorageError:
            pass  # the supervisor returns it when this worker has exited

    def _reserve_timeout(self) -> float:
        return BLOCKING_WAIT if self.huey.storage.blocking else 0

    def run_reservation(self, reservation) -> None:
        self.tell(b'B')
        try:
            outcome = self.huey.process(reservation, self.config.max_deliveries,
                                        on_start=self._started)
        except StorageError as exc:
            # Its result or ack did not reach storage, so the message is still
            # reserved in our name (and the supervisor renews it). Return it
            # as soon as storage answers again, before reserving anything
            # else: it runs again (at least once), nobody waits for a lease.
            logger.debug('storage lost while finishing %s: it will run again', self.current_task)
            self._reserve_may_be_lost = True
            self._storage_failed(exc)
            outcome = None
        finally:
            self.ticker.idle()
            self.after_task()
            self.tell(b'I')
        if outcome is not None:
            logger.debug('%s finished as %s after %.3fs', self.current_task or 'message',
                         outcome.status, outcome.duration)
        self.current_task = None

    def after_task(self) -> None:
        """Undo what a task may have changed in the process that the worker
        relies on: its signal handlers (a task that ignored SIGTERM would
        leave a worker that never stops) and unflushed print() output (kept
        in a buffer, it would be lost if the worker is killed)."""
        for sig, handler in ((signal.SIGTERM, self._on_term), (signal.SIGINT, _ignore),
                             (signal.SIGHUP, _ignore)):
            if signal.getsignal(sig) != handler:  # bound methods: ==, not is
                logger.warning('task %s changed the handler of %s; restored',
                               self.current_task, signal.Signals(sig).name)
                signal.signal(sig, handler)
        flush_std_streams()

    def _started(self, task) -> None:
        logger.debug('running %s', task)
        self.current_task = task
        self.ticker.busy(task.name)

    def _idle_wait(self) -> None:
        if self.huey.storage.blocking:
            return  # the reserve call already waited
        self.sleep(self._poll_delay)
        self._poll_delay = min(self._poll_delay * self.config.backoff, self.config.max_delay)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on a signal (its byte lands on the wakeup fd)."""
        poller = select.poll()  # not select(): the fd may be past 1024
        poller.register(self._wake_r, select.POLLIN)
        if poller.poll(seconds * 1000):
            try:
                os.read(self._wake_r, 64)
            except BlockingIOError:
                pass

    def _storage_failed(self, exc: StorageError) -> None:
        if self._storage_down_since is None:
            self._storage_down_since = time.monotonic()
            self._poll_delay = self.config.delay
            logger.error('worker %d cannot reach storage: %s (retrying with back-off)',
                         self.number, exc)
        self.sleep(self._poll_delay)
        self._poll_delay = min(max(self._poll_delay, 0.1) * 2, self.config.max_delay)

    def _storage_ok(self) -> None:
        if self._storage_down_since is not None:
            logger.warning('worker %d reached storage again after %.1fs', self.number,
                           time.monotonic() - self._storage_down_since)
            self._storage_down_since = None
            self._poll_delay = self.config.delay


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass  # None, closed or replaced by a task: nothing to keep


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = '%s: %s' % (type(exc).__name__, exc)
    return ' '.join(text.split())[:limit]


def _ignore(signum, frame) -> None:
    """For signals the supervisor handles on the worker's behalf."""


def owner_id(supervisor_pid: int, worker_pid: int) -> str:
    """Who holds a reservation: unique per worker process across machines."""
    return '%s:%d:%d' % (os.uname().nodename, supervisor_pid, worker_pid)


def worker_main(huey, config, number: int, supervisor_pid: int, pipe_fd: int,
                stop_flag=None) -> None:
    """Entry point in the forked child; never returns."""
    code = exitcodes.ERROR
    try:
        code = Worker(huey, config, number, supervisor_pid, pipe_fd, stop_flag).run()
    except BaseException:
        logger.exception('worker %d crashed', number)
    finally:
        try:
            logging.shutdown()
            flush_std_streams()
        finally:
            os._exit(code)  # whatever happens, never back into the supervisor's code
