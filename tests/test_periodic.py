"""Periodic tasks: matching minutes, once per slot across consumers,
revocation, bad schedules. The clock is always injected."""
import datetime

import pytest

from huey import Huey, crontab
from huey import signals as S
from tests.helpers import run_pending

DAY = datetime.datetime(2024, 3, 5)  # a Tuesday


def minutes_of(day):
    for i in range(24 * 60):
        yield day + datetime.timedelta(minutes=i)


def twin(huey, make_huey, backend):
    """A second Huey on the same storage name (a second consumer). Memory
    storages are per object, so the memory twin shares the object."""
    if backend == 'memory':
        return Huey(huey.storage, result_store=huey.result_storage)
    return make_huey()


def test_crontab_periodic_task_enqueued_only_on_matching_minutes(huey):
    runs = []

    @huey.periodic_task(crontab(minute='*/5'))
    def every_five():
        runs.append(1)
        return 'tick'

    @huey.task()
    def ordinary():
        pass  # pragma: no cover - never enqueued here

    assert huey.registry.periodic_tasks() == [every_five.task_class]
    at = datetime.datetime(2024, 1, 1, 9, 35, 42)  # seconds do not matter
    queued = huey.enqueue_periodic(at)
    assert [t.name for t in queued] == [every_five.name]
    assert huey.pending_count() == 1
    assert huey.enqueue_periodic(datetime.datetime(2024, 1, 1, 9, 36)) == []
    assert huey.pending_count() == 1
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_COMPLETE and outcome.value == 'tick'
    assert runs == [1]


def test_plain_callable_schedule_gets_the_datetime(huey):
    seen = []

    def at_three_am(dt):
        seen.append(dt)
        return dt.hour == 3 and dt.minute == 0

    @huey.periodic_task(at_three_am)
    def nightly():
        return 'night'

    assert huey.enqueue_periodic(datetime.datetime(2024, 1, 1, 2, 59)) == []
    assert [t.name for t in huey.enqueue_periodic(datetime.datetime(2024, 1, 1, 3, 0))] \
        == [nightly.name]
    assert seen == [datetime.datetime(2024, 1, 1, 2, 59), datetime.datetime(2024, 1, 1, 3, 0)]
    assert huey.pending_count() == 1


def test_only_matching_tasks_of_several_are_enqueued(huey):
    @huey.periodic_task(crontab(minute='0'))
    def hourly():
        pass

    @huey.periodic_task(crontab(minute='*/15'))
    def quarterly():
        pass

    @huey.periodic_task(crontab(minute='0', hour='0'))
    def daily():
        pass

    def names(dt):
        return sorted(t.name.rpartition('.')[2] for t in huey.enqueue_periodic(dt))

    assert names(datetime.datetime(2024, 1, 1, 0, 0)) == ['daily', 'hourly', 'quarterly']
    assert names(datetime.datetime(2024, 1, 1, 5, 0)) == ['hourly', 'quarterly']
    assert names(datetime.datetime(2024, 1, 1, 5, 30)) == ['quarterly']
    assert names(datetime.datetime(2024, 1, 1, 5, 31)) == []
    assert huey.pending_count() == 6


def test_same_minute_twice_enqueues_once(huey):
    @huey.periodic_task(crontab(minute='*'))
    def every_minute():
        pass

    at = datetime.datetime(2024, 1, 1, 12, 0, 1)
    assert len(huey.enqueue_periodic(at)) == 1
    assert huey.enqueue_periodic(at.replace(second=59)) == []
    assert huey.pending_count() == 1
    assert len(huey.enqueue_periodic(at + datetime.timedelta(minutes=1))) == 1
    assert huey.pending_count() == 2


def test_two_consumers_on_one_storage_enqueue_a_slot_once(huey, make_huey, backend):
    other = twin(huey, make_huey, backend)

    def report():
        return 'report'
    # Both consumers imported the same module: same task, same name.
    first = huey.periodic_task(crontab(minute='*/10'))(report)
    second = other.periodic_task(crontab(minute='*/10'))(report)
    assert first.name == second.name

    enqueued = 0
    for i in range(60):
        dt = DAY.replace(hour=8) + datetime.timedelta(minutes=i)
        # Both consumers see every minute, in either order.
        pair = (huey, other) if dt.minute % 2 else (other, huey)
        enqueued += len(pair[0].enqueue_periodic(dt)) + len(pair[1].enqueue_periodic(dt))
    assert enqueued == 6
    assert huey.pending_count() == 6 and other.pending_count() == 6
    outcomes = run_pending(other)
    assert [o.value for o in outcomes] == ['report'] * 6


