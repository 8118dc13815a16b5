"""The real consumer, run as a subprocess against a real Redis (or SQLite),
sent real signals.

Every wait has a deadline (``wait_for`` / ``wait_for_log``), never a fixed
sleep; measured figures are printed (see them with ``pytest -s``).
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time

import psutil
import pytest

from consumer import exitcodes
from tests.consumer_harness import client, consumers, sqlite_client  # noqa: F401 (fixtures)
from tests.helpers import wait_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pids_alive(pids):
    """The pids among ``pids`` that still run (zombies count as dead)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def title_of(pid: int) -> str:
    """What ``ps`` shows for ``pid`` (setproctitle rewrites it)."""
    if shutil.which('ps'):
        out = subprocess.run(['ps', '-o', 'args=', '-p', str(pid)],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    return ' '.join(psutil.Process(pid).cmdline()).strip()


# -- 1, 2: running tasks ---------------------------------------------------

@pytest.mark.timeout(90)
def test_runs_tasks_on_three_workers(consumers, client):
    """50 `add`s enqueued by the test all come back with their results, and
    with -w 3 three workers run and more than one of them does work."""
    consumer = consumers('-w', '3')
    consumer.wait_for_started(3)
    results = [client.add(i, i * 10) for i in range(50)]
    assert [r.get(blocking=True, timeout=30) for r in results] == [i * 11 for i in range(50)]
    assert len(consumer.worker_pids()) == 3
    # 12 tasks of 0.3 s: one worker would need 3.6 s, so others pick some up.
    for i in range(12):
        client.slow(0.3, 'spread%d' % i)
    for i in range(12):
        consumers.wait_for_record('spread%d.end' % i, timeout=30)
    pids = {pid for marker, pid in consumers.records() if marker.startswith('spread')}
    assert len(pids) > 1, pids
    assert pids <= set(consumer.worker_pids())


@pytest.mark.timeout(90)
def test_runs_tasks_on_sqlite(consumers, sqlite_client):
    """The SQLite twin of the Redis test: polling with -d 0.05 -m 0.5."""
    client = sqlite_client
    consumer = consumers('-w', '3', '-d', '0.05', '-m', '0.5', backend='sqlite')
    consumer.wait_for_started(3)
    results = [client.add(i, 7) for i in range(50)]
    assert [r.get(blocking=True, timeout=30) for r in results] == [i + 7 for i in range(50)]
    assert len(consumer.worker_pids()) == 3
    for i in range(12):
        client.slow(0.3, 'spread%d' % i)
    for i in range(12):
        consumers.wait_for_record('spread%d.end' % i, timeout=30)
    pids = {pid for marker, pid in consumers.records() if marker.startswith('spread')}
    assert len(pids) > 1, pids


@pytest.mark.timeout(60)
def test_huey_consumer_script_runs_tasks(consumers, client):
    """`huey_consumer.py app.huey` (the seed's command), run from the app's
    directory, imports app and consumes."""
    consumer = consumers('-w', '1', script=True)
    consumer.wait_for_started(1)
    assert client.add(20, 22).get(blocking=True, timeout=20) == 42
    consumer.signal(signal.SIGINT)
    assert consumer.wait(20) == 0, consumer.log()


@pytest.mark.timeout(60)
def test_poison_task_goes_to_dead_letters(consumers, client):
    """A task that kills its worker every time: each death is followed by a
    replacement; after --max-deliveries it becomes a dead letter instead of
    killing workers forever, and the consumer keeps consuming."""
    consumer = consumers('-w', '1', '--max-deliveries', '2')
    first = consumer.wait_for_started(1)
    client.die()
    letters = wait_for(client.huey.dead_letters, 20, message='the poison message dead-lettered')
    assert len(letters) == 1 and 'poison message' in letters[0].reason
    assert len(re.findall(r'killed by SIGKILL', consumer.log())) == 2
    consumer.wait_for_workers(1, exclude=first)
    assert client.add(1, 2).get(blocking=True, timeout=20) == 3
    assert client.huey.pending_count() == 0


# -- 3, 4, 5: stopping -------------------------------------------------------

@pytest.mark.timeout(60)
def test_sigterm_lets_the_running_task_finish(consumers, client):
    """SIGTERM while `slow(3)` runs: the task records 'end', the consumer
    exits 0, and no worker is left."""
    consumer = consumers('-w', '2')
    consumer.wait_for_started(2)
    client.slow(3, 'graceful')
    consumers.wait_for_record('graceful.start')
    workers = consumer.worker_pids()
    sent = time.monotonic()
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(20) == 0, consumer.log()
    took = time.monotonic() - sent
    print('\ngraceful stop with a 3 s task running: SIGTERM -> exit in %.2fs' % took)
    assert 'graceful.end' in consumers.markers()
    assert pids_alive(workers) == []
    assert pids_alive(consumer.seen) == []
    assert client.huey.pending_count() == 0


@pytest.mark.timeout(60)
def test_second_sigterm_stops_at_once_and_returns_the_message(consumers, client):
    """SIGTERM, then SIGTERM again while `slow(60)` runs: the consumer exits 0
    within a few seconds and the task's message is back in the queue."""
    consumer = consumers('-w', '2')
    consumer.wait_for_started(2)
    client.slow(60, 'cut')
    consumers.wait_for_record('cut.start')
    sent = time.monotonic()
    consumer.signal(signal.SIGTERM)
    consumer.wait_for_log('stopping gracefully')
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(10) == 0, consumer.log()
    took = time.monotonic() - sent
    print('\ntwo SIGTERMs with a 60 s task running: exit in %.2fs' % took)
    assert took < 5, consumer.log()
    assert 'cut.end' not in consumers.markers()
    assert client.huey.pending_count() == 1
    assert client.huey.pending()[0].name == 'app.slow'


@pytest.mark.timeout(60)
def test_two_stop_signals_handled_in_one_pass_stop_at_once(consumers, client):
    """A TERM and an INT that the supervisor handles in the same pass of its
    loop still count as two: it stops at once instead of waiting out the
    30 s grace period. (The supervisor is SIGSTOPped while both arrive, so
    both are pending when it resumes; two TERMs would merge into one.)"""
    consumer = consumers('-w', '1')
    consumer.wait_for_started(1)
    client.slow(60, 'cut2')
    consumers.wait_for_record('cut2.start')
    os.kill(consumer.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: psutil.Process(consumer.pid).status() == psutil.STATUS_STOPPED, 5,
                 message='supervisor stopped')
        os.kill(consumer.pid, signal.SIGTERM)
        os.kill(consumer.pid, signal.SIGINT)
    finally:
        sent = time.monotonic()
        os.kill(consumer.pid, signal.SIGCONT)
    assert consumer.wait(15) == 0, consumer.log()
    took = time.monotonic() - sent
    print('\nTERM+INT in one pass: exit in %.2fs' % took)
    assert took < 5, consumer.log()
    assert client.huey.pending_count() == 1


@pytest.mark.timeout(60)
def test_graceful_timeout_returns_the_message(consumers, client):
    """--graceful-timeout 1 with `slow(60)` running: the consumer exits 0
    within ~3 s and the task's message is back in the queue."""
    consumer = consumers('-w', '2', '--graceful-timeout', '1')
    consumer.wait_for_started(2)
    client.slow(60, 'late')
    consumers.wait_for_record('late.start')
    sent = time.monotonic()
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(15) == 0, consumer.log()
    took = time.monotonic() - sent
    print('\n--graceful-timeout 1 with a 60 s task: exit in %.2fs' % took)
    assert took < 4, consumer.log()
    assert 'grace period of 1.0s is over' in consumer.log()
    assert 'was stopped by the supervisor before its task finished' in consumer.log()
    assert client.huey.pending_count() == 1
    # A stop is not a crash: the cut-short run does not count toward poison.
    assert client.huey.storage.reserve('probe', 30, time.time()).deliveries == 1


# -- 6, 7: kill -9 -------------------------------------------------------------

@pytest.mark.timeout(60)
def test_killed_worker_is_replaced_and_its_task_runs_again(consumers, client):
    """SIGKILL the worker running `slow(2)`: a new worker takes its place
    within 1 s, the log names the worker and the likely cause, and the task
    runs again to its end."""
    consumer = consumers('-w', '2')
    before = consumer.wait_for_started(2)
    client.slow(2, 'victim')
    victim = consumers.wait_for_record('victim.start')[0]
    assert victim in before
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    after = consumer.wait_for_workers(2, timeout=10, exclude=[victim])
    took = time.monotonic() - killed
    print('\nworker SIGKILLed -> replacement worker running in %.3fs' % took)
    assert took < 1.0
    assert len(set(after) - set(before)) == 1
    consumer.wait_for_log(r'worker \d+ \(pid %d\) killed by SIGKILL \(out of memory\?' % victim)
    consumers.wait_for_record('victim.end', timeout=20)
    runs = [pid for marker, pid in consumers.records() if marker == 'victim.start']
    assert len(runs) == 2 and runs[0] == victim and runs[1] != victim
    assert re.search(r'returned 1 message of worker \d+ to the queue', consumer.log())
    wait_for(lambda: client.huey.storage.reserved_size() == 0, 10, message='ack')
    assert client.huey.pending_count() == 0


@pytest.mark.timeout(60)
def test_killed_supervisor_leaves_no_workers(consumers, client):
    """SIGKILL the supervisor alone: within a few seconds none of its workers
    is alive, the busy one included."""
    consumer = consumers('-w', '3')
    workers = consumer.wait_for_started(3)
    client.slow(30, 'orphan')
    consumers.wait_for_record('orphan.start')
    os.kill(consumer.pid, signal.SIGKILL)
    started = time.monotonic()
    assert consumer.wait(10) == -signal.SIGKILL
    wait_for(lambda: pids_alive(workers) == [], 5, message='workers to die with the supervisor')
    print('\nsupervisor SIGKILLed -> all workers gone in %.3fs' % (time.monotonic() - started))


# -- 8, 9: failing to start ---------------------------------------------------

@pytest.mark.timeout(60)
def test_boot_failures_back_off_then_stop_with_exit_3(consumers, client):
    """A startup hook that always raises: the consumer backs off between
    attempts, then stops with exit code 3 after --max-boot-failures 3 worker
    starts, with a final message; it does not spin."""
    started = time.monotonic()
    consumer = consumers('-w', '1', '--max-boot-failures', '3',
                         env={'HUEY_TEST_BOOT_FAIL': '1'})
    assert consumer.wait(30) == exitcodes.WORKER_BOOT_ERROR, consumer.log()
    took = time.monotonic() - started
    print('\nboot failing 3 times -> exit 3 in %.2fs' % took)
    log = consumer.log()
    assert 'next attempt in' in log
    assert 'workers failed to start 3 times in a row' in log
    assert 'HUEY_TEST_BOOT_FAIL is set' in log
    # The final line names the cause itself, not only "see above".
    assert re.search(r'CRITICAL .*3 times in a row \(last: RuntimeError: HUEY_TEST_BOOT_FAIL', log)
    assert consumers.markers().count('boot') == 3
    # Back-off: 0.5 s then 1 s between the three attempts.
    assert took >= 1.4


def run_consumer_once(directory, args, env, timeout=30):
    return subprocess.run([sys.executable, '-m', 'consumer'] + args, cwd=str(directory),
                          env=env, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


@pytest.mark.parametrize('app_path, words', [
    ('nosuchmodule.huey', ['no module named', 'nosuchmodule']),
    ('app.nothere', ["has no attribute 'nothere'"]),
    ('notahuey.huey', ['notahuey.huey is a int', 'not a Huey object']),
    ('app', ['not an import path']),
])
def test_bad_app_path_is_one_line_and_exit_2(consumers, app_path, words):
    """Each way the app path can be wrong: exit code 2 and one line on
    stderr naming the problem; nothing started."""
    (consumers.directory / 'notahuey.py').write_text('huey = 42\n')
    done = run_consumer_once(consumers.directory, [app_path], consumers.env())
    assert done.returncode == exitcodes.USAGE
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith('huey_consumer.py: error: ')
    for word in words:
        assert word in lines[0]
    print('\n' + lines[0])


def test_module_raising_at_import_shows_its_traceback(consumers):
    """A module that raises while imported: exit 2, a first line naming the
    module and the error, then the traceback."""
    (consumers.directory / 'broken.py').write_text(
        'import os\n\ndef helper():\n    raise RuntimeError("broken at import")\n\nhelper()\n')
    done = run_consumer_once(consumers.directory, ['broken.huey'], consumers.env())
    assert done.returncode == exitcodes.USAGE
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("huey_consumer.py: error: importing 'broken' raised RuntimeError: "
                               'broken at import'), done.stderr
    assert 'Traceback (most recent call last)' in done.stderr
    assert 'broken.py", line 4, in helper' in done.stderr


@pytest.mark.parametrize('args, words', [
    (['-w', '0'], ['-w/--workers must be 1 or more']),
    (['-s', '0'], ['--scheduler-interval must be more than 0']),
])
def test_bad_option_is_one_line_and_exit_2(consumers, args, words):
    """A bad option value: exit 2 and one line saying what to fix."""
    done = run_consumer_once(consumers.directory, ['app.huey'] + args, consumers.env())
    assert done.returncode == exitcodes.USAGE
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0]


# -- 10, 11, 12: schedule, SIGHUP, periodic ------------------------------------

@pytest.mark.timeout(60)
def test_delayed_task_runs_at_its_eta(consumers, client):
    """`schedule(delay=2)`: not run before 2 s, and run within 2 s plus the
    scheduler interval (1 s) and some slack."""
    consumer = consumers('-w', '2')
    consumer.wait_for_started(2)
    scheduled = time.monotonic()
    client.record.schedule(args=('delayed',), delay=2)
    consumers.wait_for_record('delayed', timeout=15)
    took = time.monotonic() - scheduled
    print('\ndelay=2 task ran after %.2fs (scheduler interval 1 s)' % took)
    assert 1.95 <= took <= 2 + 1 + 2


@pytest.mark.timeout(60)
def test_sighup_restarts_workers_and_keeps_consuming(consumers, client):
    """SIGHUP: every worker pid changes, the consumer keeps running and
    still processes tasks."""
    consumer = consumers('-w', '2')
    before = consumer.wait_for_started(2)
    sent = time.monotonic()
    consumer.signal(signal.SIGHUP)
    after = consumer.wait_for_workers(2, timeout=15, exclude=before)
    print('\nSIGHUP -> all workers replaced in %.3fs' % (time.monotonic() - sent))
    assert consumer.alive()
    consumer.wait_for_log('received SIGHUP')
    assert client.add(2, 3).get(blocking=True, timeout=20) == 5
    assert pids_alive(before) == []
    assert set(consumer.worker_pids()) == set(after)
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(20) == 0


@pytest.mark.timeout(150)
def test_periodic_task_runs_within_a_minute(consumers, client):
    """The every-minute periodic task records 'tick' within ~62 s of the
    consumer's start (the one slow test of this file)."""
    started = time.monotonic()
    consumer = consumers('-w', '1', periodic=True)
    consumers.wait_for_record('tick', timeout=70)
    took = time.monotonic() - started
    print('\nfirst periodic tick %.2fs after the consumer started' % took)
    assert took <= 65
    assert 'enqueued periodic task app.tick' in consumer.log()


# -- 13: fork safety -------------------------------------------------------------

PY311 = '/root/.pyenv/versions/3.11.7/bin/python'
PY313 = '/root/.pyenv/versions/3.13.0/bin/python'


@pytest.fixture(scope='session')
def interpreters(tmp_path_factory):
    """version -> (python, extra env) to run the consumer from this checkout,
    or version -> reason it is not available. 3.11 reuses this venv's
    site-packages (same version); 3.13 gets a venv of its own (once)."""
    found = {}
    purelib = sysconfig.get_paths()['purelib']
    if os.path.exists(PY311):
        found['3.11'] = (PY311, {'PYTHONPATH': os.pathsep.join([REPO, purelib])})
    else:
        found['3.11'] = (sys.executable, {})
        print('\n%s not found: running the 3.11 case with %s' % (PY311, sys.executable))
    if not os.path.exists(PY313):
        found['3.13'] = '%s not found' % PY313
        return found
    venv = tmp_path_factory.mktemp('py313') / 'venv'
    try:
        subprocess.run([PY313, '-m', 'venv', str(venv)], check=True, capture_output=True,
                       timeout=120)
        python = str(venv / 'bin' / 'python')
        subprocess.run([python, '-m', 'pip', 'install', '-q', 'redis', 'psutil',
                        'setproctitle'], check=True, capture_output=True, timeout=300)
        found['3.13'] = (python, {'PYTHONPATH': REPO})
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, 'stderr', b'') or b''
        if isinstance(detail, bytes):
            detail = detail.decode('utf-8', 'replace')
        found['3.13'] = 'could not build a 3.13 venv with redis/psutil/setproctitle: %s %s' % (
            exc, detail.strip()[-500:])
        print('\n' + found['3.13'])
    return found


