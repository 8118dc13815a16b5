"""The seed's API, exactly as ``seed/imports.rst`` writes it: queue, data
store, schedule and event emitter classes handed to ``Huey(...)``, and the
config.py / tasks.py / main.py layout. Redis first, then the SQLite and
memory twins."""
import importlib
import json
import pathlib
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest
import redis

from huey import Huey
from huey import signals as S
from huey.exceptions import ConfigurationError
from huey.message import peek_name
from tests.helpers import run_pending, wait_for


@pytest.fixture
def server(redis_url):
    """host, port and db of the test Redis, as the seed spells them."""
    parsed = urlparse(redis_url)
    return {'host': parsed.hostname, 'port': parsed.port or 6379}


@pytest.fixture
def built():
    """Huey objects a test made; flushed and closed after."""
    made = []
    yield made
    for h in made:
        h.immediate = False
        h.flush()
        h.close()


def keep(built, huey):
    built.append(huey)
    return huey


def assert_enqueue_run_result(huey):
    @huey.task()
    def count_beans(num):
        return 'Counted %s beans' % num

    result = count_beans(10)
    assert huey.pending_count() == 1
    assert result.get() is None
    run_pending(huey)
    assert result.get(blocking=True, timeout=5) == 'Counted 10 beans'
    return count_beans


# -- Redis: the seed's classes -----------------------------------------------

def test_seed_config_redis(server, unique_name, built):
    from huey.backends.redis_backend import RedisBlockingQueue, RedisDataStore
    queue = RedisBlockingQueue(unique_name, host=server['host'], port=server['port'])
    result_store = RedisDataStore(unique_name + '-results', host=server['host'],
                                  port=server['port'])
    huey = keep(built, Huey(queue, result_store=result_store))
    assert huey.storage is queue.storage
    assert huey.result_storage is result_store.storage

    @huey.task()
    def count_beans(num):
        return num * 2

    result = count_beans(21)
    assert len(queue) == 1  # the front door sees its own queue
    assert len(result_store) == 0
    run_pending(huey)
    assert len(queue) == 0
    assert len(result_store) == 1  # the result went to the result store's name
    assert queue.storage.result_count() == 0  # and not to the queue's
    assert result.get() == 42


def test_redis_queue_name_without_blocking(server, unique_name, built):
    from huey.backends.redis_backend import RedisDataStore, RedisQueue
    huey = keep(built, Huey(RedisQueue(unique_name, **server),
                            result_store=RedisDataStore(unique_name + '-r', **server)))
    assert_enqueue_run_result(huey)


def test_redis_url(redis_url, unique_name, built):
    from huey.backends.redis_backend import RedisBlockingQueue, RedisDataStore
    huey = keep(built, Huey(RedisBlockingQueue(unique_name, url=redis_url),
                            result_store=RedisDataStore(unique_name + '-results', url=redis_url)))
    assert_enqueue_run_result(huey)


def test_redis_connection_pool(server, unique_name, built):
    from huey.backends.redis_backend import RedisBlockingQueue, RedisDataStore
    pool = redis.ConnectionPool(host=server['host'], port=server['port'])
    huey = keep(built, Huey(RedisBlockingQueue(unique_name, connection_pool=pool),
                            result_store=RedisDataStore(unique_name + '-results',
                                                        connection_pool=pool)))
    assert_enqueue_run_result(huey)
    assert pool.connection_kwargs['port'] == server['port']
    pool.disconnect()


def test_redis_db_and_password(server, unique_name, built):
    from huey.backends.redis_backend import RedisBlockingQueue, RedisDataStore

    def build(db):
        return keep(built, Huey(
            RedisBlockingQueue(unique_name, db=db, password=None, **server),
            result_store=RedisDataStore(unique_name + '-results', db=db, password=None,
                                        **server)))

    in_db1, in_db0 = build(1), build(0)
    count_beans = assert_enqueue_run_result(in_db1)
    count_beans(5)
    # db= is honoured: the same names in db 0 hold nothing.
    assert in_db1.pending_count() == 1
    assert in_db0.pending_count() == 0


