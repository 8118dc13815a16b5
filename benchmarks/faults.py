"""Fault injection against the real consumer: nothing enqueued may be lost.

Each scenario starts ``python -m consumer app.huey ...`` (in its own process
group) on a private Redis (a ``redis-server`` of its own on a free port, in a
temp dir) or on a SQLite file, enqueues tasks from this process, injects a
fault (SIGKILLed workers, a SIGKILLed consumer, a Redis outage, ...) and waits,
with deadlines, until every task has run.

The app module is written into a temp dir. Its task ``work(i, ms)`` sleeps
``ms`` milliseconds and appends ``"i pid start_time"`` to a ledger file (one
``os.write`` on an ``O_APPEND`` descriptor, so lines never interleave).
From the ledger: completed = distinct ``i``, lost = enqueued - completed,
ran more than once = ``i`` seen twice or more (allowed: delivery is at least
once). The periodic scenario's task appends ``"tick <epoch minute> pid"``.

Usage, from the repository root::

    python benchmarks/faults.py [--quick] [--backend redis|sqlite|both] [--only NAME ...]

prints one table and the total lost; the exit code is 1 when anything was lost,
a scenario could not run to its end, or a row notes a PROBLEM (a stuck
reservation, a task run before its eta, a periodic slot run twice, a consumer
that died or stopped badly). ``tests/test_faults.py`` runs every
scenario at ``scale='quick'``.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: make `huey` and `tests` importable
    sys.path.insert(0, ROOT)

import psutil  # noqa: E402
import redis  # noqa: E402

from huey import RedisHuey, SqliteHuey  # noqa: E402
from huey.message import deserialize  # noqa: E402
from tests.redis_server import find_redis_server, free_port  # noqa: E402

BACKENDS = ('redis', 'sqlite')
TASK_NAME = 'app.work'
WORKERS = 4
LEASE = 3.0
TASK_MS = (10, 30)
GRACEFUL = 5.0


def consumer_args(workers: int = WORKERS, lease: float = LEASE) -> List[str]:
    """Options of every consumer here: short leases so lost reservations come
    back quickly, fast SQLite polling, a scheduler tick every 0.2 s."""
    return ['-w', str(workers), '--lease', str(lease), '--graceful-timeout', str(GRACEFUL),
            '-s', '0.2', '-d', '0.01', '-m', '0.2']


APP_SOURCE = textwrap.dedent('''\
    """Written by benchmarks/faults.py: the app its consumers import."""
    import os
    import time

    from huey import RedisHuey, SqliteHuey, crontab

    NAME = os.environ['FAULTS_NAME']
    LEDGER = os.environ['FAULTS_LEDGER']
    if os.environ['FAULTS_BACKEND'] == 'redis':
        huey = RedisHuey(NAME, url=os.environ['FAULTS_REDIS_URL'], results=False)
    else:
        huey = SqliteHuey(NAME, filename=os.environ['FAULTS_SQLITE'], results=False)


    def append(line):
        # One write on an O_APPEND descriptor: lines of concurrent workers
        # never interleave.
        fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode('ascii'))
        finally:
            os.close(fd)


    @huey.task()
    def work(i, ms):
        started = time.time()
        time.sleep(ms / 1000.0)
        append('%d %d %.6f\\n' % (i, os.getpid(), started))


    if os.environ.get('FAULTS_PERIODIC'):
        @huey.periodic_task(crontab())
        def tick():
            append('tick %d %d\\n' % (int(time.time() // 60), os.getpid()))
''')


class ScenarioFailed(Exception):
    """A step did not happen in time (the row keeps what was measured)."""


# -- the result row -----------------------------------------------------------

@dataclass
class Row:
    scenario: str
    backend: str
    enqueued: int = 0
    completed: int = 0
    duplicates: int = 0
    dead: Optional[int] = None
    recovery: str = 'n/a'
    wall: Optional[float] = None
    early: Optional[int] = None
    stuck: int = 0  # messages still reserved after everything ran (see check_drained)
    notes: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    error: Optional[str] = None
    kept_dir: Optional[str] = None

    @property
    def lost(self) -> int:
        return max(self.enqueued - self.completed, 0)

    @property
    def ok(self) -> bool:
        return self.error is None and self.lost == 0


def fmt_seconds(values: Sequence[float]) -> str:
    """One value, or median/max of several."""
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return '%.2f' % values[0]
    return 'med %.2f max %.2f' % (statistics.median(values), max(values))


# -- waiting -------------------------------------------------------------------

def wait_until(condition: Callable[[], object], timeout: float, what,
               interval: float = 0.01):
    """Poll ``condition`` until truthy; ScenarioFailed after ``timeout`` s.
    ``what`` (a string, or a callable giving one when it is time to fail)
    says what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ScenarioFailed('timed out after %.0fs waiting for %s'
                                 % (timeout, what() if callable(what) else what))
        time.sleep(interval)


