"""Immediate mode (``always_eager=True`` / ``huey.immediate = True``): tasks
run in the caller, on in-memory storage, and the real storage is untouched."""
import pytest

from huey import Huey
from huey import signals as S
from huey.exceptions import TaskException
from tests.helpers import run_pending


@pytest.fixture
def seed_huey(backend, request, tmp_path, unique_name):
    """Builds ``Huey(queue, result_store=...)`` from the seed-era classes of
    this test's backend; flushes what it made after."""
    made = []

    def make(**kwargs):
        if backend == 'memory':
            from huey.backends.memory_backend import MemoryDataStore, MemoryQueue
            queue, store = MemoryQueue(unique_name), MemoryDataStore(unique_name + '-results')
        elif backend == 'sqlite':
            from huey.backends.sqlite_backend import SqliteDataStore, SqliteQueue
            filename = str(tmp_path / 'seed.db')
            queue = SqliteQueue(unique_name, filename=filename)
            store = SqliteDataStore(unique_name + '-results', filename=filename)
        else:
            from huey.backends.redis_backend import RedisBlockingQueue, RedisDataStore
            url = request.getfixturevalue('redis_url')
            queue = RedisBlockingQueue(unique_name, url=url)
            store = RedisDataStore(unique_name + '-results', url=url)
        h = Huey(queue, result_store=store, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.immediate = False
        h.flush()
        h.close()


def test_always_eager_runs_in_the_caller(seed_huey):
    huey = seed_huey(always_eager=True)
    assert huey.immediate and huey.always_eager
    calls = []

    @huey.task()
    def add(a, b):
        calls.append((a, b))
        return a + b

    result = add(2, 3)
    assert calls == [(2, 3)]  # already ran, before any get()
    assert result.get() == 5
    assert huey.pending_count() == 0
    huey.immediate = False
    # Nothing reached the real queue or result store.
    assert huey.pending_count() == 0 and huey.result_count() == 0


def test_immediate_attribute_switches_on_and_off(huey):
    @huey.task()
    def double(x):
        return 2 * x

    queued = double(1)  # real storage
    assert huey.pending_count() == 1

    huey.immediate = True
    assert huey.always_eager
    assert huey.pending_count() == 0  # the in-memory queue, not the real one
    assert double(21).get() == 42
    assert huey.scheduled_count() == 0

    huey.immediate = False
    assert not huey.always_eager
    # The real storage is as it was: one pending message, no results.
    assert huey.pending_count() == 1 and huey.result_count() == 0
    assert queued.get() is None
    run_pending(huey)
    assert queued.get() == 2


def test_immediate_errors_raise_task_exception_on_get(huey):
    huey.immediate = True

    @huey.task()
    def broken():
        raise ZeroDivisionError('division by nothing')

    result = broken()  # the call itself does not raise
    with pytest.raises(TaskException, match='division by nothing') as info:
        result.get()
    assert 'ZeroDivisionError' in info.value.type_name


def test_immediate_retries_run_at_once_without_delay(huey):
    huey.immediate = True
    calls = []

    @huey.task(retries=2)
    def flaky():
        calls.append(1)
        raise RuntimeError('flaky %d' % len(calls))

    result = flaky()
    assert len(calls) == 3
    with pytest.raises(TaskException, match='flaky 3'):
        result.get()


def test_immediate_pipeline(huey):
    huey.immediate = True

    @huey.task()
    def add(a, b):
        return a + b

    @huey.task()
    def fail(x):
        raise ValueError('bad %s' % x)

    @huey.task()
    def on_error(exc):
        return 'handled %s' % exc.metadata['error']

    group = huey.enqueue(add.s(1, 2).then(add, 10).then(add, 100))
    assert group.get() == [3, 13, 113]

    failing = fail.s(7).error(on_error.s())
    result = huey.enqueue(failing)
    with pytest.raises(TaskException, match='bad 7'):
        result.get()
    handled = huey.result(failing.on_error.id)
    assert handled == 'handled bad 7'


def test_immediate_map(huey):
    huey.immediate = True
    calls = []

    @huey.task()
    def square(x):
        calls.append(x)
        return x * x

    group = square.map(range(5))
    assert calls == [0, 1, 2, 3, 4]
    assert group.get() == [0, 1, 4, 9, 16]


def test_immediate_signals_fire_and_delayed_tasks_wait(huey):
    huey.immediate = True
    got = []
    huey.signal()(lambda sig, task, *args: got.append(sig))

    @huey.task()
    def later():
        return 'later'

    result = later.schedule(delay=3600)
    assert got == [S.SIGNAL_SCHEDULED]
    assert result.get() is None
    assert huey.scheduled_count() == 1
    later()
    assert got[1:] == [S.SIGNAL_ENQUEUED, S.SIGNAL_EXECUTING, S.SIGNAL_COMPLETE]

    huey.immediate = False
    assert huey.scheduled_count() == 0  # the real schedule never saw it


def test_immediate_locks_live_in_memory(huey):
    with huey.lock_task('real'):
        huey.immediate = True
        assert not huey.is_locked('real')
        with huey.lock_task('eager'):
            assert huey.is_locked('eager')
        huey.immediate = False
        assert huey.is_locked('real')
    assert not huey.is_locked('real')


def test_each_switch_on_starts_empty(huey):
    @huey.task()
    def later():
        pass

    huey.immediate = True
    later.schedule(delay=3600)
    assert huey.scheduled_count() == 1
    huey.immediate = False
    huey.immediate = True
    assert huey.scheduled_count() == 0


def test_setting_immediate_twice_keeps_the_real_storage(huey):
    real = huey.storage

    @huey.task()
    def noop():
        pass
    noop()
    huey.immediate = True
    huey.immediate = True  # no-op: must not save the memory storage as "real"
    huey.immediate = False
    assert huey.storage is real
    assert huey.pending_count() == 1
    huey.immediate = False
    assert huey.storage is real


def test_immediate_without_result_store_returns_none(make_huey):
    huey = make_huey(results=False)
    huey.immediate = True
    calls = []

    @huey.task()
    def work():
        calls.append(1)
        return 1

    assert work() is None
    assert calls == [1]
    huey.immediate = False
    assert huey.result_storage is None


def test_always_eager_via_flavor_keyword(make_huey):
    huey = make_huey(immediate=True)
    assert huey.immediate

    @huey.task()
    def hello(name):
        return 'hello %s' % name
    assert hello('world').get() == 'hello world'