def test_a_whole_day_of_minutes(huey):
    runs = {'quarter': 0, 'six_hours': 0, 'weekday_nine': 0, 'sunday': 0}

    @huey.periodic_task(crontab(minute='*/15'))
    def quarter():
        runs['quarter'] += 1

    @huey.periodic_task(crontab(minute='0', hour='*/6'))
    def six_hours():
        runs['six_hours'] += 1

    @huey.periodic_task(crontab(minute='0', hour='9', day_of_week='1-5'))
    def weekday_nine():
        runs['weekday_nine'] += 1

    @huey.periodic_task(crontab(minute='0', day_of_week='0'))
    def sunday():
        runs['sunday'] += 1  # pragma: no cover - DAY is a Tuesday

    for dt in minutes_of(DAY):
        huey.enqueue_periodic(dt)
        if dt.minute == 59:
            run_pending(huey)  # a worker drains as the day goes
    assert runs == {'quarter': 96, 'six_hours': 4, 'weekday_nine': 1, 'sunday': 0}
    assert huey.pending_count() == 0

    # Replaying the day (a consumer restarted with a skewed clock) adds nothing.
    for dt in minutes_of(DAY):
        assert huey.enqueue_periodic(dt) == []
    assert huey.pending_count() == 0


def test_revoke_restore_periodic_task(huey):
    runs = []

    @huey.periodic_task(crontab(minute='*'))
    def beat():
        runs.append(1)

    beat.revoke()
    assert beat.is_revoked()
    for minute in range(3):
        huey.enqueue_periodic(DAY.replace(minute=minute))
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_REVOKED] * 3
    assert runs == []
    assert beat.is_revoked()  # revoke without once stays
    assert beat.restore() is True
    assert not beat.is_revoked()
    assert beat.restore() is False
    huey.enqueue_periodic(DAY.replace(minute=3))
    run_pending(huey)
    assert runs == [1]


def test_revoke_once_skips_one_run(huey):
    runs = []

    @huey.periodic_task(crontab(minute='*'))
    def beat():
        runs.append(1)

    beat.revoke(revoke_once=True)
    assert beat.is_revoked()
    huey.enqueue_periodic(DAY.replace(minute=0))
    huey.enqueue_periodic(DAY.replace(minute=1))
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_REVOKED, S.SIGNAL_COMPLETE]
    assert runs == [1]
    assert not beat.is_revoked()


def test_revoke_until(huey):
    runs = []

    @huey.periodic_task(crontab(minute='*'))
    def beat():
        runs.append(1)

    now = datetime.datetime.now()
    beat.revoke(revoke_until=now + datetime.timedelta(hours=1))
    assert beat.is_revoked()
    assert beat.is_revoked(now + datetime.timedelta(minutes=59))
    assert not beat.is_revoked(now + datetime.timedelta(minutes=61))
    # Asking about a later time did not end the revocation now.
    assert beat.is_revoked()
    huey.enqueue_periodic(DAY)
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_REVOKED and runs == []

    beat.revoke(revoke_until=now - datetime.timedelta(seconds=1))  # already over
    assert not beat.is_revoked()
    huey.enqueue_periodic(DAY.replace(minute=1))
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_COMPLETE and runs == [1]


@pytest.mark.parametrize('spec, field', [
    ({'minute': '61'}, 'minute'),
    ({'hour': '24'}, 'hour'),
    ({'day': '0'}, 'day'),
    ({'month': '13'}, 'month'),
    ({'day_of_week': '8'}, 'day_of_week'),
    ({'minute': '*/x'}, 'minute'),
    ({'hour': '5-2'}, 'hour'),
])
def test_bad_crontab_raises_at_decoration_naming_the_field(huey, spec, field):
    def job():
        pass  # pragma: no cover
    with pytest.raises(ValueError, match=field):
        huey.periodic_task(crontab(**spec))(job)
    assert huey.registry.periodic_tasks() == []


def test_schedule_must_be_callable(huey):
    def job():
        pass  # pragma: no cover
    with pytest.raises(TypeError, match='crontab'):
        huey.periodic_task('*/5 * * * *')(job)
    assert huey.registry.periodic_tasks() == []


def test_periodic_task_takes_no_arguments(huey):
    seen = []

    @huey.periodic_task(crontab(minute='0'))
    def bare(*args, **kwargs):
        seen.append((args, kwargs))
        return 'bare'

    huey.enqueue_periodic(DAY)
    result = bare()  # calling it runs it now, still without arguments
    run_pending(huey)
    assert seen == [((), {}), ((), {})]
    assert result.get() == 'bare'
    # Arguments are refused, not silently dropped.
    with pytest.raises(TypeError, match='no arguments'):
        bare(1)
    with pytest.raises(TypeError, match='no arguments'):
        bare.s(key='value')
    assert huey.pending_count() == 0


def test_periodic_task_with_context_gets_its_task(huey):
    seen = []

    @huey.periodic_task(crontab(minute='0'), context=True)
    def with_task(task=None):
        seen.append(task.name)

    huey.enqueue_periodic(DAY)
    run_pending(huey)
    assert seen == [with_task.name]


def test_unregistered_periodic_task_is_no_longer_enqueued(huey):
    @huey.periodic_task(crontab(minute='*'))
    def beat():
        pass

    assert beat.unregister() is True
    assert huey.enqueue_periodic(DAY) == []
    assert huey.pending_count() == 0
