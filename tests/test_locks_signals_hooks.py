"""Task locks, lifecycle signals and hooks: on memory, SQLite and Redis."""
import datetime

import pytest

from huey import Huey
from huey import signals as S
from huey.exceptions import CancelExecution, TaskException, TaskLockedException
from tests.helpers import run_pending


def twin(huey, make_huey, backend):
    """A second Huey on the same storage, as a second consumer would have.
    Memory storages are per object, so the memory twin shares the object."""
    if backend == 'memory':
        return Huey(huey.storage, result_store=huey.result_storage)
    return make_huey()


# -- locks -----------------------------------------------------------------

def test_lock_as_context_manager(huey):
    assert not huey.is_locked('beans')
    with huey.lock_task('beans'):
        assert huey.is_locked('beans')
        with pytest.raises(TaskLockedException, match='beans'):
            with huey.lock_task('beans'):
                pass  # pragma: no cover - never entered
        # The failed attempt did not release the holder's lock.
        assert huey.is_locked('beans')
        # Other names are independent.
        with huey.lock_task('peas'):
            assert huey.is_locked('peas')
        assert not huey.is_locked('peas')
    assert not huey.is_locked('beans')


def test_lock_released_when_body_raises(huey):
    with pytest.raises(RuntimeError):
        with huey.lock_task('boom'):
            raise RuntimeError('inside')
    assert not huey.is_locked('boom')
    with huey.lock_task('boom'):  # can be taken again
        pass


def test_lock_as_decorator_outside_a_task(huey):
    lock = huey.lock_task('deco')
    seen = []

    @lock
    def guarded(x):
        seen.append(huey.is_locked('deco'))
        return x * 2

    assert guarded.__name__ == 'guarded'
    assert guarded(4) == 8
    assert seen == [True]
    assert not huey.is_locked('deco')
    with huey.lock_task('deco'):
        with pytest.raises(TaskLockedException):
            guarded(1)
    assert seen == [True]


def test_lock_is_shared_by_two_huey_objects(huey, make_huey, backend):
    other = twin(huey, make_huey, backend)
    with huey.lock_task('shared'):
        assert other.is_locked('shared')
        with pytest.raises(TaskLockedException):
            other.lock_task('shared').acquire()
    assert not other.is_locked('shared')


