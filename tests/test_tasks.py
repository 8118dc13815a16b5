"""Tasks, results, retries, pipelines, priorities: on memory, SQLite and Redis."""
import datetime
import time

import pytest

from huey import signals as S
from huey.exceptions import (CancelExecution, ConfigurationError, DataStoreTimeout,
                             RetryTask, TaskException)
from tests.helpers import run_pending


def test_call_enqueues_and_result_comes_back(huey):
    @huey.task()
    def add(a, b):
        return a + b

    result = add(2, 3)
    assert result.get() is None  # not run yet
    assert huey.pending_count() == 1
    run_pending(huey)
    assert result.get() == 5
    assert result.get() == 5  # cached on the handle once read
    assert huey.result_count() == 0  # read results are popped


def test_task_names_are_module_function_and_duplicates_fail(huey):
    @huey.task()
    def count_beans(n):
        return n

    assert count_beans.name == 'tests.test_tasks.count_beans'
    assert count_beans.task_class.name == count_beans.name

    def count_beans_again(n):
        return n
    count_beans_again.__name__ = 'count_beans'
    with pytest.raises(ConfigurationError, match='already registered.*name='):
        huey.task()(count_beans_again)

    @huey.task(name='custom')
    def other():
        pass
    assert other.name == 'custom'


def test_map_enqueues_many_in_one_call(huey):
    @huey.task()
    def square(x):
        return x * x

    group = square.map(range(10))
    assert huey.pending_count() == 10
    run_pending(huey)
    assert group.get(blocking=True, timeout=5) == [x * x for x in range(10)]


def test_call_local_runs_here(huey):
    @huey.task()
    def double(x):
        return 2 * x
    assert double.call_local(4) == 8
    assert huey.pending_count() == 0


def test_priorities_higher_first(huey):
    order = []

    @huey.task()
    def note(label):
        order.append(label)

    note.schedule(args=('low',), priority=1)
    note('none')
    note.schedule(args=('high',), priority=10)
    run_pending(huey)
    assert order == ['high', 'low', 'none'] or order == ['high', 'none', 'low']
    assert order[0] == 'high'


def test_task_level_priority_default(huey):
    order = []

    @huey.task(priority=5)
    def urgent():
        order.append('urgent')

    @huey.task()
    def normal():
        order.append('normal')

    normal()
    urgent()
    run_pending(huey)
    assert order == ['urgent', 'normal']


def test_schedule_with_delay_waits_in_storage(huey):
    @huey.task()
    def ping():
        return 'pong'

    result = ping.schedule(delay=60)
    assert huey.pending_count() == 0 and huey.scheduled_count() == 1
    assert huey.move_due(time.time() + 30) == 0
    assert huey.move_due(time.time() + 61) == 1
    run_pending(huey)
    assert result.get() == 'pong'


@pytest.mark.parametrize('kind', ['naive-local', 'aware-utc', 'aware-other-zone'])
def test_schedule_eta_naive_and_aware(huey, kind):
    @huey.task()
    def ping():
        return 1

    instant = time.time() + 3600
    if kind == 'naive-local':
        eta = datetime.datetime.fromtimestamp(instant)  # local wall time, as datetime.now()
    elif kind == 'aware-utc':
        eta = datetime.datetime.fromtimestamp(instant, datetime.timezone.utc)
    else:
        eta = datetime.datetime.fromtimestamp(instant, datetime.timezone(datetime.timedelta(hours=-7)))
    ping.schedule(eta=eta)
    [(stored_eta, _)] = huey.storage.schedule_items()
    assert abs(stored_eta - instant) < 1e-3


def test_schedule_rejects_eta_and_delay_together(huey):
    @huey.task()
    def ping():
        pass
    with pytest.raises(ValueError, match='not both'):
        ping.schedule(eta=datetime.datetime.now(), delay=5)


def test_pipeline_passes_results_along(huey):
    @huey.task()
    def add(a, b):
        return a + b

    pipeline = add.s(1, 2).then(add, 3).then(add, 4)
    group = huey.enqueue(pipeline)
    run_pending(huey)
    assert group.get() == [3, 6, 10]


def test_pipeline_on_error(huey):
    seen = []

    @huey.task()
    def boom():
        raise ValueError('nope')

    @huey.task()
    def handle(exc):
        seen.append(exc)

    huey.enqueue(boom.s().error(handle))
    run_pending(huey)
    assert len(seen) == 1 and isinstance(seen[0], TaskException)
    assert 'ValueError' in seen[0].metadata['type'] and seen[0].metadata['error'] == 'nope'


def test_task_exception_carries_type_message_traceback(huey):
    @huey.task()
    def fail():
        raise KeyError('missing-key')

    result = fail()
    run_pending(huey)
    with pytest.raises(TaskException) as info:
        result.get()
    meta = info.value.metadata
    assert meta['type'] == 'builtins.KeyError'
    assert 'missing-key' in meta['error']
    assert 'raise KeyError' in meta['traceback']


def test_unpicklable_exception_is_still_reported(huey):
    class Weird(Exception):
        def __init__(self):
            super().__init__('weird failure')
            self.lock = __import__('threading').Lock()  # not picklable

    @huey.task()
    def fail():
        raise Weird()

    result = fail()
    run_pending(huey)
    with pytest.raises(TaskException, match='weird failure'):
        result.get()


def test_exception_whose_str_raises_is_still_reported(huey):
    class Sullen(Exception):
        def __str__(self):
            raise RuntimeError('no')

    @huey.task()
    def fail():
        raise Sullen()

    result = fail()
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_ERROR]
    with pytest.raises(TaskException, match='Sullen whose str'):
        result.get()