# -- the ledger ----------------------------------------------------------------

class Ledger:
    """Reads the ledger file incrementally."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0
        self.partial = b''
        self.counts: collections.Counter = collections.Counter()
        self.starts: Dict[int, List[float]] = collections.defaultdict(list)
        self.ticks: List[Tuple[int, int]] = []  # (epoch minute, pid)
        self.lines = 0

    def refresh(self) -> 'Ledger':
        try:
            with open(self.path, 'rb') as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b'\n')
        self.partial = lines.pop()
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            self.lines += 1
            if parts[0] == b'tick':
                self.ticks.append((int(parts[1]), int(parts[2])))
            else:
                i = int(parts[0])
                self.counts[i] += 1
                self.starts[i].append(float(parts[2]))
        return self

    @property
    def completed(self) -> int:
        return len(self.counts)

    @property
    def duplicates(self) -> int:
        return sum(1 for n in self.counts.values() if n > 1)


class InFlight:
    """The messages a killed consumer held, and when they had all run again."""

    def __init__(self, items: Sequence[int], ledger: Ledger, since: float):
        self.base = {i: ledger.counts[i] for i in items}
        self.since = since
        self.recovered: Optional[float] = None if self.base else 0.0

    def check(self, ledger: Ledger) -> bool:
        if self.recovered is None and all(ledger.counts[i] > n for i, n in self.base.items()):
            self.recovered = time.monotonic() - self.since
        return self.recovered is not None


# -- processes -------------------------------------------------------------------

def _live(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _any_alive(pids: Sequence[int]) -> bool:
    for pid in pids:
        try:
            if _live(psutil.Process(pid)):
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def _kill_worker(pid: int) -> None:
    """SIGKILL ``pid`` and its process group if it is still a huey worker
    (its title says so: never a recycled pid of someone else)."""
    try:
        proc = psutil.Process(pid)
        if not _live(proc) or 'huey' not in ' '.join(proc.cmdline()):
            return
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (psutil.Error, ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """Is any (non-zombie) process left in process group ``pgid``?"""
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and _live(proc):
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


class RedisServer:
    """A private redis-server: own port, own dir; stop() and start() again keep
    the port and the dir (with ``durable``, the data too: AOF fsync always)."""

    def __init__(self, dir: str, durable: bool = False):
        self.port = free_port()
        self.dir = dir
        self.durable = durable
        self.proc: Optional[subprocess.Popen] = None
        self.log = os.path.join(dir, 'redis.log')

    @property
    def url(self) -> str:
        return 'redis://127.0.0.1:%d/0' % self.port

    def answers(self) -> bool:
        client = redis.Redis(host='127.0.0.1', port=self.port, socket_timeout=1,
                             socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 15.0) -> 'RedisServer':
        persistence = (['--appendonly', 'yes', '--appendfsync', 'always'] if self.durable
                       else ['--appendonly', 'no'])
        self.proc = subprocess.Popen(
            [find_redis_server(), '--port', str(self.port), '--bind', '127.0.0.1',
             '--save', '', '--dir', self.dir, '--logfile', self.log] + persistence,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ScenarioFailed('private redis-server on port %d did not start (see %s)'
                                     % (self.port, self.log))
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """SIGTERM and wait (Redis writes its AOF and exits); SIGKILL if stuck."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Consumer:
    """One ``python -m consumer app.huey`` in its own process group."""

    def __init__(self, run: 'Run', label: str, args: Sequence[str]):
        self.run = run
        self.label = label
        self.args = list(args)
        self.log_path = os.path.join(run.dir, 'consumer-%s.log' % label)
        self.proc: Optional[subprocess.Popen] = None
        self._log = None
        self.exit_code: Optional[int] = None
        self.seen_workers: set = set()  # every worker pid seen, for the clean-up

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> 'Consumer':
        self._log = open(self.log_path, 'ab')
        cmd = [sys.executable, '-m', 'consumer', 'app.huey'] + self.args
        self.proc = subprocess.Popen(cmd, cwd=self.run.dir, env=self.run.env,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def workers(self) -> List[int]:
        """Pids of the supervisor's live children (its workers)."""
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = [c.pid for c in children if _live(c)]
        self.seen_workers.update(pids)
        return pids

    def wait_workers(self, n: int, timeout: float = 30.0) -> List[int]:
        def ready():
            if not self.alive():
                raise ScenarioFailed('consumer %s exited with %s before its workers started '
                                     '(log: %s)' % (self.label, self.proc.returncode,
                                                    self.log_tail()))
            pids = self.workers()
            return pids if len(pids) == n else None
        return wait_until(ready, timeout, '%d workers of consumer %s' % (n, self.label))

    def kill(self, timeout: float = 15.0) -> None:
        """SIGKILL the consumer's process group and wait until nothing of it
        is left: its workers (which may lead process groups of their own)
        must die with the supervisor (DESIGN.md: no orphans)."""
        workers = self.workers()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.exit_code = self.proc.wait(timeout)
        wait_until(lambda: not group_alive(self.proc.pid) and not _any_alive(workers), timeout,
                   lambda: 'killed consumer %s to be gone (workers left: %s)'
                   % (self.label, [p for p in workers if _any_alive([p])]), interval=0.02)

    def stop(self, timeout: float = GRACEFUL + 10) -> Optional[int]:
        """SIGTERM the supervisor (a graceful stop); its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.exit_code = None
        else:
            self.exit_code = self.proc.returncode
        return self.exit_code

    def cleanup(self) -> None:
        """Whatever happened: nothing of this consumer survives."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.workers()
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            for pid in self.seen_workers:  # a worker that outlived its supervisor
                _kill_worker(pid)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(offset)
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_tail(self, lines: int = 5) -> str:
        return ' | '.join(self.log_text().strip().splitlines()[-lines:])


# -- one scenario run ------------------------------------------------------------

class Run:
    """Temp dir, app module, storage (a private Redis or a SQLite file), the
    producer's Huey, the consumers. As a context manager it fills in the
    row's completed/duplicates/dead-lettered counts at the end, records an
    exception as the row's error, and always cleans every process up."""

    def __init__(self, row: Row, periodic: bool = False, durable_redis: bool = False,
                 keep: str = 'failed'):
        if keep not in ('always', 'failed', 'never'):
            raise ValueError("keep must be 'always', 'failed' or 'never', got %r" % (keep,))
        self.row = row
        self.backend = row.backend
        self.periodic = periodic
        self.durable_redis = durable_redis
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix='huey-faults-%s-%s-' % (row.scenario, row.backend))
        self.name = 'faults-%s' % row.scenario
        self.ledger_path = os.path.join(self.dir, 'ledger.txt')
        self.ledger = Ledger(self.ledger_path)
        self.redis: Optional[RedisServer] = None
        self.consumers: List[Consumer] = []
        self.huey = None
        self.work = None
        self.env: Dict[str, str] = {}
        self.count_results = True

    def __enter__(self) -> 'Run':
        try:
            self._setup()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _setup(self) -> None:
        with open(os.path.join(self.dir, 'app.py'), 'w') as f:
            f.write(APP_SOURCE)
        env = dict(os.environ, FAULTS_NAME=self.name, FAULTS_LEDGER=self.ledger_path,
                   FAULTS_BACKEND=self.backend, PYTHONUNBUFFERED='1',
                   PYTHONPATH=os.pathsep.join(
                       [self.dir, ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
        env.pop('FAULTS_PERIODIC', None)
        if self.periodic:
            env['FAULTS_PERIODIC'] = '1'
        if self.backend == 'redis':
            self.redis = RedisServer(self.dir, durable=self.durable_redis).start()
            env['FAULTS_REDIS_URL'] = self.redis.url
            self.huey = RedisHuey(self.name, url=self.redis.url, results=False)
        elif self.backend == 'sqlite':
            env['FAULTS_SQLITE'] = os.path.join(self.dir, 'huey.db')
            self.huey = SqliteHuey(self.name, filename=env['FAULTS_SQLITE'], results=False)
        else:
            raise ValueError('backend must be redis or sqlite, got %r' % self.backend)
        self.env = env

        # The producer's twin of app.work: same name, so the consumer runs it.
        @self.huey.task(name=TASK_NAME)
        def work(i, ms):  # pragma: no cover - runs in the consumer's copy
            raise AssertionError('runs in the consumer')
        self.work = work

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc is not None and isinstance(exc, Exception):
                if isinstance(exc, ScenarioFailed):
                    self.row.error = str(exc)
                else:
                    self.row.error = '%s: %s' % (type(exc).__name__, exc)
                    self.row.notes.append(traceback.format_exc().strip().splitlines()[-3])
            self.ledger.refresh()
            if self.count_results:
                self.row.completed = self.ledger.completed
                self.row.duplicates = self.ledger.duplicates
            try:
                self.row.dead = len(self.huey.dead_letters())
            except Exception as err:  # storage gone: say so, do not hide the row
                self.row.notes.append('dead letters unreadable: %s' % err)
        finally:
            failed = not self.row.ok or bool(self.row.problems)
            self._cleanup(keep_dir=self.keep == 'always' or (failed and self.keep == 'failed'))
        return exc is None or isinstance(exc, Exception)

    def _cleanup(self, keep_dir: bool = False) -> None:
        for consumer in self.consumers:
            consumer.cleanup()
        if self.huey is not None:
            try:
                self.huey.close()
            except Exception:
                pass
        if self.redis is not None:
            self.redis.stop()
        if keep_dir:
            self.row.kept_dir = self.dir
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers the scenarios share --------------------------------------------
    def consumer(self, label: str, args: Optional[Sequence[str]] = None) -> Consumer:
        c = Consumer(self, label, consumer_args() if args is None else args)
        self.consumers.append(c)
        return c.start()

    def enqueue(self, n: int, rng: random.Random, ms: Tuple[int, int] = TASK_MS) -> None:
        """``n`` tasks ``work(i, ms)`` in one round trip."""
        self.work.map([(i, rng.randint(*ms)) for i in range(n)])
        self.row.enqueued += n

    def completed(self) -> int:
        return self.ledger.refresh().completed

    def wait_completed(self, n: int, timeout: float, tick: Optional[Callable] = None) -> None:
        """Until ``n`` distinct tasks ran (calling ``tick()`` on each poll)."""
        def done():
            if tick is not None:
                tick()
            return self.completed() >= n
        wait_until(done, timeout, lambda: '%d of %d tasks to complete (%d so far)'
                   % (n, self.row.enqueued, self.ledger.completed))

    def reserved(self) -> List[Tuple[str, Optional[int]]]:
        """``(owner, i)`` of every reserved message, read straight from storage."""
        if self.backend == 'redis':
            client = redis.Redis.from_url(self.redis.url)
            try:
                prefix = 'huey.%s.' % self.name
                tokens = client.zrange(prefix + 'reserved', 0, -1)
                if not tokens:
                    return []
                owners = client.hmget(prefix + 'owner', tokens)
                datas = client.hmget(prefix + 'data', tokens)
            finally:
                client.close()
            rows = [((o or b'').decode(), d) for o, d in zip(owners, datas)]
        else:
            conn = sqlite3.connect(self.env['FAULTS_SQLITE'], timeout=10)
            try:
                rows = conn.execute("SELECT owner, data FROM messages "
                                    "WHERE queue = ? AND state = 'reserved'",
                                    (self.name,)).fetchall()
            finally:
                conn.close()
        out = []
        for owner, data in rows:
            i = None
            if data is not None:
                message = deserialize(data)
                if message.name == TASK_NAME:
                    i = message.args[0]
            out.append((owner or '', i))
        return out

    def held_by(self, consumer: Consumer) -> List[int]:
        """Tasks reserved by the workers of ``consumer`` (owner host:sup:worker)."""
        mine = ':%d:' % consumer.pid
        return [i for owner, i in self.reserved() if mine in owner and i is not None]

    def check_drained(self, timeout: float = 2 * LEASE + 5) -> None:
        """Once every task has run, nothing may stay pending or reserved: a
        reservation nobody works on must come back within a lease. Notes a
        problem (with the holders) when some stay reserved past ``timeout``."""
        def drained():
            return self.huey.pending_count() == 0 and self.huey.storage.reserved_size() == 0
        try:
            wait_until(drained, timeout, 'the queue to drain', interval=0.05)
        except ScenarioFailed:
            held = self.reserved()
            self.row.stuck = len(held)
            owners = collections.Counter(owner for owner, _ in held)
            self.row.problems.append(
                'stuck: %d pending and %d reserved %.0fs after the last task finished '
                '(holders: %s; tasks: %s)' % (
                    self.huey.pending_count(), len(held), timeout,
                    ', '.join('%s x%d' % item for item in sorted(owners.items())),
                    sorted(i for _, i in held if i is not None)[:10]))

    def check_consumers_survived(self, consumers: Sequence[Consumer]) -> None:
        for c in consumers:
            if not c.alive():
                self.row.problems.append('consumer %s died (exit %s)'
                                         % (c.label, c.proc.returncode))

    def stop_consumers(self, consumers: Sequence[Consumer]) -> None:
        """Graceful stop (SIGTERM); note any exit code but 0."""
        for c in consumers:
            code = c.stop()
            if code != 0:
                self.row.problems.append('consumer %s stop: exit %s' % (c.label, code))


def _deadline(tasks: int, workers: int = WORKERS) -> float:
    """Generous: the work itself, plus leases, plus slack for a slow machine."""
    return 60.0 + tasks * (sum(TASK_MS) / 2000.0) / workers * 4


# -- the scenarios ----------------------------------------------------------------

SCALES: Dict[str, Dict[str, dict]] = {
    'worker_kills': {'full': dict(tasks=2000, kills=20), 'quick': dict(tasks=200, kills=4)},
    'consumer_kills': {'full': dict(tasks=1000, kills=3), 'quick': dict(tasks=200, kills=2)},
    'two_consumers_one_killed': {'full': dict(tasks=1000), 'quick': dict(tasks=200)},
    'redis_outage': {'full': dict(tasks=1000, outage=20.0), 'quick': dict(tasks=200, outage=3.0)},
    'scheduled_across_restart': {
        'full': dict(tasks=1000, min_delay=1.0, max_delay=8.0, kill_after=2.0),
        'quick': dict(tasks=100, min_delay=1.0, max_delay=4.0, kill_after=2.0)},
    'periodic_two_consumers': {'full': dict(minutes=3), 'quick': dict(minutes=1)},
}


def params(scenario: str, scale: str, overrides: dict) -> dict:
    if scale not in ('full', 'quick'):
        raise ValueError("scale must be 'full' or 'quick', got %r" % scale)
    out = dict(SCALES[scenario][scale], seed=1234, keep='failed')
    out.update(overrides)
    return out


def worker_kills(backend: str, scale: str = 'full', **overrides) -> Row:
    """SIGKILL random workers through the run; the supervisor returns their
    messages at once and starts replacements. Recovery: kill -> 4 workers again."""
    p = params('worker_kills', scale, overrides)
    rng = random.Random(p['seed'])
    row = Row('worker_kills', backend)
    with Run(row, keep=p['keep']) as run:
        c = run.consumer('a')
        c.wait_workers(WORKERS)
        start = time.monotonic()
        run.enqueue(p['tasks'], rng)
        recoveries = []
        for k in range(1, p['kills'] + 1):
            run.wait_completed(k * p['tasks'] // (p['kills'] + 1), _deadline(p['tasks']))
            victim = rng.choice(c.workers())
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()

            def replaced():
                pids = c.workers()
                return victim not in pids and len(pids) == WORKERS
            wait_until(replaced, 30, 'worker %d to be replaced' % victim, interval=0.005)
            recoveries.append(time.monotonic() - killed)
        row.recovery = fmt_seconds(recoveries)
        run.wait_completed(p['tasks'], _deadline(p['tasks']))
        row.wall = time.monotonic() - start
        row.notes.append('%d worker SIGKILLs' % len(recoveries))
        run.check_drained()
        run.check_consumers_survived([c])
        run.stop_consumers([c])
    return row


def consumer_kills(backend: str, scale: str = 'full', **overrides) -> Row:
    """killpg the whole consumer (supervisor and workers) and start a new one,
    several times. Nobody saw the deaths: the held messages come back when
    their lease runs out. Recovery: restart -> the killed one's messages ran."""
    p = params('consumer_kills', scale, overrides)
    rng = random.Random(p['seed'])
    row = Row('consumer_kills', backend)
    with Run(row, keep=p['keep']) as run:
        c = run.consumer('a')
        c.wait_workers(WORKERS)
        start = time.monotonic()
        run.enqueue(p['tasks'], rng)
        pending: List[InFlight] = []
        done: List[InFlight] = []

        def tick():
            for f in list(pending):
                if f.check(run.ledger):
                    pending.remove(f)
                    done.append(f)

        held_counts = []
        for k in range(1, p['kills'] + 1):
            run.wait_completed(k * p['tasks'] // (p['kills'] + 1), _deadline(p['tasks']), tick)
            c.kill()
            held = run.held_by(c)
            held_counts.append(len(held))
            c = run.consumer(chr(ord('a') + k))
            pending.append(InFlight(held, run.ledger, time.monotonic()))
        run.wait_completed(p['tasks'], _deadline(p['tasks']), tick)
        wait_until(lambda: (run.ledger.refresh(), tick(), not pending)[-1], 3 * LEASE + 30,
                   'the killed consumers\' messages to run again')
        row.wall = time.monotonic() - start
        row.recovery = fmt_seconds([f.recovered for f in done if f.base])
        row.notes.append('%d consumer SIGKILLs, held %s' % (p['kills'], held_counts))
        run.check_drained()
        run.check_consumers_survived([c])
        run.stop_consumers([c])
    return row


def two_consumers_one_killed(backend: str, scale: str = 'full', **overrides) -> Row:
    """Two consumers on one queue; one is killpg'd a third of the way through
    and never restarted; the other finishes everything, including the dead
    one's messages once their lease ran out. Recovery: kill -> those ran."""
    p = params('two_consumers_one_killed', scale, overrides)
    rng = random.Random(p['seed'])
    row = Row('two_consumers_one_killed', backend)
    with Run(row, keep=p['keep']) as run:
        a, b = run.consumer('a'), run.consumer('b')
        a.wait_workers(WORKERS)
        b.wait_workers(WORKERS)
        start = time.monotonic()
        run.enqueue(p['tasks'], rng)
        run.wait_completed(p['tasks'] // 3, _deadline(p['tasks']))
        a.kill()
        held = run.held_by(a)
        flight = InFlight(held, run.ledger, time.monotonic())
        run.wait_completed(p['tasks'], _deadline(p['tasks']), lambda: flight.check(run.ledger))
        wait_until(lambda: flight.check(run.ledger.refresh()), 3 * LEASE + 30,
                   'the killed consumer\'s messages to run again')
        row.wall = time.monotonic() - start
        row.recovery = fmt_seconds([flight.recovered]) if held else 'n/a'
        row.notes.append('killed consumer held %d messages' % len(held))
        run.check_drained()
        run.check_consumers_survived([b])
        run.stop_consumers([b])
    return row


OUTAGE_WORDS = re.compile(r'storage|redis|lease|renew|unavailable|reach', re.I)
LOG_RECORD = re.compile(r'^\[[^\]]+\] (DEBUG|INFO|WARNING|ERROR|CRITICAL) ')


def redis_outage(backend: str, scale: str = 'full', **overrides) -> Row:
    """Stop the private redis-server (SIGTERM: it writes its AOF) mid-run, keep
    it down, start it again on the same port and dir. The same consumer
    process must carry on and finish everything; its log should say so in a
    handful of lines, not one per retry. Recovery: Redis back -> next task done."""
    p = params('redis_outage', scale, overrides)
    row = Row('redis_outage', backend)
    if backend != 'redis':
        row.notes.append('n/a: Redis only')
        return row
    rng = random.Random(p['seed'])
    with Run(row, durable_redis=True, keep=p['keep']) as run:
        c = run.consumer('a')
        before = sorted(c.wait_workers(WORKERS))
        supervisor = c.pid
        start = time.monotonic()
        run.enqueue(p['tasks'], rng)
        run.wait_completed(p['tasks'] // 3, _deadline(p['tasks']))
        log_offset = c.log_size()
        run.redis.stop()
        down_at = time.monotonic()
        done_at_stop = run.completed()
        time.sleep(p['outage'])  # the fault itself, not a synchronisation
        during = run.completed() - done_at_stop
        run.redis.start()
        back = time.monotonic()
        lines_at_back = run.ledger.refresh().lines
        wait_until(lambda: run.ledger.refresh().lines > lines_at_back,
                   60 + p['outage'], 'the first task to finish after Redis came back')
        row.recovery = fmt_seconds([time.monotonic() - back])
        run.wait_completed(p['tasks'], _deadline(p['tasks']) + p['outage'])
        row.wall = time.monotonic() - start
        same = c.alive() and c.pid == supervisor
        after = sorted(c.workers())
        log = c.log_text(log_offset).splitlines()
        records = [line for line in log if LOG_RECORD.match(line)]
        loud = [line for line in records if re.match(r'^\[[^\]]+\] (WARNING|ERROR|CRITICAL)', line)]
        mention = [line for line in records if OUTAGE_WORDS.search(line)]
        kinds = collections.Counter(_log_kind(line) for line in mention)
        row.notes.append('down %.0fs, %d tasks finished while down; consumer same process: %s; '
                         'workers replaced: %d; log since outage: %d lines mention it '
                         '(%d warning/error records, %d lines total): %s'
                         % (back - down_at, during, 'yes' if same else 'NO',
                            len(set(before) - set(after)), len(mention), len(loud), len(log),
                            ', '.join('%s x%d' % kv for kv in sorted(kinds.items()))))
        if not same:
            row.problems.append('consumer was not the same process after the outage')
        run.check_drained()
        run.stop_consumers([c])
    return row


def _log_kind(line: str) -> str:
    """A log record without its time, pid, numbers and error detail, so
    the same message from four workers counts as one kind."""
    match = re.match(r'^\[[^\]]+\] (\w+) \S+ [\w.]+: (.*)$', line)
    if not match:
        return line[:40]
    text = match.group(2).split(': ')[0]
    return '%s "%s"' % (match.group(1), re.sub(r'\d+(\.\d+)?', 'N', text)[:60])


def scheduled_across_restart(backend: str, scale: str = 'full', **overrides) -> Row:
    """Schedule tasks over the next seconds; SIGKILL the consumer group ~2 s in
    and start it again. Every task runs, none before its eta."""
    p = params('scheduled_across_restart', scale, overrides)
    rng = random.Random(p['seed'])
    row = Row('scheduled_across_restart', backend)
    with Run(row, keep=p['keep']) as run:
        c = run.consumer('a')
        c.wait_workers(WORKERS)
        start = time.monotonic()
        t0 = time.time()
        etas = {}
        for i in range(p['tasks']):
            eta = t0 + rng.uniform(p['min_delay'], p['max_delay'])
            etas[i] = eta
            run.huey.enqueue(run.work.task_class((i, rng.randint(*TASK_MS)), {}, eta=eta))
            row.enqueued += 1
        scheduling = time.monotonic() - start
        wait_until(lambda: time.monotonic() - start >= p['kill_after'], p['kill_after'] + 1,
                   'the kill time')
        c.kill()
        held = run.held_by(c)
        c = run.consumer('b')
        flight = InFlight(held, run.ledger, time.monotonic())
        run.wait_completed(p['tasks'], _deadline(p['tasks']) + p['max_delay'],
                           lambda: flight.check(run.ledger))
        wait_until(lambda: flight.check(run.ledger.refresh()), 3 * LEASE + 30,
                   'the killed consumer\'s messages to run again')
        row.wall = time.monotonic() - start
        row.recovery = fmt_seconds([flight.recovered]) if held else 'n/a'
        early = [i for i, starts in run.ledger.starts.items() if min(starts) < etas[i] - 1e-5]
        row.early = len(early)
        late = [min(s) - etas[i] for i, s in run.ledger.starts.items()]
        row.notes.append('scheduling took %.1fs; killed holding %d; early runs %d; '
                         'lateness med %.2fs max %.2fs'
                         % (scheduling, len(held), len(early), statistics.median(late), max(late)))
        if early:
            row.problems.append('%d tasks ran before their eta' % len(early))
        run.check_drained()
        run.check_consumers_survived([c])
        run.stop_consumers([c])
    return row


def periodic_two_consumers(backend: str, scale: str = 'full', **overrides) -> Row:
    """Two consumers with a periodic task every minute; one is killpg'd partway.
    Each minute must get exactly one tick, and the survivor keeps ticking.
    enqueued/completed count minute slots; "ran more than once" = slots with
    two ticks or more."""
    p = params('periodic_two_consumers', scale, overrides)
    minutes = p['minutes']
    kill_after = minutes // 2  # boundaries before the kill: full 1 of 3, quick 0 of 1
    row = Row('periodic_two_consumers', backend)
    with Run(row, periodic=True, keep=p['keep']) as run:
        run.count_results = False
        start = time.monotonic()
        first_minute = int(time.time() // 60)
        args = consumer_args(workers=2)
        a, b = run.consumer('a', args), run.consumer('b', args)
        a.wait_workers(2)
        b.wait_workers(2)

        def ticked(minute: int) -> bool:
            return any(m == minute for m, _ in run.ledger.refresh().ticks)

        awaited: List[int] = []

        def next_boundary() -> None:
            minute = int(time.time() // 60) + 1
            wait_until(lambda: ticked(minute), (minute * 60 - time.time()) + 30,
                       'the tick of minute %d' % minute, interval=0.05)
            awaited.append(minute)

        for _ in range(kill_after):
            next_boundary()
        # Kill away from a boundary, so no tick is in flight in the victim.
        if time.time() % 60 > 50:
            next_boundary()
        wait_until(lambda: time.time() % 60 >= 2, 5, 'two seconds past the boundary')
        survivors = set(b.workers())
        a.kill()
        killed_minute = int(time.time() // 60)
        for _ in range(minutes - kill_after):
            next_boundary()
        # A second tick of a slot would come from the other scheduler within
        # its interval: give it a moment, and let the queue drain.
        settle = time.monotonic() + 2.0
        wait_until(lambda: time.monotonic() > settle and run.huey.pending_count() == 0,
                   30, 'the queue to drain')
        last = awaited[-1]
        ticks = collections.Counter(m for m, _ in run.ledger.refresh().ticks)
        slots = list(range(first_minute + 1, last + 1))
        if ticks.get(first_minute):
            slots.insert(0, first_minute)
        row.enqueued = len(slots)
        row.completed = sum(1 for m in slots if ticks.get(m))
        row.duplicates = sum(1 for n in ticks.values() if n > 1)
        after_kill = [(m, pid) for m, pid in run.ledger.ticks if m > killed_minute]
        by_survivor = sum(1 for _, pid in after_kill if pid in survivors or pid in b.workers())
        row.wall = time.monotonic() - start
        row.notes.append('%d minute slots %s; ticks after the kill by the survivor: %d/%d'
                         % (len(slots), _minutes_text(slots), by_survivor, len(after_kill)))
        if row.duplicates:
            row.problems.append('%d minutes ticked more than once' % row.duplicates)
        if not after_kill or by_survivor != len(after_kill):
            row.problems.append('the survivor did not keep ticking')
        run.check_drained()
        run.check_consumers_survived([b])
        run.stop_consumers([b])
    return row


def _minutes_text(minutes: Sequence[int]) -> str:
    if not minutes:
        return '(none)'
    hm = [time.strftime('%H:%M', time.gmtime(m * 60)) for m in minutes]
    return '%s..%s UTC' % (hm[0], hm[-1]) if len(hm) > 1 else hm[0] + ' UTC'


SCENARIOS: Dict[str, Callable[..., Row]] = {
    'worker_kills': worker_kills,
    'consumer_kills': consumer_kills,
    'two_consumers_one_killed': two_consumers_one_killed,
    'redis_outage': redis_outage,
    'scheduled_across_restart': scheduled_across_restart,
    'periodic_two_consumers': periodic_two_consumers,
}
PARALLEL_OK = ('periodic_two_consumers',)  # waits on the clock: backends side by side


def run_scenario(name: str, backend: str, scale: str = 'full', **overrides) -> Row:
    """One scenario; an unexpected error becomes the row's error, never a crash."""
    try:
        return SCENARIOS[name](backend, scale, **overrides)
    except Exception as exc:  # the Run context already cleaned up
        row = Row(name, backend)
        row.error = '%s: %s' % (type(exc).__name__, exc)
        return row


# -- the table ---------------------------------------------------------------------

COLUMNS = ('scenario', 'backend', 'enqueued', 'completed', 'lost', 'ran >1', 'dead-lettered',
           'recovery (s)', 'wall (s)', 'notes')


def row_cells(row: Row) -> List[str]:
    skipped = row.enqueued == 0 and row.error is None and row.wall is None
    if skipped:
        return [row.scenario, row.backend, '-', '-', '-', '-', '-', 'n/a', '-',
                '; '.join(row.notes)]
    notes = list(row.notes)
    notes += ['PROBLEM: ' + p for p in row.problems]
    if row.error:
        notes.append('ERROR: ' + row.error)
    if row.kept_dir:
        notes.append('files kept in ' + row.kept_dir)
    return [row.scenario, row.backend, str(row.enqueued), str(row.completed), str(row.lost),
            str(row.duplicates), '?' if row.dead is None else str(row.dead), row.recovery,
            '-' if row.wall is None else '%.1f' % row.wall, '; '.join(notes)]


def format_table(rows: Sequence[Row]) -> str:
    cells = [list(COLUMNS)] + [row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS) - 1)]
    lines = []
    for n, line in enumerate(cells):
        head = ' | '.join(c.ljust(w) if i < 2 else c.rjust(w)
                          for i, (c, w) in enumerate(zip(line, widths)))
        lines.append(head + ' | ' + line[-1])
        if n == 0:
            lines.append('-+-'.join('-' * w for w in widths) + '-+-' + '-' * 5)
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help="the short version (the tests' sizes)")
    parser.add_argument('--backend', choices=('redis', 'sqlite', 'both'), default='both')
    parser.add_argument('--only', nargs='+', choices=sorted(SCENARIOS), metavar='NAME',
                        help='run only these scenarios: %s' % ', '.join(SCENARIOS))
    parser.add_argument('--keep', action='store_true',
                        help='keep every temp dir (logs, ledger); runs with a problem '
                             'always keep theirs')
    args = parser.parse_args(argv)
    scale = 'quick' if args.quick else 'full'
    backends = BACKENDS if args.backend == 'both' else (args.backend,)
    names = [n for n in SCENARIOS if not args.only or n in args.only]
    jobs = [(n, b) for n in names for b in backends]
    keep = 'always' if args.keep else 'failed'
    results: Dict[Tuple[str, str], Row] = {}
    for name, backend in jobs:
        if name in PARALLEL_OK:
            continue
        print('running %s on %s ...' % (name, backend), file=sys.stderr, flush=True)
        results[(name, backend)] = run_scenario(name, backend, scale, keep=keep)
    parallel = [j for j in jobs if j[0] in PARALLEL_OK]
    if parallel:
        print('running %s side by side ...' % ', '.join('%s on %s' % j for j in parallel),
              file=sys.stderr, flush=True)
        with ThreadPoolExecutor(len(parallel)) as pool:
            futures = {j: pool.submit(run_scenario, j[0], j[1], scale, keep=keep)
                       for j in parallel}
            for j, future in futures.items():
                results[j] = future.result()
    rows = [results[j] for j in jobs]
    print(format_table(rows))
    lost = sum(r.lost for r in rows)
    errors = [r for r in rows if r.error]
    troubled = [r for r in rows if r.problems]
    print('total lost: %d%s%s' % (
        lost, '; %d scenarios did not finish (see ERROR)' % len(errors) if errors else '',
        '; %d rows show a PROBLEM' % len(troubled) if troubled else ''))
    # A stuck reservation, an early run or a periodic slot run twice fails the
    # run as surely as a lost task does.
    return 1 if lost or errors or troubled else 0


if __name__ == '__main__':
    sys.exit(main())