def test_no_result_store_returns_none(server, unique_name, built):
    from huey.backends.redis_backend import RedisBlockingQueue
    huey = keep(built, Huey(RedisBlockingQueue(unique_name, **server)))
    assert huey.result_storage is None
    ran = []

    @huey.task()
    def count_beans(num):
        ran.append(num)
        return num

    assert count_beans(3) is None
    run_pending(huey)
    assert ran == [3]
    with pytest.raises(ConfigurationError, match='result_store'):
        huey.result('anything')


def test_redis_schedule_on_the_same_server(server, unique_name, built):
    from huey.backends.redis_backend import RedisBlockingQueue, RedisDataStore, RedisSchedule

    def build():
        return keep(built, Huey(RedisBlockingQueue(unique_name, **server),
                                result_store=RedisDataStore(unique_name + '-results', **server),
                                schedule=RedisSchedule(unique_name, **server)))

    producer, consumer = build(), build()

    def later(x):
        return x + 1
    producer.task()(later)
    result = producer.task()(later).schedule(args=(1,), delay=60)
    consumer.task()(later)
    # In Redis, not in the producer's memory: the other object sees it.
    assert consumer.scheduled_count() == 1
    assert consumer.pending_count() == 0
    assert len(RedisSchedule(unique_name, **server)) == 1
    assert consumer.move_due(time.time() + 61) == 1
    run_pending(consumer)
    assert result.get() == 2


def test_redis_schedule_on_another_server_is_refused(server, unique_name):
    from huey.backends.redis_backend import RedisBlockingQueue, RedisSchedule
    queue = RedisBlockingQueue(unique_name, **server)
    with pytest.raises(ConfigurationError, match='same server'):
        Huey(queue, schedule=RedisSchedule(unique_name, host=server['host'], port=6390))
    with pytest.raises(ConfigurationError, match='same server'):
        Huey(queue, schedule=RedisSchedule(unique_name, db=3, **server))


def test_schedule_of_another_kind_is_refused(server, unique_name, tmp_path):
    from huey.backends.redis_backend import RedisBlockingQueue
    from huey.backends.sqlite_backend import SqliteSchedule
    with pytest.raises(ConfigurationError, match='same server'):
        Huey(RedisBlockingQueue(unique_name, **server),
             schedule=SqliteSchedule(unique_name, filename=str(tmp_path / 'x.db')))


def test_not_a_queue_is_refused():
    with pytest.raises(ConfigurationError, match='queue'):
        Huey(None)
    with pytest.raises(ConfigurationError, match='RedisBlockingQueue'):
        Huey(object())
    from huey.backends.memory_backend import MemoryQueue
    with pytest.raises(ConfigurationError, match='result_store'):
        Huey(MemoryQueue('q'), result_store='redis://localhost')


def _subscribe(server, channel):
    client = redis.Redis(**server)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    # Wait for the subscription to be confirmed before anything is published.
    wait_for(lambda: pubsub.get_message(timeout=0.1) is None and pubsub.subscribed,
             timeout=5, message='subscription')
    return client, pubsub


def _collect(pubsub, until, timeout=10.0):
    events = []
    deadline = time.monotonic() + timeout
    while not until(events):
        if time.monotonic() > deadline:
            raise AssertionError('events so far: %r' % (events,))
        message = pubsub.get_message(timeout=0.1)
        if message and message['type'] == 'message':
            events.append(json.loads(message['data']))
    return events


