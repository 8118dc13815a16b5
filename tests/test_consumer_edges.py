"""The consumer when things around it misbehave: a hung Redis at stop time,
processes a task started, bad command lines caught before start."""
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from huey import RedisHuey
from tests.consumer_harness import SCRIPT, client, consumers, make_client  # noqa: F401
from tests.helpers import wait_for
from tests.redis_server import PrivateRedis


@pytest.mark.timeout(90)
def test_stop_is_bounded_when_redis_hangs(consumers):
    """Redis frozen (SIGSTOP) with a task running: SIGTERM still stops the
    consumer within the grace period plus the storage thread's final wait,
    not after a socket timeout per storage call."""
    server = PrivateRedis().start()
    consumers.redis_url = server.url
    producer = make_client(RedisHuey(consumers.name, url=server.url))
    try:
        consumer = consumers('-w', '2', '--graceful-timeout', '2')
        consumer.wait_for_started(2)
        producer.slow(60, 'frozen')
        consumers.wait_for_record('frozen.start')
        os.kill(server.proc.pid, signal.SIGSTOP)
        sent = time.monotonic()
        consumer.signal(signal.SIGTERM)
        consumer.wait_for_log('received SIGTERM', timeout=2)
        assert consumer.wait(20) == 0
        took = time.monotonic() - sent
        print('\nstop with Redis frozen and a task running: %.1fs (grace 2s)' % took)
        assert took < 2 + 5 + 3
        assert 'come back when their lease' in consumer.log()
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        producer.huey.close()
        server.cleanup()


@pytest.mark.timeout(60)
def test_processes_a_task_started_die_with_a_cut_short_worker(consumers, client):
    """A task's child process does not outlive a forced stop (it would run on
    while the message runs again), and it gets default signal dispositions
    rather than the worker's ignored SIGINT/SIGHUP."""
    consumer = consumers('-w', '1', '--graceful-timeout', '1')
    consumer.wait_for_started(1)
    client.spawn_sleeper(300)
    [record] = wait_for(lambda: [m for m in consumers.markers() if m.startswith('child.')],
                        15, message='the child started')
    _, pid, ignored = record.split('.')
    child = psutil.Process(int(pid))
    assert int(ignored, 16) & ((1 << (signal.SIGINT - 1)) | (1 << (signal.SIGHUP - 1))) == 0
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(15) == 0
    wait_for(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE,
             10, message='the task child to die')