def test_locked_task_outcome_signal_and_release(huey):
    ran, locked = [], []

    @huey.task()
    @huey.lock_task('only-one')
    def guarded(n):
        ran.append((n, huey.is_locked('only-one')))
        return n

    huey.signal(S.SIGNAL_LOCKED)(lambda sig, task, *a: locked.append((sig, task.id)))
    errors = []
    huey.signal(S.SIGNAL_ERROR)(lambda sig, task, *a: errors.append(task.id))

    with huey.lock_task('only-one'):
        blocked = guarded(1)
        [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_LOCKED
    assert isinstance(outcome.value, TaskLockedException)
    assert locked == [(S.SIGNAL_LOCKED, blocked.id)]
    assert errors == []  # locked is not reported as an error as well
    assert ran == []
    # The caller learns the task did not run rather than waiting forever.
    with pytest.raises(TaskException) as info:
        blocked.get()
    assert 'TaskLockedException' in info.value.type_name
    assert not huey.is_locked('only-one')

    free = guarded(2)
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_COMPLETE
    assert ran == [(2, True)]  # held while the task ran
    assert free.get() == 2
    assert not huey.is_locked('only-one')  # released after


def test_locked_task_with_retries_is_retried(huey):
    @huey.task(retries=1, retry_delay=30)
    @huey.lock_task('retry-lock')
    def guarded():
        return 'ran'

    with huey.lock_task('retry-lock'):
        result = guarded()
        [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_RETRYING
    assert huey.scheduled_count() == 1
    assert result.get() is None  # not failed for good
    huey.move_due(datetime.datetime.now().timestamp() + 31)
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_COMPLETE and result.get() == 'ran'


def test_lock_released_when_task_fails(huey):
    @huey.task()
    @huey.lock_task('fails')
    def failing():
        raise ValueError('nope')

    result = failing()
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_ERROR
    assert not huey.is_locked('fails')
    with pytest.raises(TaskException, match='nope'):
        result.get()


def test_flush_locks(huey):
    huey.lock_task('a').acquire()
    huey.lock_task('b').acquire()
    assert huey.is_locked('a') and huey.is_locked('b')
    flushed = huey.flush_locks('a', 'b', 'never-taken')
    assert sorted(flushed) == ['a', 'b']
    assert not huey.is_locked('a') and not huey.is_locked('b')
    assert huey.flush_locks('a') == []
    with huey.lock_task('a'):
        pass


# -- signals ---------------------------------------------------------------

def _recorder(huey, *names):
    got = []

    @huey.signal(*names)
    def handler(signal, task, *args):
        got.append((signal, task.id if task is not None else None,
                    task.name if task is not None else None, args))
    return got


def test_signal_enqueued(huey):
    got = _recorder(huey, S.SIGNAL_ENQUEUED)

    @huey.task()
    def work():
        pass
    result = work()
    assert got == [(S.SIGNAL_ENQUEUED, result.id, work.name, ())]


def test_signal_scheduled(huey):
    got = _recorder(huey, S.SIGNAL_SCHEDULED, S.SIGNAL_ENQUEUED)

    @huey.task()
    def work():
        pass
    result = work.schedule(delay=60)
    assert got == [(S.SIGNAL_SCHEDULED, result.id, work.name, ())]


def test_signal_executing_and_complete(huey):
    got = _recorder(huey, S.SIGNAL_EXECUTING, S.SIGNAL_COMPLETE)
    order = []

    @huey.task()
    def work():
        order.append(len(got))  # executing fired before the body ran
        return 1
    result = work()
    run_pending(huey)
    assert got == [(S.SIGNAL_EXECUTING, result.id, work.name, ()),
                   (S.SIGNAL_COMPLETE, result.id, work.name, ())]
    assert order == [1]


def test_signal_error_carries_exception(huey):
    got = _recorder(huey, S.SIGNAL_ERROR, S.SIGNAL_COMPLETE)

    @huey.task()
    def work():
        raise KeyError('missing')
    result = work()
    run_pending(huey)
    [(signal, task_id, name, args)] = got
    assert (signal, task_id, name) == (S.SIGNAL_ERROR, result.id, work.name)
    assert len(args) == 1 and isinstance(args[0], KeyError)


def test_signal_retrying(huey):
    got = _recorder(huey, S.SIGNAL_RETRYING, S.SIGNAL_ERROR)

    @huey.task(retries=1, retry_delay=60)
    def work():
        raise RuntimeError('again')
    result = work()
    run_pending(huey)
    assert got == [(S.SIGNAL_RETRYING, result.id, work.name, ())]


def test_signal_revoked(huey):
    got = _recorder(huey, S.SIGNAL_REVOKED, S.SIGNAL_EXECUTING)

    @huey.task()
    def work():
        pass
    result = work()
    result.revoke()
    run_pending(huey)
    assert got == [(S.SIGNAL_REVOKED, result.id, work.name, ())]


def test_signal_expired(huey):
    got = _recorder(huey, S.SIGNAL_EXPIRED, S.SIGNAL_EXECUTING)

    @huey.task()
    def work():
        pass
    past = datetime.datetime.now() - datetime.timedelta(minutes=5)
    result = work.schedule(expires=past)
    run_pending(huey)
    assert got == [(S.SIGNAL_EXPIRED, result.id, work.name, ())]


def test_signal_locked(huey):
    got = _recorder(huey, S.SIGNAL_LOCKED)

    @huey.task()
    def work():
        with huey.lock_task('sig-lock'):
            pass
    with huey.lock_task('sig-lock'):
        result = work()
        run_pending(huey)
    assert got == [(S.SIGNAL_LOCKED, result.id, work.name, ())]


def test_signal_canceled(huey):
    got = _recorder(huey, S.SIGNAL_CANCELED, S.SIGNAL_EXECUTING)

    @huey.pre_execute()
    def veto(task):
        raise CancelExecution()

    @huey.task()
    def work():
        pass
    result = work()
    run_pending(huey)
    assert got == [(S.SIGNAL_CANCELED, result.id, work.name, ())]


def test_failing_signal_handler_does_not_break_the_task(huey, caplog):
    @huey.signal()
    def broken(signal, task, *args):
        raise RuntimeError('handler bug on %s' % signal)

    after = _recorder(huey, S.SIGNAL_COMPLETE)

    @huey.task()
    def work():
        return 'fine'
    result = work()
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_COMPLETE
    assert result.get() == 'fine'
    assert [g[0] for g in after] == [S.SIGNAL_COMPLETE]  # later handlers still ran
    assert 'handler bug on complete' in caplog.text  # logged, not swallowed silently


def test_signal_without_names_gets_every_signal(huey):
    got = _recorder(huey)

    @huey.task()
    def work():
        return 1

    @huey.task()
    def fails():
        raise ValueError()
    ok, bad = work(), fails()
    run_pending(huey)
    assert [(g[0], g[1]) for g in got] == [
        (S.SIGNAL_ENQUEUED, ok.id), (S.SIGNAL_ENQUEUED, bad.id),
        (S.SIGNAL_EXECUTING, ok.id), (S.SIGNAL_COMPLETE, ok.id),
        (S.SIGNAL_EXECUTING, bad.id), (S.SIGNAL_ERROR, bad.id)]


def test_unknown_signal_name_raises(huey):
    with pytest.raises(ValueError, match='bogus'):
        @huey.signal('bogus')
        def handler(signal, task):
            pass  # pragma: no cover
    with pytest.raises(ValueError):
        huey.signal(S.SIGNAL_COMPLETE, 'completed')(lambda *a: None)


def test_disconnect_signal(huey):
    got = _recorder(huey, S.SIGNAL_ENQUEUED)
    seen = []

    def handler(signal, task):
        seen.append(signal)
    huey.signal(S.SIGNAL_ENQUEUED)(handler)

    @huey.task()
    def work():
        pass
    work()
    huey.disconnect_signal(handler, S.SIGNAL_ENQUEUED)
    work()
    assert seen == [S.SIGNAL_ENQUEUED]
    assert len(got) == 2


# -- hooks -----------------------------------------------------------------

def test_pre_execute_hook_sees_task_and_cancel_execution_cancels(huey):
    seen, ran = [], []

    @huey.pre_execute()
    def check(task):
        seen.append(task.id)
        if task.args == ('veto',):
            raise CancelExecution()

    @huey.task()
    def work(label):
        ran.append(label)
        return label
    vetoed, allowed = work('veto'), work('ok')
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_CANCELED, S.SIGNAL_COMPLETE]
    assert seen == [vetoed.id, allowed.id]
    assert ran == ['ok']
    assert allowed.get() == 'ok'


def test_pre_execute_cancel_with_retry_retries(huey):
    calls = []

    @huey.pre_execute()
    def not_yet(task):
        calls.append(task.retries)
        if len(calls) == 1:
            raise CancelExecution(retry=True)

    @huey.task(retries=1)
    def work():
        return 'later'
    result = work()
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_RETRYING, S.SIGNAL_COMPLETE]
    assert calls == [1, 0]
    assert result.get() == 'later'