def test_sys_exit_in_a_task_fails_the_task_not_the_worker(huey):
    @huey.task()
    def leave():
        raise SystemExit(3)

    result = leave()
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_ERROR]
    with pytest.raises(TaskException, match='SystemExit'):
        result.get()


def test_unpicklable_result_fails_clearly(huey):
    @huey.task()
    def make_lock():
        return __import__('threading').Lock()

    result = make_lock()
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_ERROR
    with pytest.raises(TaskException, match='could not be stored'):
        result.get()


def test_blocking_get_times_out(huey):
    @huey.task()
    def never_run():
        pass
    result = never_run()
    start = time.monotonic()
    with pytest.raises(DataStoreTimeout):
        result.get(blocking=True, timeout=0.3)
    assert time.monotonic() - start < 2


def test_none_result_does_not_hang_blocking_get(make_huey):
    huey = make_huey(store_none=False)

    @huey.task()
    def nothing():
        return None

    result = nothing()
    run_pending(huey)
    start = time.monotonic()
    assert result.get(blocking=True, timeout=5) is None
    assert time.monotonic() - start < 1


def test_store_none_keeps_none(make_huey):
    huey = make_huey(store_none=True)

    @huey.task()
    def nothing():
        return None
    result = nothing()
    run_pending(huey)
    assert huey.result_storage.has_data_for_key(result.id)
    assert result.get() is None


def test_preserve_keeps_result_and_huey_result_reads_by_id(huey):
    @huey.task()
    def value():
        return 42
    result = value()
    run_pending(huey)
    assert huey.result(result.id, preserve=True) == 42
    assert huey.result(result.id) == 42
    assert huey.result(result.id) is None


def test_retries_after_delay(huey):
    calls = []

    @huey.task(retries=2, retry_delay=10)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError('try again')
        return 'ok'

    result = flaky()
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_RETRYING
    assert huey.scheduled_count() == 1  # the retry waits in storage
    assert result.get() is None  # not failed yet: retries remain
    huey.move_due(time.time() + 11)
    run_pending(huey)
    huey.move_due(time.time() + 11)
    run_pending(huey)
    assert len(calls) == 3 and result.get() == 'ok'


def test_retries_exhausted_stores_error(huey):
    @huey.task(retries=1)
    def always():
        raise RuntimeError('always')
    result = always()
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_RETRYING, S.SIGNAL_ERROR]
    with pytest.raises(TaskException, match='always'):
        result.get()


def test_retry_task_asks_for_retry(huey):
    calls = []

    @huey.task()
    def again():
        calls.append(1)
        if len(calls) == 1:
            raise RetryTask(delay=30)
        return 'done'

    result = again()
    run_pending(huey)
    assert huey.scheduled_count() == 1
    huey.move_due(time.time() + 31)
    run_pending(huey)
    assert result.get() == 'done'


def test_cancel_execution(huey):
    @huey.task()
    def cancelled():
        raise CancelExecution()
    fired = []
    huey.signal(S.SIGNAL_CANCELED)(lambda sig, task: fired.append(task.id))
    result = cancelled()
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_CANCELED and fired == [result.id]


def test_expired_task_is_skipped(huey):
    ran = []

    @huey.task(expires=0.001)
    def too_late():
        ran.append(1)
    too_late()
    time.sleep(0.01)  # expiry is a wall-clock instant: let it pass
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_EXPIRED and ran == []


def test_revoke_instance_and_restore(huey):
    ran = []

    @huey.task()
    def work(n):
        ran.append(n)

    first, second = work(1), work(2)
    first.revoke()
    second.revoke()
    assert huey.is_revoked(second.id)
    second.restore()
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_REVOKED, S.SIGNAL_COMPLETE]
    assert ran == [2]


def test_revoke_all_instances(huey):
    ran = []

    @huey.task()
    def work(n):
        ran.append(n)

    work.revoke()
    assert work.is_revoked()
    work(1)
    run_pending(huey)
    assert ran == []
    work.restore()
    assert not work.is_revoked()
    work(2)
    run_pending(huey)
    assert ran == [2]


def test_revoke_once_and_until(huey):
    ran = []

    @huey.task()
    def work(n):
        ran.append(n)

    work.revoke(revoke_once=True)
    work(1)
    work(2)
    run_pending(huey)
    assert ran == [2]
    work.revoke(revoke_until=datetime.datetime.now() - datetime.timedelta(seconds=1))
    assert not work.is_revoked()


def test_no_result_store_returns_none(make_huey):
    huey = make_huey(results=False)

    @huey.task()
    def add(a, b):
        return a + b
    assert add(1, 2) is None
    run_pending(huey)


def test_unicode_and_bytes_arguments_roundtrip(huey):
    @huey.task()
    def echo(text, raw):
        return text, raw

    result = echo('žluťoučký kůň 🐴', b'\xff\xfe\x00\x80')
    run_pending(huey)
    assert result.get() == ('žluťoučký kůň 🐴', b'\xff\xfe\x00\x80')


def test_large_result(huey):
    @huey.task()
    def big():
        return b'x' * (10 * 1024 * 1024)
    result = big()
    run_pending(huey)
    assert len(result.get()) == 10 * 1024 * 1024


def test_context_passes_task(huey):
    @huey.task(context=True)
    def whoami(task=None):
        return task.id
    result = whoami()
    run_pending(huey)
    assert result.get() == result.id
