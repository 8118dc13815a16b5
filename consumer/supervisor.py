"""The supervisor: forks the workers, replaces the ones that die, runs the
scheduler thread, renews leases, and acts on signals.

Signal handlers only append the signal to a list; the main loop (``loop``)
wakes on the signal wakeup fd and acts. Forks happen in the main thread while
holding the scheduler's ``fork_gate``, with the handled signals blocked until
the child has reset its handlers (the fork/signal race dramatiq's issue 441
describes).
"""
from __future__ import annotations

import collections
import logging
import mmap
import os
import select
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Deque, Dict, Optional

from consumer import exitcodes
from consumer.leases import LeaseKeeper
from consumer.logs import rotate_if_due
from consumer.proctitle import set_title, supervisor_title
from consumer.scheduler import Scheduler, SchedulerThread
from consumer.worker import owner_id, worker_main

logger = logging.getLogger('huey.consumer.supervisor')

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
LOOP_WAIT = 0.2          # longest the main loop sleeps between checks
BOOT_BACKOFF_MAX = 10.0  # seconds between restarts of a worker that keeps failing to start
# After the workers are gone, how long the storage thread may take to return
# their messages; past it (storage hung) they come back when their lease ends.
FINAL_RETURN_WAIT = 5.0
FORK_GATE_WAIT = 0.1     # how long one pass of the main loop waits to fork


@dataclass
class WorkerProcess:
    """What the supervisor knows of one worker."""
    number: int
    pid: int
    pipe: int
    owner: str
    started: float = field(default_factory=time.monotonic)
    booted: bool = False
    busy: bool = False
    retiring: bool = False
    # One shared byte the supervisor sets to ask the worker to stop. A signal
    # alone can be lost: a task may ignore SIGTERM while it runs.
    stop_flag: Optional[mmap.mmap] = None
    boot_error: str = ''  # why it could not start, as it told us
    cut_short: bool = False  # SIGKILLed by the supervisor itself, at a stop


def describe_exit(status: int, cut_short: bool = False, busy: bool = True) -> str:
    """Why a child ended, with a hint for the usual suspects."""
    if cut_short:
        return ('was stopped by the supervisor before its task finished' if busy
                else 'was stopped by the supervisor')
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = {signal.SIGKILL: ' (out of memory? or killed by hand)',
                signal.SIGSEGV: ' (a crash in a C extension?)'}.get(sig, '')
        return 'killed by %s%s' % (name, hint)
    code = os.WEXITSTATUS(status)
    if code == exitcodes.WORKER_BOOT_ERROR:
        return 'exited with code %d (failed to start: see its error above)' % code
    return 'exited with code %d' % code


