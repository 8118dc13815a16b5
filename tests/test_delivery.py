"""At-least-once delivery with a real consumer: poison messages, leases.

(Issue 4, guarantees 1 and 2.) The fault suite (tests/test_faults.py) covers
kills at scale; these tests pin one behaviour each.
"""
import os
import signal
import time

import pytest

from tests.consumer_harness import client, consumers  # noqa: F401  (fixtures)
from tests.helpers import wait_for


@pytest.mark.timeout(90)
def test_poison_message_is_dead_lettered_after_max_deliveries(consumers, client):
    """A task that SIGKILLs its worker every time is delivered
    --max-deliveries times, then kept as a dead letter with the reason; the
    consumer keeps serving other tasks."""
    consumer = consumers('-w', '2', '--max-deliveries', '3')
    consumer.wait_for_started(2)
    client.die()
    wait_for(lambda: len(client.huey.dead_letters()) == 1, 60, message='a dead letter')
    [letter] = client.huey.dead_letters()
    assert 'poison message' in letter.reason and 'delivered 3 times' in letter.reason
    assert client.huey.pending_count() == 0
    assert consumer.log().count('killed by SIGKILL') == 3
    client.record('after-poison')
    consumers.wait_for_record('after-poison', timeout=20)
    # A person fixes the cause, then requeues it (here: it is poison again).
    assert client.huey.requeue_dead_letters() == 1
    wait_for(lambda: len(client.huey.dead_letters()) == 1, 60, message='dead again')


@pytest.mark.timeout(90)
def test_running_task_keeps_its_lease_past_the_lease_timeout(consumers, client):
    """A task running longer than --lease is renewed by its supervisor, so a
    second consumer on the same queue never gets it while it runs."""
    first = consumers('-w', '1', '--lease', '1.5')
    first.wait_for_started(1)
    client.slow(5, 'long')
    consumers.wait_for_record('long.start')
    second = consumers('-w', '2', '--lease', '1.5')
    second.wait_for_started(2)
    consumers.wait_for_record('long.end', timeout=30)
    client.record('sentinel')  # a later task: once it ran, both consumers were live past the end
    consumers.wait_for_record('sentinel', timeout=20)
    assert consumers.markers().count('long.start') == 1


@pytest.mark.timeout(90)
def test_dead_consumer_messages_return_after_the_lease(consumers, client):
    """A consumer killed whole (its process group) leaves its reservation in
    Redis; another consumer takes it over once the lease has run out."""
    doomed = consumers('-w', '1', '--lease', '2')
    doomed.wait_for_started(1)
    client.slow(1, 'orphan')
    consumers.wait_for_record('orphan.start')
    killed_at = time.monotonic()
    os.killpg(doomed.pgid, signal.SIGKILL)
    doomed.wait(10)
    assert client.huey.storage.reserved_size() == 1
    rescuer = consumers('-w', '1', '--lease', '2')
    consumers.wait_for_record('orphan.end', timeout=30)
    recovered = time.monotonic() - killed_at
    print('\nmessage of a SIGKILLed consumer ran again %.1fs after the kill (lease 2s)' % recovered)
    assert recovered >= 2 - 0.5  # not before its lease ran out
    assert 'lease ran out' in rescuer.log()


@pytest.mark.timeout(90)
def test_lock_of_a_killed_worker_is_freed_and_its_task_runs_again(consumers, client):
    """A worker SIGKILLed while holding a task lock does not leave the lock
    held forever: the supervisor frees it with the worker's messages, and the
    task runs again and completes."""
    consumer = consumers('-w', '2')
    consumer.wait_for_started(2)
    client.locked_slow(2)
    [pid] = consumers.wait_for_record('locked.start')
    os.kill(pid, signal.SIGKILL)
    consumers.wait_for_record('locked.end', timeout=30)
    consumer.wait_for_log(r'freed locks exclusive held by worker \d')
    assert consumers.markers().count('locked.start') == 2
    wait_for(lambda: not client.huey.is_locked('exclusive'), 10, message='lock released')


@pytest.mark.timeout(90)
def test_revoked_task_stays_revoked_when_its_worker_dies_skipping_it(consumers, client, tmp_path):
    """A worker that dies after seeing a task is revoked but before acking it
    (here: in a ``revoked`` signal handler) must not have cleared a one-time
    revocation: the message comes back and is skipped again, never run."""
    flag = str(tmp_path / 'died-once')
    consumer = consumers('-w', '1', env={'HUEY_TEST_DIE_ON_REVOKE': flag})
    consumer.wait_for_started(1)
    task = client.record.s('must-not-run')
    client.huey.revoke_by_id(task.id)  # revoke_once, as Result.revoke() does
    client.huey.enqueue(task)
    consumer.wait_for_log(r'worker 1 \(pid \d+\) killed by SIGKILL')
    client.record('after')
    consumers.wait_for_record('after', timeout=20)
    assert 'must-not-run' not in consumers.markers()
    # Cleared once the skip was acknowledged: it held exactly one message.
    wait_for(lambda: not client.huey.is_revoked(task.id), 10, message='revocation cleared')
    assert client.huey.pending_count() == 0 and client.huey.storage.reserved_size() == 0