@pytest.mark.timeout(120)
@pytest.mark.parametrize('version', ['3.11', '3.13'])
def test_fork_safety_many_worker_kills_under_a_busy_scheduler(consumers, client,
                                                              interpreters, version):
    """DESIGN.md: no fork while the scheduler holds a lock. With the
    scheduler ticking every 10 ms (and logging, -v) over 500 delayed tasks,
    SIGKILL a worker 30 times in a row: each time a replacement starts within
    a deadline (the supervisor never hangs in a fork), every task still runs,
    and the consumer still stops cleanly."""
    chosen = interpreters[version]
    if isinstance(chosen, str):
        pytest.skip(chosen)
    python, env = chosen
    consumer = consumers('-w', '4', '-s', '0.01', '-v', python=python, env=env)
    workers = consumer.wait_for_started(4, timeout=30)
    version_seen = subprocess.run([python, '-c', 'import sys; print(sys.version.split()[0])'],
                                  capture_output=True, text=True, timeout=30).stdout.strip()
    rng = random.Random(1234)
    total = 500
    for i in range(total):
        client.record.schedule(args=('fork%d' % i,), delay=rng.uniform(0.2, 4.0))
    slowest = 0.0
    started = time.monotonic()

    def booted():
        return len(re.findall(r'worker \d+ started', consumer.log()))
    for kill in range(30):
        victim = rng.choice(workers)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        workers = consumer.wait_for_workers(4, timeout=5, exclude=[victim])
        # Not just forked but ready: a child that inherited a held lock would
        # hang before it logs that it started.
        try:
            wait_for(lambda: booted() >= 4 + kill + 1, 5, message='replacement %d to boot' % kill)
        except AssertionError as exc:
            raise AssertionError('%s; log tail:\n%s' % (exc, consumer.log()[-5000:]))
        slowest = max(slowest, time.monotonic() - killed)
        # Pace the kills over the window in which the delayed tasks fall due.
        time.sleep(0.1)
    kills_took = time.monotonic() - started
    assert consumer.alive()

    def all_ran():
        done = {m for m in consumers.markers() if m.startswith('fork')}
        return len(done) == total
    try:
        wait_for(all_ran, 40, message='all %d tasks to run' % total)
    except AssertionError:
        done = {m for m in consumers.markers() if m.startswith('fork')}
        raise AssertionError('%d of %d ran; pending %d scheduled %d reserved %d; log tail:\n%s'
                             % (len(done), total, client.huey.pending_count(),
                                client.huey.scheduled_count(),
                                client.huey.storage.reserved_size(), consumer.log()[-5000:]))
    runs = sum(1 for m in consumers.markers() if m.startswith('fork'))
    print('\nPython %s: 30 worker kills in %.2fs, slowest replacement %.3fs; '
          '%d tasks ran %d times (repeats: killed mid-task)'
          % (version_seen, kills_took, slowest, total, runs))
    assert slowest < 5
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(30) == 0, consumer.log()[-5000:]