@pytest.mark.parametrize('args, message', [
    (['-l', '/nonexistent-dir/x.log'], 'does not exist'),
    (['-l', '/tmp'], 'is a directory'),
    (['-u', '--localtime'], 'not both'),
    (['-v', '-q'], 'not both'),
    # NaN passed every "> 0" check once and reached Redis, which lost a message.
    (['--lease', 'nan'], 'finite number'),
    (['-d', 'inf'], 'finite number'),
    (['--graceful-timeout', 'nan'], 'finite number'),
    (['--lease', '0.001'], 'at least 1 second'),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, args, message):
    proc = subprocess.run([sys.executable, '-m', 'consumer', 'app.huey'] + args,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_empty_module_part_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'consumer', 'main..huey'],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and 'is not an import path' in proc.stderr


def test_huey_style_k_process_is_accepted_and_f_flushes_locks(consumers, client):
    """Command lines copied from huey's docs (`-k process -f`) work: -f
    releases declared locks left held by a consumer that died whole."""
    client.huey.storage.put_data('lock.exclusive', b'host:1:2')  # a dead consumer's lock
    consumer = consumers('-w', '1', '-k', 'process', '-f')
    consumer.wait_for_started(1)
    assert 'released locks at start: exclusive' in consumer.log()
    assert not client.huey.is_locked('exclusive')


@pytest.mark.timeout(60)
def test_a_task_that_ignores_sigterm_does_not_keep_its_worker_from_stopping(consumers, client):
    """A task that set SIGTERM to SIG_IGN once left a worker that took new
    work after the stop began and waited out the whole grace period. Now the
    worker restores its handler after the task, the supervisor repeats the
    stop request, and the stop takes no longer than the task."""
    consumer = consumers('-w', '1', '--graceful-timeout', '30')
    consumer.wait_for_started(1)
    client.ignore_term(2)
    consumers.wait_for_record('deaf.start')
    client.record('queued-behind')
    consumer.signal(signal.SIGTERM)
    sent = time.monotonic()
    assert consumer.wait(20) == 0
    took = time.monotonic() - sent
    assert took < 10, 'stop took %.1fs; log:\n%s' % (took, consumer.log())
    assert 'deaf.end' in consumers.markers()
    assert 'queued-behind' not in consumers.markers()
    assert client.huey.pending_count() == 1  # still queued, for the next consumer
    assert 'changed the handler of SIGTERM; restored' in consumer.log()


@pytest.mark.timeout(60)
def test_print_output_of_a_task_is_flushed_when_the_task_ends(consumers, client):
    """stdout to a file or pipe (the journal) is block-buffered: a task's
    print() once sat in the worker's buffer until it exited, and was lost if
    it was killed. Each worker now flushes after every task."""
    consumer = consumers('-w', '1', env={'PYTHONUNBUFFERED': ''}, split_stdout=True)
    [pid] = consumer.wait_for_started(1)
    client.shout('counted 7 beans')
    wait_for(lambda: 'counted 7 beans' in consumer.stdout(), 15, message='the print')
    os.kill(pid, signal.SIGKILL)  # nothing was waiting in its buffer
    assert consumer.stdout().count('counted 7 beans') == 1


@pytest.mark.timeout(60)
def test_an_app_module_named_consumer_is_the_apps_own(tmp_path):
    """The daemon's package is called ``consumer``; an app with its own
    consumer.py (a Kafka consumer, say) imported the daemon's package instead."""
    (tmp_path / 'consumer.py').write_text('def handle(x):\n    return x * 2\n')
    (tmp_path / 'main.py').write_text(textwrap.dedent('''
        import os
        from huey import SqliteHuey
        from consumer import handle

        huey = SqliteHuey('own-consumer', filename=os.path.join(os.path.dirname(__file__), 'q.db'))

        @huey.task()
        def double(x):
            return handle(x)
    '''))
    proc = subprocess.Popen([sys.executable, SCRIPT, 'main.huey', '-w', '1'], cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        probe = subprocess.run(
            [sys.executable, '-c', 'import main; print(main.double(21).get(blocking=True, '
             'timeout=30))'], cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
        assert probe.stdout.strip() == '42', probe.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
        proc.stderr.close()


def test_an_import_missing_inside_the_app_shows_where(tmp_path):
    """``tasklibrary`` importing a missing ``tasklib`` is not "no module
    named tasklib, run from its directory": it is an import error inside
    the app, shown with its traceback."""
    (tmp_path / 'tasklibrary.py').write_text('import tasklib\n')
    proc = subprocess.run([sys.executable, '-m', 'consumer', 'tasklibrary.huey'],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "importing 'tasklibrary' failed" in proc.stderr
    assert 'Traceback' in proc.stderr and 'tasklibrary.py' in proc.stderr


@pytest.mark.timeout(60)
def test_many_open_descriptors_do_not_break_the_supervisor(tmp_path, consumers, client):
    """select() refuses descriptors past 1024: with the supervisor holding
    more (a large -w, or an app with many files open) it crashed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.fail('this test needs a hard limit of 1400 open files (ulimit -Hn is %d)' % hard)
    (tmp_path / 'sitecustomize.py').write_text(textwrap.dedent('''
        import os, resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400), hard))
        HELD = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    '''))
    consumer = consumers('-w', '2', env={'PYTHONPATH': os.pathsep.join(
        [str(tmp_path), os.environ.get('PYTHONPATH', '')])})
    consumer.wait_for_started(2)
    client.record('many-fds')
    consumers.wait_for_record('many-fds', timeout=20)
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(20) == 0
    assert 'Traceback' not in consumer.log()


RAW_APP = textwrap.dedent('''
    import os, sys
    from huey import RedisHuey

    huey = RedisHuey(os.environ['HUEY_TEST_NAME'], url=os.environ['HUEY_TEST_REDIS_URL'])

    @huey.task()
    def raw(data):
        """Writes to fd 1 below Python, as a C library or a subprocess would."""
        os.write(1, data)
        return 'wrote'

    @huey.task()
    def close_stdout():
        sys.stdout.close()
        return 'closed'
''')


@pytest.mark.timeout(60)
def test_started_with_stdout_closed_task_output_goes_nowhere_harmful(tmp_path, redis_url,
                                                                     unique_name, monkeypatch):
    """Started with ``>&-``, the first socket opened took fd 1: a task
    writing to stdout sent Redis a command on the supervisor's connection,
    and a worker whose sys.stdout could not be flushed at exit fell back into
    the supervisor's code. /dev/null now fills fds 0-2 first."""
    (tmp_path / 'rawapp.py').write_text(RAW_APP)
    leaked = unique_name + '-leaked'
    monkeypatch.setenv('HUEY_TEST_NAME', unique_name)  # for this process's import too
    monkeypatch.setenv('HUEY_TEST_REDIS_URL', redis_url)
    env = dict(os.environ)
    log = open(str(tmp_path / 'log'), 'wb')

    def log_text():
        with open(str(tmp_path / 'log'), 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    proc = subprocess.Popen(['sh', '-c', 'exec "$0" -m consumer rawapp.huey -w 1 >&- <&-',
                             sys.executable], cwd=str(tmp_path), env=env, stderr=log,
                            start_new_session=True)
    sys.path.insert(0, str(tmp_path))
    try:
        import rawapp
        assert rawapp.raw(b'SET %s yes\r\n' % leaked.encode()).get(blocking=True,
                                                                    timeout=20) == 'wrote'
        assert rawapp.close_stdout().get(blocking=True, timeout=20) == 'closed'
        os.kill(proc.pid, signal.SIGHUP)  # the worker exits with sys.stdout closed
        wait_for(lambda: 'exited with code' in log_text(), 15, message='the retired worker to exit')
        assert rawapp.raw(b'x').get(blocking=True, timeout=20) == 'wrote'
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0
        text = log_text()
        assert 'exited with code 0' in text and 'Traceback' not in text, text
        assert 'cannot reach storage' not in text, text
        assert rawapp.huey.storage._call('exists', leaked) == 0
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop('rawapp', None)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        RedisHuey(unique_name, url=redis_url).flush()


@pytest.mark.timeout(60)
def test_reload_does_not_interrupt_a_blocking_call_in_a_running_task(consumers, client):
    """SIGHUP (and a stop) set the worker's stop flag; SIGTERM, which makes a
    blocking C call return early with EINTR, goes only to idle workers."""
    consumer = consumers('-w', '1')
    [old] = consumer.wait_for_started(1)
    client.c_sleep(2)
    consumers.wait_for_record('csleep.start')
    consumer.signal(signal.SIGHUP)
    wait_for(lambda: [m for m in consumers.markers() if m.startswith('csleep.end')], 15,
             message='the task to end')
    assert 'csleep.end.0' in consumers.markers()  # slept its whole time
    wait_for(lambda: consumer.worker_pids() and old not in consumer.worker_pids(), 15,
             message='the worker to be replaced')
    assert 'killed by SIGTERM' not in consumer.log()