def test_redis_event_emitter_publishes_json_events(server, unique_name, built):
    from huey.backends.redis_backend import (RedisBlockingQueue, RedisDataStore,
                                             RedisEventEmitter)
    channel = unique_name + '-events'
    client, pubsub = _subscribe(server, channel)
    try:
        huey = keep(built, Huey(RedisBlockingQueue(unique_name, **server),
                                result_store=RedisDataStore(unique_name + '-results', **server),
                                events=RedisEventEmitter(channel, **server)))

        @huey.task()
        def count_beans(num):
            return num

        @huey.task()
        def spill_beans():
            raise ValueError('spilled')

        good, bad = count_beans(10), spill_beans()
        run_pending(huey)
        assert good.get() == 10

        def seen(events):
            return {(e['id'], e['status']) for e in events}
        wanted = {(good.id, S.SIGNAL_ENQUEUED), (good.id, S.SIGNAL_EXECUTING),
                  (good.id, S.SIGNAL_COMPLETE), (bad.id, S.SIGNAL_ENQUEUED),
                  (bad.id, S.SIGNAL_EXECUTING), (bad.id, S.SIGNAL_ERROR)}
        events = _collect(pubsub, lambda evs: wanted <= seen(evs))
        by_key = {(e['id'], e['status']): e for e in events}
        complete = by_key[(good.id, S.SIGNAL_COMPLETE)]
        assert complete['task'] == count_beans.name and complete['error'] is False
        error = by_key[(bad.id, S.SIGNAL_ERROR)]
        assert error['task'] == spill_beans.name and error['error'] is True
        assert 'spilled' in error['traceback']
        # Per task, events arrive in lifecycle order.
        assert [e['status'] for e in events if e['id'] == good.id] == [
            S.SIGNAL_ENQUEUED, S.SIGNAL_EXECUTING, S.SIGNAL_COMPLETE]
    finally:
        pubsub.close()
        client.close()


# -- SQLite and memory twins -------------------------------------------------

def test_sqlite_twins(tmp_path, unique_name, built):
    from huey.backends.sqlite_backend import SqliteDataStore, SqliteQueue, SqliteSchedule
    filename = str(tmp_path / 'seed.db')

    def build():
        return keep(built, Huey(SqliteQueue(unique_name, filename=filename),
                                result_store=SqliteDataStore(unique_name + '-results',
                                                             filename=filename),
                                schedule=SqliteSchedule(unique_name, filename=filename)))

    huey = build()
    count_beans = assert_enqueue_run_result(huey)
    delayed = count_beans.schedule(args=(4,), delay=60)
    other = build()
    other.task()(count_beans.func)
    assert other.scheduled_count() == 1  # in the file, not in memory
    assert len(SqliteSchedule(unique_name, filename=filename)) == 1
    other.move_due(time.time() + 61)
    run_pending(other)
    assert delayed.get() == 'Counted 4 beans'


def test_sqlite_schedule_in_another_file_is_refused(tmp_path, unique_name):
    from huey.backends.sqlite_backend import SqliteQueue, SqliteSchedule
    queue = SqliteQueue(unique_name, filename=str(tmp_path / 'a.db'))
    with pytest.raises(ConfigurationError, match='same server'):
        Huey(queue, schedule=SqliteSchedule(unique_name, filename=str(tmp_path / 'b.db')))


def test_sqlite_queue_without_result_store(tmp_path, unique_name, built):
    from huey.backends.sqlite_backend import SqliteQueue
    huey = keep(built, Huey(SqliteQueue(unique_name, filename=str(tmp_path / 's.db'))))
    ran = []

    @huey.task()
    def work():
        ran.append(1)
    assert work() is None
    run_pending(huey)
    assert ran == [1]


def test_memory_twins(unique_name, built):
    from huey.backends.memory_backend import MemoryDataStore, MemoryQueue, MemorySchedule
    queue = MemoryQueue(unique_name)
    huey = keep(built, Huey(queue, result_store=MemoryDataStore(unique_name + '-results'),
                            schedule=MemorySchedule(unique_name)))
    count_beans = assert_enqueue_run_result(huey)
    count_beans.schedule(args=(1,), delay=60)
    assert huey.scheduled_count() == 1
    assert huey.move_due(time.time() + 61) == 1
    assert len(queue) == 1
    queue.flush()
    assert len(queue) == 0
    assert Huey(MemoryQueue(unique_name)).result_storage is None


# -- the seed's config.py / tasks.py / main.py layout ------------------------