# -- 14, 15: titles and logs -----------------------------------------------------

@pytest.mark.timeout(60)
def test_process_titles(consumers, client):
    """`ps` shows the supervisor as 'huey: supervisor app.huey 2 workers', an
    idle worker as 'huey: worker N idle', and a busy one with its task and
    how long it has run."""
    consumer = consumers('-w', '2')
    workers = consumer.wait_for_started(2)
    assert 'huey: supervisor app.huey 2 workers' in title_of(consumer.pid)
    wait_for(lambda: sorted(re.sub(r'\s+$', '', title_of(p)) for p in workers)
             == ['huey: worker 1 idle', 'huey: worker 2 idle'], 10,
             message='idle worker titles')
    client.slow(4, 'titled')
    busy = consumers.wait_for_record('titled.start')[0]
    match = wait_for(lambda: re.search(r'huey: worker [12] busy app\.slow (\d+\.\d)s',
                                       title_of(busy)), 5, message='busy title')
    # The ticker refreshes the title each second: the seconds go up.
    wait_for(lambda: float(re.search(r'busy app\.slow (\d+\.\d)s', title_of(busy)
                                     ).group(1)) >= 1.0, 5, message='elapsed seconds in title')
    print('\nbusy title: %r' % title_of(busy))
    assert match


