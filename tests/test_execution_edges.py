"""Edges of running a task: failing hooks, storage failing mid-finish,
timeouts, rescheduling, locks of dead workers."""
import pytest

from huey import ResultTimeout, signals as S
from huey.exceptions import DataStoreTimeout, StorageUnavailable
from tests.helpers import run_pending


def test_failing_pre_execute_hook_fails_the_task_not_the_worker(huey):
    @huey.task(retries=1)
    def work():
        return 'ran'

    @huey.pre_execute()
    def broken(task):
        raise RuntimeError('hook broke')

    result = work()
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_RETRYING, S.SIGNAL_ERROR]
    with pytest.raises(Exception, match='hook broke'):
        result.get()


def test_storage_outage_while_storing_a_result_propagates(huey, monkeypatch):
    """Not a false "could not be stored" failure: the error reaches the
    worker, which leaves the message reserved to run again."""
    @huey.task()
    def work():
        return 'fine'

    result = work()
    reservation = huey.reserve('w', 60)

    def down(*args):
        raise StorageUnavailable('redis down (test)')
    monkeypatch.setattr(huey.result_storage, 'put_data', down)
    with pytest.raises(StorageUnavailable):
        huey.process(reservation)
    monkeypatch.undo()
    assert huey.storage.reserved_size() == 1  # not acked: it will run again
    assert huey.storage.requeue(reservation.token)
    run_pending(huey)
    assert result.get() == 'fine'


def test_result_timeout_is_caught_by_both_names(huey):
    @huey.task()
    def never():
        pass
    result = never()
    with pytest.raises(ResultTimeout):
        result.get(blocking=True, timeout=0.1)
    with pytest.raises(DataStoreTimeout):
        result.get(blocking=True, timeout=0.1)


def test_reschedule_keeps_arguments_expiry_and_pipeline(huey):
    @huey.task()
    def add(a, b):
        return a + b

    first = huey.enqueue(add.s(1, 2).then(add, 10))[0]
    moved = first.reschedule(delay=60)
    assert huey.is_revoked(first.id)
    [task] = huey.scheduled()
    assert task.args == (1, 2) and task.on_complete is not None and task.id != first.id
    assert moved[0].id == task.id


def test_lock_records_its_holder_and_dead_workers_locks_are_freed(huey):
    lock = huey.lock_task('exclusive')
    huey.worker_owner = 'host:1:2'
    lock.acquire()
    assert huey.storage.peek_data(lock.key) == b'host:1:2'
    assert huey.release_locks_of('host:1:999') == []
    assert lock.is_locked()
    assert huey.release_locks_of('host:1:2') == ['exclusive']
    assert not lock.is_locked()


def test_flush_locks_without_names_flushes_every_known_lock(huey):
    a, b = huey.lock_task('a'), huey.lock_task('b')
    a.acquire()
    b.acquire()
    assert huey.flush_locks() == ['a', 'b']
    assert not a.is_locked() and not b.is_locked()


def test_lock_named_inside_a_task_is_freed_for_a_dead_worker(huey):
    """The supervisor never saw this lock's name (it was built in the task
    body): the worker's note in storage tells it which locks to free."""
    from huey import Huey
    worker_view = Huey(huey.storage)  # the worker's copy; huey plays the supervisor
    worker_view.worker_owner = 'host:1:7'
    worker_view.lock_task('report-%d' % 42).acquire()  # then the worker is killed
    assert 'report-42' not in huey.lock_names
    assert huey.release_locks_of('host:1:7') == ['report-42']
    assert not huey.is_locked('report-42')


def test_released_lock_leaves_no_note(huey):
    huey.worker_owner = 'host:1:8'
    with huey.lock_task('short'):
        assert huey.storage.peek_data('locks-held:host:1:8') is not None
    assert huey.storage.peek_data('locks-held:host:1:8') is None


def test_failed_second_attempt_keeps_the_first_holders_note(huey):
    """Trying a lock this worker already holds fails, and must not erase the
    note that lets the supervisor free the lock if the worker dies."""
    from huey.exceptions import TaskLockedException
    huey.worker_owner = 'host:1:9'
    lock = huey.lock_task('job-1')
    lock.acquire()
    with pytest.raises(TaskLockedException):
        lock.acquire()
    from huey import Huey
    assert Huey(huey.storage).release_locks_of('host:1:9') == ['job-1']


def test_revoke_all_takes_the_task_itself_as_in_huey(huey):
    @huey.task()
    def work():
        return 1

    huey.revoke_all(work)
    assert huey.is_revoked(work) and huey.is_revoked_all(work) and work.is_revoked()
    assert huey.is_revoked(work.task_class)
    assert huey.restore_all(work)
    assert not huey.is_revoked(work)