def test_post_execute_gets_task_value_and_exception(huey):
    seen = []

    @huey.post_execute()
    def after(task, value, exc):
        seen.append((task.id, value, exc))

    @huey.task()
    def good():
        return 42

    @huey.task()
    def bad():
        raise ValueError('bad value')
    g, b = good(), bad()
    run_pending(huey)
    assert seen[0] == (g.id, 42, None)
    task_id, value, exc = seen[1]
    assert task_id == b.id and value is None
    assert isinstance(exc, ValueError) and str(exc) == 'bad value'


def test_failing_post_execute_hook_does_not_break_the_task(huey):
    @huey.post_execute()
    def broken(task, value, exc):
        raise RuntimeError('hook bug')

    @huey.task()
    def work():
        return 'still fine'
    result = work()
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_COMPLETE
    assert result.get() == 'still fine'


def test_startup_and_shutdown_hooks(huey):
    calls = []

    @huey.on_startup()
    def open_db():
        calls.append('open_db')

    @huey.on_startup()
    def warm_cache():
        calls.append('warm_cache')

    @huey.on_shutdown()
    def close_db():
        calls.append('close_db')

    assert calls == []  # decorating runs nothing
    huey.run_startup_hooks()
    assert calls == ['open_db', 'warm_cache']
    huey.run_shutdown_hooks()
    assert calls == ['open_db', 'warm_cache', 'close_db']
    # Decorators return the function unchanged, so it stays callable.
    open_db()
    assert calls[-1] == 'open_db'


def test_failing_startup_hook_raises_and_failing_shutdown_hook_does_not(huey, caplog):
    calls = []

    @huey.on_startup()
    def cannot_start():
        raise ConnectionError('db down')

    @huey.on_shutdown()
    def broken_close():
        raise RuntimeError('close failed')

    @huey.on_shutdown()
    def other_close():
        calls.append('other_close')

    with pytest.raises(ConnectionError, match='db down'):
        huey.run_startup_hooks()
    huey.run_shutdown_hooks()  # does not raise; the next hook still runs
    assert calls == ['other_close']
    assert 'close failed' in caplog.text