@pytest.mark.timeout(60)
def test_log_lines_name_their_worker(consumers, client):
    """Each log line from a worker carries 'worker-N:<pid>'; a failing task's
    traceback appears exactly once."""
    consumer = consumers('-w', '2', '-v')
    workers = consumer.wait_for_started(2)
    client.fail('abc123')
    assert client.add(1, 1).get(blocking=True, timeout=20) == 2
    consumer.wait_for_log(r'ValueError: boom-abc123')
    # Let the failing task's worker finish logging before reading.
    consumer.wait_for_log(r'DEBUG worker-\d+:\d+ huey\.consumer\.worker: app\.fail: \S+ finished as error after ',
                          timeout=10)
    log = consumer.log()
    assert log.count('ValueError: boom-abc123') == 1, log
    assert log.count('Traceback (most recent call last)') == 1, log
    # The supervisor says which pid each worker number got (-v).
    numbers = {int(pid): int(n) for n, pid in
               re.findall(r'started worker (\d+) \(pid (\d+)\)', log)}
    assert sorted(numbers) == sorted(workers)
    headers = re.findall(r'^\[[^\]]+\] [A-Z]+ (supervisor|worker-(\d+)):(\d+) ', log, re.M)
    assert headers
    worker_lines = 0
    for role, number, pid in headers:
        pid = int(pid)
        if pid == consumer.pid:
            assert role == 'supervisor', (role, pid)
        else:
            assert pid in numbers and role == 'worker-%d' % numbers[pid], (role, pid, numbers)
            worker_lines += 1
    assert worker_lines >= 6  # started x2, running x2, the failure, ...
    started = re.findall(r'worker-(\d+):\d+ \S+: worker (\d+) started', log)
    assert len(started) == 2
    for role_number, said_number in started:
        assert role_number == said_number


