"""The consumer when things around it misbehave: a hung Redis at stop time,
processes a task started, bad command lines caught before start."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from huey import RedisHuey
from tests.consumer_harness import client, consumers, make_client  # noqa: F401  (fixtures)
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
