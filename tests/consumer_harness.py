"""Run the real consumer as a subprocess against a test app, and watch it.

``write_app(directory)`` writes ``app.py``: a Huey object named by the
environment (``HUEY_TEST_NAME``; Redis at ``HUEY_TEST_REDIS_URL``, or SQLite
at ``HUEY_TEST_SQLITE`` when ``HUEY_TEST_BACKEND=sqlite``) and a few tasks
whose runs the tests count through an output file (``HUEY_TEST_OUT``): each
run appends one ``marker pid`` line with a single O_APPEND write, so lines
from concurrent workers never interleave.

:class:`Consumer` starts ``python -m consumer app.huey ...`` in its own
process group with its output in a log file, and offers waits with deadlines
(never fixed sleeps), the worker pids (psutil children of the supervisor),
signals, and a cleanup that kills the whole group and every worker it ever
saw. The ``consumers`` fixture yields a factory and always cleans up.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import types
from typing import Dict, List, Optional, Sequence, Tuple

import psutil
import pytest

from tests.helpers import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'huey_consumer.py')

APP_SOURCE = textwrap.dedent('''\
    """Test app for the consumer tests (written by tests/consumer_harness.py)."""
    import os
    import signal
    import time

    from huey import RedisHuey, SqliteHuey, crontab

    NAME = os.environ['HUEY_TEST_NAME']
    if os.environ.get('HUEY_TEST_BACKEND', 'redis') == 'sqlite':
        huey = SqliteHuey(NAME, filename=os.environ['HUEY_TEST_SQLITE'])
    else:
        huey = RedisHuey(NAME, url=os.environ['HUEY_TEST_REDIS_URL'])


    def _record(marker):
        """Append one 'marker pid' line in a single write."""
        line = ('%s %d\\n' % (marker, os.getpid())).encode()
        fd = os.open(os.environ['HUEY_TEST_OUT'], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


    @huey.task()
    def add(a, b):
        return a + b


    @huey.task()
    def record(marker):
        _record(marker)


    @huey.task()
    def slow(seconds, marker='slow'):
        _record(marker + '.start')
        time.sleep(seconds)
        _record(marker + '.end')


    @huey.task()
    @huey.lock_task('exclusive')
    def locked_slow(seconds, marker='locked'):
        _record(marker + '.start')
        time.sleep(seconds)
        _record(marker + '.end')


    @huey.task()
    def spawn_sleeper(seconds, marker='child'):
        """Starts a child process, records its pid and signal mask, waits."""
        import subprocess
        child = subprocess.Popen(['sleep', str(seconds)])
        with open('/proc/%d/status' % child.pid) as f:
            ignored = [l.split()[1] for l in f if l.startswith('SigIgn:')][0]
        _record('%s.%d.%s' % (marker, child.pid, ignored))
        child.wait()


    @huey.task()
    def shout(text):
        """print() only: what reaches the consumer's stdout, and when."""
        print(text)


    @huey.task()
    def ignore_term(seconds, marker='deaf'):
        """Ignores SIGTERM for good (as some libraries do), then works."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _record(marker + '.start')
        time.sleep(seconds)
        _record(marker + '.end')


    @huey.task()
    def c_sleep(seconds, marker='csleep'):
        """sleep(3) in C: a signal cuts it short (EINTR), returning what is left."""
        import ctypes
        _record(marker + '.start')
        left = ctypes.CDLL(None).sleep(seconds)
        _record('%s.end.%d' % (marker, left))


    @huey.task()
    def die():
        """A poison task: kills its own worker."""
        os.kill(os.getpid(), signal.SIGKILL)


    @huey.task()
    def fail(token):
        raise ValueError('boom-%s' % token)


    @huey.periodic_task(crontab(minute='*'))
    def tick():
        _record('tick')


    @huey.signal('revoked')
    def die_once_when_revoked(signal_name, task):
        """With HUEY_TEST_DIE_ON_REVOKE naming a file: the first worker to skip
        a revoked task dies right then, between the check and the ack."""
        flag = os.environ.get('HUEY_TEST_DIE_ON_REVOKE')
        if flag and not os.path.exists(flag):
            open(flag, 'w').close()
            os.kill(os.getpid(), signal.SIGKILL)


    @huey.on_startup()
    def boot():
        _record('boot')
        if os.environ.get('HUEY_TEST_BOOT_FAIL'):
            raise RuntimeError('HUEY_TEST_BOOT_FAIL is set: this worker refuses to start')
''')

# The tasks of app.py, as a producer in the test process declares them:
# same names, bodies never run here.
CLIENT_TASKS = ('add', 'record', 'slow', 'locked_slow', 'spawn_sleeper', 'die', 'fail',
                'shout', 'ignore_term', 'c_sleep')


def write_app(directory) -> str:
    path = os.path.join(str(directory), 'app.py')
    with open(path, 'w') as f:
        f.write(APP_SOURCE)
    return path


def make_client(huey) -> types.SimpleNamespace:
    """A producer's view of app.py: ``client.huey`` plus its tasks registered
    by name (``client.add(1, 2)`` enqueues ``app.add``)."""
    def body(*args, **kwargs):  # pragma: no cover - runs only in the consumer
        raise AssertionError('client-side task bodies never run')
    tasks = {name: huey.task(name='app.%s' % name)(body) for name in CLIENT_TASKS}
    return types.SimpleNamespace(huey=huey, **tasks)


def read_records(path) -> List[Tuple[str, int]]:
    """The ``(marker, pid)`` lines tasks wrote so far."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        marker, _, pid = line.rpartition(' ')
        if marker and pid.isdigit():
            records.append((marker, int(pid)))
    return records


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Consumer:
    """One ``python -m consumer app.huey ...`` subprocess in its own session."""

    def __init__(self, cwd, args: Sequence[str], env: Dict[str, str], log_path: str,
                 python: str = sys.executable, app_path: str = 'app.huey',
                 split_stdout: bool = False, script: bool = False):
        self.cwd = str(cwd)
        self.args = [app_path] + list(args)
        self.log_path = log_path
        self.stdout_path = log_path + '.stdout' if split_stdout else None
        self.python = python
        self._log = open(log_path, 'wb')
        self._stdout = open(self.stdout_path, 'wb') if split_stdout else self._log
        self.started_at = time.monotonic()
        # ``python -m consumer``, or the installed-style script.
        command = [python, SCRIPT] if script else [python, '-m', 'consumer']
        self.proc = subprocess.Popen(
            command + self.args, cwd=self.cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._log,
            start_new_session=True)
        self.pid = self.proc.pid
        self.pgid = self.pid  # start_new_session: its own group, led by it
        self._supervisor = psutil.Process(self.pid)
        self.seen: Dict[int, psutil.Process] = {}  # every worker ever seen

    # -- observing -----------------------------------------------------
    def log(self) -> str:
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stdout(self) -> str:
        path = self.stdout_path or self.log_path
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def wait_for_log(self, regex: str, timeout: float = 15.0, flags: int = 0):
        """The first match of ``regex`` in the log; fail (showing the log)
        when it does not appear within ``timeout`` or the consumer exits."""
        pattern = re.compile(regex, flags)
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.log())
            if match:
                return match
            exited = self.proc.poll() is not None
            if exited:
                # One last read: the line may have landed just before exit.
                match = pattern.search(self.log())
                if match:
                    return match
            if exited or time.monotonic() > deadline:
                raise AssertionError('%s %r in the consumer log; log:\n%s' % (
                    'consumer exited (%s) without' % self.proc.returncode if exited
                    else 'timed out after %ss waiting for' % timeout, regex, self.log()))
            time.sleep(0.02)

    def worker_processes(self) -> List[psutil.Process]:
        """Live (not zombie) children of the supervisor."""
        try:
            children = self._supervisor.children()
        except psutil.NoSuchProcess:
            return []
        live = []
        for child in children:
            self.seen.setdefault(child.pid, child)
            if _alive(child):
                live.append(child)
        return live

    def worker_pids(self) -> List[int]:
        return sorted(p.pid for p in self.worker_processes())

    def wait_for_workers(self, count: int, timeout: float = 15.0,
                         exclude: Sequence[int] = ()) -> List[int]:
        """Wait until exactly ``count`` workers run, none of them in ``exclude``."""
        def ready():
            pids = self.worker_pids()
            return pids if len(pids) == count and not set(pids) & set(exclude) else None
        try:
            return wait_for(ready, timeout, message='%d workers (not %s)' % (count, list(exclude)))
        except AssertionError as exc:
            raise AssertionError('%s; have %s; log:\n%s' % (exc, self.worker_pids(), self.log()))

    def wait_for_started(self, count: int, timeout: float = 20.0) -> List[int]:
        """Wait until ``count`` workers logged that they started (booted and
        ready to reserve), and return the live worker pids."""
        wait_for(lambda: len(re.findall(r'worker \d+ started', self.log())) >= count,
                 timeout, message='%d workers to start' % count)
        return self.wait_for_workers(count, timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    # -- acting --------------------------------------------------------
    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """The exit code; fail (showing the log) if it is still running."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError('consumer still running after %ss; log:\n%s'
                                 % (timeout, self.log())) from None

    def cleanup(self, timeout: float = 10.0) -> None:
        """Kill the process group and every worker ever seen; reap."""
        self.worker_processes()  # note any workers not yet seen
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for proc in self.seen.values():
            try:
                proc.kill()  # psutil checks the pid was not reused
            except psutil.NoSuchProcess:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        psutil.wait_procs(list(self.seen.values()), timeout=timeout)
        for f in {self._log, self._stdout}:
            f.close()


class ConsumerFactory:
    """Starts consumers for one test; ``cleanup`` kills them all."""

    def __init__(self, directory, name: str, redis_url: Optional[str]):
        self.directory = directory
        self.name = name
        self.redis_url = redis_url
        self.out = os.path.join(str(directory), 'records.txt')
        self.sqlite_path = os.path.join(str(directory), 'huey.db')
        self.started: List[Consumer] = []
        write_app(directory)

    def env(self, backend: str = 'redis',
            extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ)
        for key in ('HUEY_TEST_BOOT_FAIL', 'PYTHONPATH', 'PYTHONHOME'):
            env.pop(key, None)
        env.update(HUEY_TEST_NAME=self.name, HUEY_TEST_OUT=self.out,
                   HUEY_TEST_BACKEND=backend, HUEY_TEST_SQLITE=self.sqlite_path,
                   PYTHONUNBUFFERED='1')
        if self.redis_url:
            env['HUEY_TEST_REDIS_URL'] = self.redis_url
        env.update(extra or {})
        return env

    def __call__(self, *args: str, backend: str = 'redis', periodic: bool = False,
                 env: Optional[Dict[str, str]] = None, python: Optional[str] = None,
                 app_path: str = 'app.huey', split_stdout: bool = False,
                 script: bool = False) -> Consumer:
        """Start ``python -m consumer app.huey *args``; without ``periodic``
        it gets ``-n`` so no periodic task lands in a test's queue."""
        args = list(args) + ([] if periodic else ['-n'])
        log_path = os.path.join(str(self.directory), 'consumer-%d.log' % len(self.started))
        consumer = Consumer(self.directory, args, self.env(backend, env), log_path,
                            python=python or sys.executable, app_path=app_path,
                            split_stdout=split_stdout, script=script)
        self.started.append(consumer)
        return consumer

    def records(self) -> List[Tuple[str, int]]:
        return read_records(self.out)

    def markers(self) -> List[str]:
        return [marker for marker, _ in self.records()]

    def wait_for_record(self, marker: str, timeout: float = 15.0, count: int = 1) -> List[int]:
        """Wait until ``marker`` was recorded ``count`` times; return the pids."""
        def found():
            pids = [pid for m, pid in self.records() if m == marker]
            return pids if len(pids) >= count else None
        try:
            return wait_for(found, timeout, message='record %r x%d' % (marker, count))
        except AssertionError as exc:
            logs = '\n'.join(c.log() for c in self.started)
            raise AssertionError('%s; records %s; logs:\n%s' % (exc, self.records()[-20:], logs))

    def cleanup(self) -> None:
        for consumer in self.started:
            consumer.cleanup()


@pytest.fixture
def consumers(tmp_path, unique_name, request):
    """A factory of consumers on this test's queue name; all cleaned up."""
    redis_url = request.getfixturevalue('redis_url')
    factory = ConsumerFactory(tmp_path, unique_name, redis_url)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def client(consumers, redis_url):
    """The producer's Huey on the consumers' Redis queue, with app.py's tasks;
    flushed after the test."""
    from huey import RedisHuey
    huey = RedisHuey(consumers.name, url=redis_url)
    try:
        yield make_client(huey)
    finally:
        huey.flush()
        huey.close()


@pytest.fixture
def sqlite_client(consumers):
    from huey import SqliteHuey
    huey = SqliteHuey(consumers.name, filename=consumers.sqlite_path)
    try:
        yield make_client(huey)
    finally:
        huey.close()
