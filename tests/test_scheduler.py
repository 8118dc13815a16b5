"""The scheduler alone: ``Scheduler.loop(now=...)`` driven through a day of
ticks on a MemoryHuey, in milliseconds and without processes or threads."""
from __future__ import annotations

import collections
import datetime
import json
import logging
import os
import random
import subprocess
import sys
import textwrap
import time

import pytest

from consumer.scheduler import MAX_CATCH_UP_MINUTES, Scheduler
from huey import MemoryHuey, crontab

# 2024-03-10 00:00:00 UTC: a Sunday, and a DST change day in the US (which
# must not matter: the scheduler works on epoch minutes, in UTC by default).
DAY_START = 1710028800.0
DAY = 86400


def make_app():
    huey = MemoryHuey('scheduler-test')

    @huey.periodic_task(crontab(minute='*'), name='every_minute')
    def every_minute():
        pass

    @huey.periodic_task(crontab(minute='*/15'), name='quarter_hourly')
    def quarter_hourly():
        pass

    @huey.task()
    def later(x):
        return x

    return huey, later


class Recorder:
    """Wraps ``huey.enqueue_periodic`` to note each minute checked and each
    task it enqueued (by minute)."""

    def __init__(self, huey):
        self.checked = []
        self.enqueued = collections.defaultdict(list)  # task name -> [datetime]
        original = huey.enqueue_periodic

        def recording(dt):
            self.checked.append(dt)
            tasks = original(dt)
            for task in tasks:
                self.enqueued[task.name].append(dt)
            return tasks
        huey.enqueue_periodic = recording


def queued_names(huey):
    return collections.Counter(task.name for task in huey.pending())


def irregular_ticks(start, end, seed, late_jump_at=None):
    """Tick times from start to end: mostly 7 s apart, some 1-13 s, and one
    late tick 3 minutes after the previous one at ``late_jump_at``."""
    rng = random.Random(seed)
    now = start
    jumped = False
    while now < end:
        yield now
        if late_jump_at is not None and not jumped and now >= late_jump_at:
            now += 180
            jumped = True
        else:
            now += 7 if rng.random() < 0.6 else rng.uniform(0.3, 13)
    yield end