@pytest.mark.timeout(60)
def test_unknown_task_is_logged_and_dead_lettered(consumers, client):
    """A message for a task the consumer never imported: the log carries the
    QueueException text and the message lands in the dead letters."""
    consumer = consumers('-w', '1')
    consumer.wait_for_started(1)

    @client.huey.task(name='app.not_in_consumer')
    def not_in_consumer(x):
        return x
    not_in_consumer(1)
    consumer.wait_for_log(r"task 'app\.not_in_consumer' is not registered")
    letters = wait_for(client.huey.dead_letters, 10, message='a dead letter')
    assert len(letters) == 1
    assert 'is not registered' in letters[0].reason
    assert client.huey.pending_count() == 0


@pytest.mark.timeout(60)
def test_logfile_option_writes_the_file_not_stderr(consumers, client, tmp_path):
    """`-l logfile`: the log goes to the file, stderr stays quiet."""
    logfile = tmp_path / 'consumer-file.log'
    consumer = consumers('-w', '2', '-l', str(logfile))
    wait_for(lambda: logfile.exists() and len(re.findall(r'worker \d started',
                                                         logfile.read_text())) == 2,
             20, message='workers started, in the log file')
    assert client.add(3, 4).get(blocking=True, timeout=20) == 7
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(20) == 0
    text = logfile.read_text()
    assert 'supervisor:%d' % consumer.pid in text
    assert re.search(r'worker-1:\d+ ', text) and re.search(r'worker-2:\d+ ', text)
    assert 'consumer stopped' in text
    assert consumer.log().strip() == '', consumer.log()