SEED_CONFIG = '''\
# config.py
from huey import Huey
from huey.backends.redis_backend import RedisBlockingQueue
from huey.backends.redis_backend import RedisDataStore

queue = RedisBlockingQueue({queue!r}, host={host!r}, port={port!r})
result_store = RedisDataStore({results!r}, host={host!r}, port={port!r})

huey = Huey(queue, result_store=result_store)
'''

SEED_TASKS = '''\
# tasks.py
from config import huey

@huey.task()
def count_beans(num):
    print('Counted %s beans' % num)
'''

SEED_MAIN = '''\
# main.py
from config import huey  # import the "huey" object.
from tasks import count_beans  # import any tasks / decorated functions


if __name__ == '__main__':
    beans = input('How many beans? ')
    count_beans(int(beans))
    print('Enqueued job to count %s beans' % beans)
'''

SEED_MODULES = ('config', 'tasks', 'main')


@pytest.fixture
def seed_project(tmp_path, server, unique_name, monkeypatch):
    """The seed's three files in a directory on sys.path; the modules are
    dropped from sys.modules and the queues flushed afterwards."""
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'config.py').write_text(SEED_CONFIG.format(
        queue=unique_name, results=unique_name + '-results', **server))
    (project / 'tasks.py').write_text(SEED_TASKS)
    (project / 'main.py').write_text(SEED_MAIN)
    saved = {name: sys.modules.pop(name) for name in SEED_MODULES if name in sys.modules}
    monkeypatch.syspath_prepend(str(project))
    importlib.invalidate_caches()
    yield project
    config = sys.modules.get('config')
    if config is not None and str(getattr(config, '__file__', '')).startswith(str(project)):
        config.huey.flush()
        config.huey.close()
    for name in SEED_MODULES:
        sys.modules.pop(name, None)
    sys.modules.update(saved)


def test_seed_layout_imports_and_enqueues(seed_project, capsys):
    main = importlib.import_module('main')
    assert main.__file__.startswith(str(seed_project))
    huey = main.huey
    # main.huey is config's object, and importing main registered the task.
    assert huey is sys.modules['config'].huey
    assert 'tasks.count_beans' in huey.registry

    result = main.count_beans(10)
    assert huey.pending_count() == 1
    [raw] = huey.storage.queue_items()
    assert peek_name(raw) == 'tasks.count_beans'
    [pending] = huey.pending()
    assert pending.name == 'tasks.count_beans' and pending.args == (10,)

    [outcome] = run_pending(huey)  # a worker that imported main.huey
    assert outcome.status == S.SIGNAL_COMPLETE
    assert 'Counted 10 beans' in capsys.readouterr().out
    assert result.get() is None


def test_seed_main_run_as_a_script_enqueues_for_the_consumer(seed_project):
    # `python main.py` in the project directory, answering the prompt.
    done = subprocess.run([sys.executable, 'main.py'], cwd=str(seed_project), input='7\n',
                          capture_output=True, text=True, timeout=60,
                          env={'PYTHONPATH': _repo_root(), 'PATH': '/usr/bin:/bin'})
    assert done.returncode == 0, done.stderr
    assert 'Enqueued job to count 7 beans' in done.stdout
    # The consumer side: import main.huey and see the message by its name.
    main = importlib.import_module('main')
    [pending] = main.huey.pending()
    assert pending.name == 'tasks.count_beans' and pending.args == (7,)


def _repo_root():
    import huey
    return str(pathlib.Path(huey.__file__).resolve().parent.parent)


def test_seed_schedule_object_views_the_queues_schedule(redis_url, unique_name):
    """A RedisSchedule of another name on the queue's server counts the
    delayed tasks, which live with the queue (moves stay atomic)."""
    from huey import Huey
    from huey.backends.redis_backend import RedisQueue, RedisSchedule
    queue = RedisQueue(unique_name, url=redis_url)
    schedule = RedisSchedule(unique_name + '-schedule', url=redis_url)
    huey = Huey(queue, schedule=schedule)
    try:
        @huey.task()
        def later():
            pass
        later.schedule(delay=60)
        assert len(schedule) == 1 and huey.scheduled_count() == 1
    finally:
        huey.flush()
