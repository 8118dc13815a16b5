"""The fault suite (benchmarks/faults.py) at its quick scale: the real consumer
on a private Redis and on a SQLite file, with workers SIGKILLed, whole
consumers SIGKILLed, Redis stopped and started, scheduled tasks across a
restart, and a periodic task under two consumers. Nothing may be lost.

Each scenario starts and cleans up its own processes (and its own
redis-server); each prints its row of the table (see it with ``pytest -s``).
"""
from __future__ import annotations

import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks import faults

SCENARIOS = ['worker_kills', 'consumer_kills', 'two_consumers_one_killed',
             'scheduled_across_restart']


def show(*rows):
    print('\n' + faults.format_table(rows))


def assert_sound(row, early=False):
    """Nothing lost, no scenario error, no dead letters (no task is poison)."""
    assert row.error is None, row.error
    assert row.enqueued > 0
    assert row.lost == 0, '%d of %d tasks never ran: %s' % (row.lost, row.enqueued, row.notes)
    assert row.dead == 0, '%s dead letters' % row.dead
    if early:
        assert row.early == 0, '%s tasks ran before their eta' % row.early


@pytest.mark.timeout(120)
@pytest.mark.parametrize('backend', faults.BACKENDS)
@pytest.mark.parametrize('scenario', SCENARIOS)
def test_scenario(scenario, backend):
    row = faults.SCENARIOS[scenario](backend, 'quick')
    show(row)
    assert_sound(row, early=scenario == 'scheduled_across_restart')
    assert row.problems == [], row.problems


@pytest.mark.timeout(120)
def test_redis_outage():
    """Redis stopped for 3 s mid-run and started again (same port, same AOF):
    everything runs, nothing stays reserved, and the consumer is still the
    same process."""
    row = faults.redis_outage('redis', 'quick')
    show(row)
    assert_sound(row)
    assert row.problems == [], row.problems
    assert 'consumer same process: yes' in row.notes[0]


@pytest.mark.timeout(120)
def test_short_redis_outage_leaves_nothing_reserved():
    """An outage shorter than the lease: a worker whose ack failed must not
    keep the message reserved. (It did: the supervisor renews every lease of
    a live worker's owner id, including the one the worker gave up on, so the
    message stayed reserved until the worker exited. Workers now exit when
    they lose storage finishing a task.)"""
    row = faults.redis_outage('redis', 'quick', outage=1.0, keep='never')
    show(row)
    assert_sound(row)
    assert row.stuck == 0, row.problems
    assert row.problems == [], row.problems


@pytest.mark.timeout(150)
def test_periodic_two_consumers():
    """One tick per minute under two consumers, and the survivor of a kill
    keeps ticking. Waits for a real minute boundary: both backends run side
    by side so the test takes at most about a minute."""
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(faults.periodic_two_consumers, b, 'quick')
                   for b in faults.BACKENDS]
        rows = [f.result() for f in futures]
    show(*rows)
    for row in rows:
        assert row.error is None, row.error
        assert row.lost == 0, 'minutes without a tick: %s' % row.notes
        assert row.duplicates == 0, 'minutes ticked twice: %s' % row.notes
        assert row.dead == 0
        assert row.problems == [], row.problems


@pytest.mark.timeout(120)
def test_sqlite_lock_held_past_timeout():
    """Another process holds SQLite's write lock longer than the storage's
    10 s timeout. The consumer must ride it out like an outage: stay up and
    run everything. (It used to die: the supervisor renewed leases with a
    plain statement whose sqlite3.OperationalError nobody caught.)"""
    row = faults.Row('sqlite_lock', 'sqlite')
    with faults.Run(row, keep='never') as run:
        consumer = run.consumer('a', faults.consumer_args(workers=2))
        consumer.wait_workers(2)
        run.work.map([(i, 200) for i in range(20)])
        row.enqueued = 20
        run.wait_completed(2, 30)
        conn = sqlite3.connect(run.env['FAULTS_SQLITE'], isolation_level=None)
        try:
            conn.execute('BEGIN IMMEDIATE')
            time.sleep(13)  # the fault itself: longer than SqliteStorage's timeout (10 s)
            conn.execute('COMMIT')
        finally:
            conn.close()

        def consumer_alive():
            if not consumer.alive():
                raise faults.ScenarioFailed('the consumer died while the SQLite file was '
                                            'locked: ' + consumer.log_tail(2))
        run.wait_completed(20, 60, consumer_alive)
        run.check_drained()
        run.stop_consumers([consumer])
        log = consumer.log_text()
    show(row)
    assert row.error is None, row.error
    assert row.lost == 0
    assert row.problems == []
    # Every verb turns the lock timeout into StorageUnavailable: no worker
    # crashes with a raw sqlite3 traceback.
    assert 'OperationalError' not in log


@pytest.mark.timeout(120)
def test_reservation_whose_reply_was_lost_comes_back():
    """The state a lost reserve reply leaves, made on purpose: the one worker
    is paused (SIGSTOP), the test reserves the message under that worker's
    owner id, then Redis freezes past the socket timeout so the worker's own
    call fails, as it does when a reply is lost for real. The worker, seeing
    its reserve fail, returns whatever storage says it holds; the message runs.
    (Seen for real before the fix: redis-server SIGSTOPped for 12 s while 4
    workers reserved; one task stayed reserved by a live worker, renewed by
    its supervisor, 80 s after Redis resumed.)"""
    from consumer.worker import owner_id

    row = faults.Row('lost_reserve_reply', 'redis')
    lease = 60  # longer than the freeze: only the worker's own return can save it
    with faults.Run(row, keep='never') as run:
        consumer = run.consumer('a', faults.consumer_args(workers=1, lease=lease))
        worker = consumer.wait_workers(1)[0]
        os.kill(worker, signal.SIGSTOP)
        redis_pid = run.redis.proc.pid
        try:
            run.work.map([(0, 0)])
            row.enqueued = 1
            reservation = run.huey.storage.reserve(owner_id(consumer.pid, worker),
                                                   lease, time.time())
            assert reservation is not None
            os.kill(redis_pid, signal.SIGSTOP)
            os.kill(worker, signal.SIGCONT)
            # The fault itself: longer than the client's 10 s socket timeout.
            time.sleep(11)
        finally:
            os.kill(worker, signal.SIGCONT)
            os.kill(redis_pid, signal.SIGCONT)
        run.wait_completed(1, 15)
        run.check_drained()
        run.stop_consumers([consumer])
    show(row)
    assert row.error is None, row.error
    assert row.lost == 0