def minutes_between(first, last):
    """Naive UTC datetimes of each minute from ``first``'s through ``last``'s."""
    m0, m1 = int(first // 60), int(last // 60)
    return [datetime.datetime(1970, 1, 1) + datetime.timedelta(minutes=m)
            for m in range(m0, m1 + 1)]


def test_a_day_of_irregular_ticks_enqueues_every_minute_exactly_once():
    """24 hours of ticks (mostly every 7 s, irregular steps, one tick 3
    minutes late): the every-minute task is enqueued once for every minute of
    the day, none skipped, none twice; `*/15` gives 96."""
    huey, _ = make_app()
    recorder = Recorder(huey)
    scheduler = Scheduler(huey)
    start, end = DAY_START + 3.25, DAY_START + DAY - 0.5
    late_at = DAY_START + 13 * 3600 + 20
    ticks = list(irregular_ticks(start, end, seed=7, late_jump_at=late_at))
    for now in ticks:
        scheduler.loop(now=now)
    assert any(b - a >= 180 for a, b in zip(ticks, ticks[1:])), 'the late tick happened'
    expected = minutes_between(start, end)
    assert len(expected) == 1440
    assert recorder.checked == expected  # each minute once, in order
    every = recorder.enqueued['every_minute']
    assert every == expected
    quarter = recorder.enqueued['quarter_hourly']
    assert len(quarter) == 96
    assert all(dt.minute % 15 == 0 for dt in quarter)
    assert queued_names(huey) == {'every_minute': 1440,
                                  'quarter_hourly': 96}


def test_two_schedulers_on_one_storage_enqueue_once_per_minute():
    """Two consumers (two Scheduler objects on the same storage) ticking at
    different phases still enqueue each periodic task once per minute."""
    huey, _ = make_app()
    recorder = Recorder(huey)
    first, second = Scheduler(huey), Scheduler(huey)
    start, end = DAY_START, DAY_START + 6 * 3600
    merged = sorted([(t, first) for t in irregular_ticks(start, end, seed=1)] +
                    [(t, second) for t in irregular_ticks(start + 2.5, end, seed=2)],
                    key=lambda pair: pair[0])
    for now, scheduler in merged:
        scheduler.loop(now=now)
    minutes = minutes_between(start, end)
    # Both checked every minute, but each slot was claimed once.
    assert len(recorder.checked) == 2 * len(minutes)
    assert sorted(recorder.enqueued['every_minute']) == minutes
    assert len(recorder.enqueued['quarter_hourly']) == 6 * 4 + 1
    assert queued_names(huey)['every_minute'] == len(minutes)


def test_a_long_stall_skips_with_a_warning(caplog):
    """A stall longer than MAX_CATCH_UP_MINUTES (a suspended machine):
    catch up only the last MAX_CATCH_UP_MINUTES minutes, and say so."""
    huey, _ = make_app()
    recorder = Recorder(huey)
    scheduler = Scheduler(huey)
    scheduler.loop(now=DAY_START + 5)          # checks 00:00
    scheduler.loop(now=DAY_START + 65)         # checks 00:01
    with caplog.at_level(logging.WARNING, logger='huey.consumer.scheduler'):
        scheduler.loop(now=DAY_START + 45 * 60 + 30)  # 00:45, 43 minutes later
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ['scheduler was stalled: skipping periodic checks of %d minutes'
                        % (45 - 2 + 1 - MAX_CATCH_UP_MINUTES)]
    every = recorder.enqueued['every_minute']
    assert [dt.minute for dt in every] == [0, 1] + list(range(45 - MAX_CATCH_UP_MINUTES + 1, 46))
    # A stall shorter than the limit skips nothing and warns nothing.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='huey.consumer.scheduler'):
        scheduler.loop(now=DAY_START + (45 + MAX_CATCH_UP_MINUTES - 1) * 60 + 1)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [dt.minute for dt in every][-(MAX_CATCH_UP_MINUTES - 1):] == \
        list(range(46, 45 + MAX_CATCH_UP_MINUTES))


def test_delayed_messages_move_at_their_eta():
    """A task scheduled for an eta stays in the schedule until a tick at or
    after that eta, then is in the queue."""
    huey, later = make_app()
    scheduler = Scheduler(huey, periodic=False)
    # In the future for enqueue (which compares with the real clock), then
    # reached by the ticks' explicit clock.
    eta = float(int(time.time()) + 3600)
    later.schedule(args=(1,), eta=datetime.datetime.fromtimestamp(eta, datetime.timezone.utc))
    later.schedule(args=(2,), eta=datetime.datetime.fromtimestamp(eta + 30,
                                                                  datetime.timezone.utc))
    scheduler.loop(now=eta - 0.01)
    assert (huey.pending_count(), huey.scheduled_count()) == (0, 2)
    scheduler.loop(now=eta)
    assert (huey.pending_count(), huey.scheduled_count()) == (1, 1)
    assert huey.pending()[0].args == (1,)
    scheduler.loop(now=eta + 29.99)
    assert (huey.pending_count(), huey.scheduled_count()) == (1, 1)
    scheduler.loop(now=eta + 31)
    assert (huey.pending_count(), huey.scheduled_count()) == (2, 0)


def test_expired_leases_come_back_on_a_tick():
    """A reservation whose lease ran out (its consumer died unseen) goes back
    to the queue on the next tick after the lease ends."""
    huey, later = make_app()
    scheduler = Scheduler(huey, periodic=False)
    later(1)
    reservation = huey.storage.reserve('dead-owner', 60, DAY_START)
    assert reservation is not None and huey.pending_count() == 0
    scheduler.loop(now=DAY_START + 59)
    assert huey.pending_count() == 0
    scheduler.loop(now=DAY_START + 61)
    assert huey.pending_count() == 1


def test_utc_and_local_time_choose_their_own_datetimes():
    """use_utc=True matches crontabs against UTC, use_utc=False against the
    local zone: the same epoch minute gives datetime.fromtimestamp's answer."""
    huey, _ = make_app()
    minute = int((DAY_START + 9 * 3600 + 30 * 60) // 60)
    utc = Scheduler(huey, use_utc=True).minute_datetime(minute)
    local = Scheduler(huey, use_utc=False).minute_datetime(minute)
    assert utc == datetime.datetime(2024, 3, 10, 9, 30)
    assert local == datetime.datetime.fromtimestamp(minute * 60)
    assert utc.tzinfo is None and local.tzinfo is None


LOCAL_TIME_SCRIPT = textwrap.dedent('''\
    import datetime, json, time
    from consumer.scheduler import Scheduler
    from huey import MemoryHuey, crontab
    time.tzset()
    result = {}
    for use_utc in (True, False):
        huey = MemoryHuey('tz')

        @huey.periodic_task(crontab(hour='9', minute='0'), name='nine')
        def nine():
            pass

        scheduler = Scheduler(huey, use_utc=use_utc)
        fired = []
        # One tick per minute, on the minute: each tick checks its own minute.
        for now in range(%(start)d, %(start)d + 86400, 60):
            before = huey.pending_count()
            scheduler.loop(now=now)
            if huey.pending_count() > before:
                fired.append(datetime.datetime.fromtimestamp(
                    now, datetime.timezone.utc).strftime('%%H:%%M'))
        result['utc' if use_utc else 'local'] = fired
    print(json.dumps(result))
''')


@pytest.mark.parametrize('zone, nine_local_in_utc', [
    ('Asia/Kolkata', '03:30'),         # UTC+5:30
    ('America/Los_Angeles', '17:00'),  # PST, UTC-8, on 2024-03-09
])
def test_localtime_fires_at_nine_local_in_another_zone(zone, nine_local_in_utc):
    """In a process whose TZ is ``zone``, a crontab for 09:00 fires at 09:00
    UTC with use_utc=True and at 09:00 local time, another instant, with
    use_utc=False (--localtime)."""
    if not os.path.exists('/usr/share/zoneinfo/' + zone):
        pytest.skip('no tz database entry for %s' % zone)
    start = int(DAY_START) - 86400  # 2024-03-09 00:00 UTC
    done = subprocess.run([sys.executable, '-c', LOCAL_TIME_SCRIPT % {'start': start}],
                          env=dict(os.environ, TZ=zone), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {'utc': ['09:00'], 'local': [nine_local_in_utc]}
