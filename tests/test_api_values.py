"""Values a user hands the API in the forms huey accepts (timedeltas, datetimes,
epoch seconds), and the bad ones refused where they are given: none of them
may reach a worker and fail there, again and again, until it is dead-lettered."""
import datetime
import subprocess
import sys
import textwrap
import time

import pytest

from huey import signals as S
from huey.exceptions import ConfigurationError, QueueException, RetryTask, TaskException
from huey.storage.redis import RedisStorage
from tests.helpers import run_pending


def test_retry_delay_as_timedelta_runs_and_retries(huey):
    calls = []

    @huey.task(retries=1, retry_delay=datetime.timedelta(seconds=30))
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError('first time')
        return 'ok'

    result = flaky()
    before = time.time()
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_RETRYING]
    [(eta, _)] = huey.storage.schedule_items()
    assert before + 29 < eta < time.time() + 31
    assert huey.move_due(eta + 1) == 1
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_COMPLETE]
    assert result.get() == 'ok'


def test_schedule_retry_delay_as_timedelta(huey):
    @huey.task(retries=1)
    def job():
        return 1

    job.schedule(retry_delay=datetime.timedelta(minutes=2))
    [task] = huey.pending()
    assert task.retry_delay == 120.0


def test_bad_retry_delay_is_refused_at_decoration(huey):
    with pytest.raises(TypeError, match='retry_delay'):
        @huey.task(retry_delay='10')
        def job():
            pass


def test_retry_task_with_timedelta_delay_and_epoch_eta(huey):
    @huey.task()
    def later(how):
        if how == 'delay':
            raise RetryTask(delay=datetime.timedelta(seconds=40))
        raise RetryTask(eta=time.time() + 50)

    later('delay')
    later('eta')
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_RETRYING] * 2
    etas = sorted(eta - time.time() for eta, _ in huey.storage.schedule_items())
    assert 38 < etas[0] < 41 and 48 < etas[1] < 51


def test_retry_task_with_a_bad_delay_fails_the_task_clearly(huey):
    @huey.task()
    def confused():
        raise RetryTask(delay='soon')

    result = confused()
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_ERROR]
    with pytest.raises(TaskException, match='timedelta'):
        result.get()


def test_revoke_until_accepts_a_timedelta_and_refuses_garbage(huey):
    @huey.task()
    def add(a, b):
        return a + b

    add.revoke(revoke_until=datetime.timedelta(seconds=60))
    assert add.is_revoked()
    assert not add.is_revoked(datetime.datetime.now() + datetime.timedelta(seconds=61))
    add(1, 1)
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_REVOKED]
    with pytest.raises(TypeError, match='revoke_until'):
        add.revoke(revoke_until='tomorrow')
    with pytest.raises(TypeError, match='revoke_until'):
        huey.revoke_by_id('x', revoke_until=[1])
    assert huey.storage.peek_data('r:x') is None


def test_is_revoked_takes_a_datetime(huey):
    @huey.task()
    def job():
        pass

    task = job.s()
    huey.revoke(task, revoke_until=datetime.datetime.now() + datetime.timedelta(hours=1))
    assert huey.is_revoked(task)
    assert huey.is_revoked(task, datetime.datetime.now())
    assert not huey.is_revoked(task, datetime.datetime.now() + datetime.timedelta(hours=2))
    assert huey.restore(task)
    assert not huey.is_revoked(task)


def test_result_is_revoked(huey):
    @huey.task()
    def job():
        pass

    result = job()
    assert not result.is_revoked()
    result.revoke()
    assert result.is_revoked()
    result.restore()
    job.revoke()
    assert result.is_revoked()


def test_revoke_once_skips_exactly_one_of_two_concurrent_checks(huey):
    """Two workers checking two calls at once: only one may skip."""
    @huey.task()
    def job():
        pass

    first, second = job.s(), job.s()
    job.revoke(revoke_once=True)
    key = 'rt:%s' % job.name
    data = huey.storage.peek_data(key)
    # Both read the revocation before either clears it.
    assert huey._revoked_by(key, data, time.time(), peek=False)
    assert not huey._revoked_by(key, data, time.time(), peek=False)


def test_a_failing_periodic_schedule_does_not_hold_back_the_others(huey, caplog):
    @huey.periodic_task(lambda dt: True)
    def first():
        pass

    @huey.periodic_task(lambda dt: 1 / 0)
    def broken():
        pass

    @huey.periodic_task(lambda dt: True)
    def last():
        pass

    dt = datetime.datetime(2030, 1, 1, 12, 0)
    queued = huey.enqueue_periodic(dt)
    assert sorted(t.name for t in queued) == sorted([first.name, last.name])
    assert 'ZeroDivisionError' in caplog.text and broken.name in caplog.text
    queued = huey.enqueue_periodic(dt + datetime.timedelta(minutes=1))
    assert len(queued) == 2


def test_closures_from_one_factory_cannot_share_a_name(huey):
    def make(n):
        @huey.task()
        def job():
            return n
        return job

    make(1)
    with pytest.raises(ConfigurationError, match='already registered'):
        make(2)


def test_same_source_compiled_again_may_register_again(huey):
    """A module imported twice (or reloaded) registers the same task again."""
    source = 'def job():\n    return 1\n'
    namespace_a, namespace_b = {}, {}
    exec(compile(source, 'reloaded_module.py', 'exec'), namespace_a)
    exec(compile(source, 'reloaded_module.py', 'exec'), namespace_b)
    huey.task(name='reloaded_module.job')(namespace_a['job'])
    huey.task(name='reloaded_module.job')(namespace_b['job'])
    assert huey.registry.names().count('reloaded_module.job') == 1


def test_a_very_long_pipeline_says_why_it_cannot_be_queued(huey):
    @huey.task()
    def step(x=0):
        return x

    pipeline = step.s()
    for _ in range(2000):
        pipeline.then(step)
    with pytest.raises(QueueException, match='nests too deeply'):
        huey.enqueue(pipeline)


def test_result_timeout_names_the_id_when_the_task_is_unknown(huey):
    with pytest.raises(Exception, match='task id nope after'):
        huey.result('nope', blocking=True, timeout=0.05)


def test_loopback_spellings_are_one_redis_server(redis_url):
    a = RedisStorage('x', host='localhost', port=6379)
    b = RedisStorage('x', host='127.0.0.1', port=6379)
    c = RedisStorage('x', host='127.0.0.1', port=6380)
    assert a.describe_server() == b.describe_server() != c.describe_server()


def test_task_names_under_python_dash_m_match_the_consumer(tmp_path):
    """``python -m pkg.main`` names tasks ``pkg.main.*``, as the consumer
    that imports ``pkg.main`` does."""
    pkg = tmp_path / 'pkg'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'main.py').write_text(textwrap.dedent('''
        from huey import MemoryHuey
        huey = MemoryHuey('names')

        @huey.task()
        def add(a, b):
            return a + b

        if __name__ == '__main__':
            print(add.name)
    '''))
    out = subprocess.run([sys.executable, '-m', 'pkg.main'], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == 'pkg.main.add', out.stderr
    out = subprocess.run([sys.executable, 'pkg/main.py'], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == 'main.add', out.stderr


def test_one_tick_moves_every_due_task_not_just_a_batch(huey):
    """10,000 tasks due at once were moved 1,000 per scheduler tick."""
    for i in range(2500):
        huey.storage.schedule_add(b'm%d' % i, 100.0 + i)
    assert huey.move_due(now=10_000.0, batch=1000) == 2500
    assert huey.pending_count() == 2500 and huey.scheduled_count() == 0