class Supervisor:
    def __init__(self, huey, config, log_handler=None):
        self.huey = huey
        self.config = config
        self.log_handler = log_handler
        self.pid = os.getpid()
        self.pending_signals: Deque[int] = collections.deque()
        self.workers: Dict[int, WorkerProcess] = {}
        self.free_numbers = list(range(1, config.workers + 1))
        self.fork_gate = threading.Lock()
        self.scheduler_thread: Optional[SchedulerThread] = None
        self.boot_failures = 0
        self.next_spawn_at = 0.0
        self.stopping = False
        self.stop_at_once = False
        self.exit_code = exitcodes.OK
        self.keeper = LeaseKeeper(huey, config.lease)
        self._wake_r, self._wake_w = os.pipe()

    # -- lifecycle -------------------------------------------------------
    def run(self) -> int:
        # Python 3.12+ warns on every fork from a process with threads. Our
        # forks wait on fork_gate, so the storage thread holds no lock then
        # (see the module docstring): the warning does not apply.
        warnings.filterwarnings('ignore', category=DeprecationWarning,
                                message=r'.*use of fork\(\) may lead to deadlocks')
        self.install_signals()
        set_title(supervisor_title(self.config.app_path, self.config.workers))
        logger.info('starting %d workers for %s on %s', self.config.workers,
                    self.config.app_path, self.huey.storage.describe())
        self.start_scheduler()
        try:
            while not self.stopping:
                self.loop()
        finally:
            self.stop_workers()
        logger.info('consumer stopped')
        return self.exit_code

    def install_signals(self) -> None:
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)  # _drain must never block the loop
        signal.set_wakeup_fd(self._wake_w)
        for sig in HANDLED:
            signal.signal(sig, self._record_signal)

    def _record_signal(self, signum, frame) -> None:
        self.pending_signals.append(signum)  # nothing else: the loop acts

    def start_scheduler(self) -> None:
        scheduler = Scheduler(self.huey, periodic=self.config.periodic,
                              use_utc=self.config.use_utc)
        self.scheduler_thread = SchedulerThread(scheduler, self.keeper,
                                                self.config.scheduler_interval, self.fork_gate)
        self.scheduler_thread.start()

    # -- the main loop ---------------------------------------------------
    def loop(self, wait: float = LOOP_WAIT) -> None:
        self.wait_for_events(wait)
        self.handle_signals()
        self.reap()
        if not self.stopping:
            self.spawn_missing()
            rotate_if_due(self.log_handler)

    def wait_for_events(self, wait: float) -> None:
        # poll, not select: select() refuses descriptors past 1024, which a
        # large -w (or an app holding many files) reaches.
        poller = select.poll()
        for fd in [self._wake_r] + [w.pipe for w in self.workers.values()]:
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(wait * 1000):
            if fd == self._wake_r:
                _drain(fd)
            else:
                self.read_worker_pipe(fd)

    def read_worker_pipe(self, fd: int) -> None:
        worker = next((w for w in self.workers.values() if w.pipe == fd), None)
        data = _drain(fd)
        if worker is None:
            return
        self.apply_worker_news(worker, data)
        if data and worker.booted and not worker.busy:
            # Only for a live (unreaped) worker: a reaped pid may be reused.
            wake_if_stopping(worker)  # it may have read the flag just before we set it

    def apply_worker_news(self, worker: WorkerProcess, data: bytes) -> None:
        """State bytes (R ready, B busy, I idle), or F and a line of text: the
        error that kept the worker from starting, its last words."""
        states, failed, error = data.partition(b'F')
        for byte in states:
            if byte == ord('R'):
                worker.booted = True
                self.boot_failures = 0
            elif byte in (ord('B'), ord('I')):
                worker.busy = byte == ord('B')
        if failed:
            worker.boot_error = error.split(b'\n')[0].decode('utf-8', 'replace')

    def handle_signals(self) -> None:
        while self.pending_signals:
            sig = self.pending_signals.popleft()
            if sig in (signal.SIGTERM, signal.SIGINT):
                self.handle_stop(sig)
            elif sig == signal.SIGHUP:
                self.handle_hup()
            # SIGCHLD needs no action here: reap() runs on every pass.

    def handle_stop(self, sig: int) -> None:
        if self.stopping:
            # A second TERM/INT handled in the same pass as the first (both
            # arrived before the loop woke): stop_workers must still see it.
            self.stop_at_once = True
            return
        logger.info('received %s: stopping gracefully (up to %ss for running tasks; '
                    'send it again to stop at once)', signal.Signals(sig).name,
                    self.config.graceful_timeout)
        self.stopping = True

    def handle_hup(self) -> None:
        logger.info('received SIGHUP: restarting workers gracefully')
        for worker in self.workers.values():
            if not worker.retiring:
                worker.retiring = True
                ask_to_stop(worker)

    # -- workers -----------------------------------------------------------
    def spawn_missing(self) -> None:
        while self.free_numbers and time.monotonic() >= self.next_spawn_at:
            # The storage thread holds the gate for a whole tick, which a hung
            # storage can stretch to a socket timeout: try again next pass
            # rather than stall signal handling here.
            if not self.fork_gate.acquire(timeout=FORK_GATE_WAIT):
                return
            try:
                self.spawn(self.free_numbers.pop(0))
            finally:
                self.fork_gate.release()

    def spawn(self, number: int) -> Optional[WorkerProcess]:
        """Fork one worker. The caller holds ``fork_gate``: no other thread of
        ours is inside a lock-holding section while we fork."""
        try:
            read_fd, write_fd = os.pipe()
        except OSError as exc:  # out of file descriptors (ulimit -n)
            return self.spawn_failed(number, exc)
        stop_flag = mmap.mmap(-1, 1)  # anonymous and shared: survives the fork
        os.set_blocking(read_fd, False)
        # Blocked until the child has replaced the supervisor's handlers: a
        # signal in between must not run them in the child.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            stop_flag.close()
            return self.spawn_failed(number, exc)
        finally:
            if os.getpid() == self.pid:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if pid == 0:
            try:
                self._become_worker(number, read_fd, write_fd, previous, stop_flag)
            finally:
                os._exit(exitcodes.ERROR)  # the child never returns into this loop
        try:
            os.setpgid(pid, pid)  # also here, so no killpg can come before the child's own
        except (PermissionError, ProcessLookupError):
            pass
        os.close(write_fd)
        worker = WorkerProcess(number, pid, read_fd, owner_id(self.pid, pid),
                               stop_flag=stop_flag)
        self.workers[pid] = worker
        self.keeper.set_owners(w.owner for w in self.workers.values())
        logger.debug('started worker %d (pid %d)', number, pid)
        return worker

    def spawn_failed(self, number: int, exc: OSError) -> None:
        """Out of processes, memory or file descriptors: keep running with
        the workers we have, and try again later."""
        self.free_numbers.insert(0, number)
        self.next_spawn_at = time.monotonic() + BOOT_BACKOFF_MAX
        logger.error('cannot start worker %d: %s; retrying in %ss', number, exc,
                     BOOT_BACKOFF_MAX)
        return None

    def _become_worker(self, number, read_fd, write_fd, previous_mask, stop_flag) -> None:
        # Its own process group, so the processes a task starts can be
        # stopped with it; the supervisor still handles Ctrl-C for everyone.
        os.setpgid(0, 0)
        # Out of the terminal's foreground group, a read of the terminal would
        # stop the worker (SIGTTIN) for good: workers read nothing.
        _stdin_from_devnull()
        os.close(read_fd)
        for worker in self.workers.values():
            os.close(worker.pipe)
            worker.stop_flag.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        worker_main(self.huey, self.config, number, self.pid, write_fd, stop_flag)

    def reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self.worker_exited(worker, status)

    def worker_exited(self, worker: WorkerProcess, status: int) -> None:
        self.apply_worker_news(worker, _drain(worker.pipe))  # what it said last
        os.close(worker.pipe)
        worker.stop_flag.close()
        self.free_numbers.append(worker.number)
        self.free_numbers.sort()
        # Its messages go back on the storage thread, at once (wake): this
        # loop must never wait on storage.
        self.keeper.set_owners(w.owner for w in self.workers.values())
        # Cut short by us is not the task's fault: it does not count toward
        # --max-deliveries.
        self.keeper.departed(worker.owner, worker.number, crashed=not worker.cut_short)
        if self.scheduler_thread is not None:
            self.scheduler_thread.wake()
        expected = worker.retiring or self.stopping
        level = logging.INFO if expected and os.WIFEXITED(status) else logging.WARNING
        logger.log(level, 'worker %d (pid %d) %s', worker.number, worker.pid,
                   describe_exit(status, worker.cut_short, worker.busy))
        # Whatever the task started in the worker's process group dies with it.
        _killpg(worker.pid, signal.SIGKILL)
        if not worker.booted and not worker.retiring and not self.stopping:
            self.boot_failed(worker, status)

    def boot_failed(self, worker: WorkerProcess, status: int) -> None:
        self.boot_failures += 1
        if self.boot_failures >= self.config.max_boot_failures:
            logger.critical('workers failed to start %d times in a row (last: %s); '
                            'stopping the consumer. Fix the error logged above (a '
                            'startup hook, the storage connection) and start it again',
                            self.boot_failures, worker.boot_error or describe_exit(status))
            self.exit_code = exitcodes.WORKER_BOOT_ERROR
            self.stopping = True
            return
        delay = min(0.5 * 2 ** (self.boot_failures - 1), BOOT_BACKOFF_MAX)
        logger.warning('worker %d failed to start (%d in a row: %s); next attempt in %.1fs',
                       worker.number, self.boot_failures,
                       worker.boot_error or describe_exit(status), delay)
        self.next_spawn_at = time.monotonic() + delay

    # -- stopping ------------------------------------------------------------
    def stop_workers(self) -> None:
        """Stop scheduling, let running tasks finish within the grace period
        (a second TERM/INT cuts it short), stop what is left, and return the
        messages of every worker before exiting."""
        set_title(supervisor_title(self.config.app_path, self.config.workers, 'stopping'))
        if self.scheduler_thread is not None:
            self.scheduler_thread.stop_scheduling()  # leases are still renewed
        for worker in self.workers.values():
            ask_to_stop(worker)
        deadline = time.monotonic() + self.config.graceful_timeout
        while self.workers and time.monotonic() < deadline:
            if self.second_stop_signal():
                logger.warning('second stop signal: stopping running tasks now; their '
                               'messages go back to the queue')
                break
            self.wait_for_events(LOOP_WAIT)
            self.reap()
        else:
            busy = sum(1 for w in self.workers.values() if w.busy)
            if busy:
                logger.warning('grace period of %ss is over: stopping %d running task%s; '
                               'their messages go back to the queue',
                               self.config.graceful_timeout, busy, '' if busy == 1 else 's')
        for worker in self.workers.values():
            worker.cut_short = True
            _killpg(worker.pid, signal.SIGKILL)
            _kill(worker.pid, signal.SIGKILL)
        while self.workers:
            pid, status = os.waitpid(-1, 0)
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self.worker_exited(worker, status)
        self.finish_storage_work()

    def finish_storage_work(self) -> None:
        """Let the storage thread return the last workers' messages, for a
        bounded time: a hung storage must not hold up the exit."""
        if self.scheduler_thread is None:
            return
        self.scheduler_thread.stop()
        self.scheduler_thread.join(FINAL_RETURN_WAIT)
        if self.keeper.pending():
            logger.error('could not return the messages of %d workers (storage '
                         'unreachable); they come back when their lease (%ss) runs out',
                         self.keeper.pending(), self.config.lease)

    def second_stop_signal(self) -> bool:
        """Consume recorded signals; True if a stop signal came again. (Other
        signals need nothing during a stop: reaping runs on every pass.)"""
        seen = self.stop_at_once
        while self.pending_signals:
            if self.pending_signals.popleft() in (signal.SIGTERM, signal.SIGINT):
                seen = True
        return seen


def ask_to_stop(worker: WorkerProcess) -> None:
    """The worker finishes its task (or its start-up), then exits. The flag
    is what counts: the worker reads it before every reserve. SIGTERM only
    wakes a worker that waits for work; a busy one is not sent it (it would
    interrupt a blocking call in its task, EINTR) nor a booting one (whose
    handler is not installed yet): they get it when they report idle or
    ready (see wake_if_stopping)."""
    worker.stop_flag[0] = 1
    if worker.booted and not worker.busy:
        _kill(worker.pid, signal.SIGTERM)


def wake_if_stopping(worker: WorkerProcess) -> None:
    if worker.stop_flag[0]:
        _kill(worker.pid, signal.SIGTERM)


def _stdin_from_devnull() -> None:
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return
    os.dup2(fd, 0)
    os.close(fd)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _killpg(pgid: int, sig: int) -> None:
    """Signal a worker's process group (the worker leads its own group)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            break
        if not data:
            break
        chunks.append(data)
        if len(data) < 4096:
            break
    return b''.join(chunks)
