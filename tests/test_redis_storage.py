"""Redis-only behaviour: wakeups, concurrency, outages, connections, forks.

The shared Redis may hold other people's keys: tests only touch keys under
their own ``huey.<unique name>.`` prefix and never flush the database.
"""
import os
import threading
import time

import pytest
import redis

from huey.exceptions import ConfigurationError, StorageUnavailable
from huey.storage.redis import RedisStorage
from tests.redis_server import free_port

NOW = 1_700_000_000.0

fork = pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')


@pytest.fixture
def raw(redis_url):
    """A plain client, to look at keys from outside the storage."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def open_storage(redis_url, unique_name):
    """Factory of storages (default name: this test's); all flushed after."""
    made = []

    def open_storage(name=unique_name, **kwargs):
        kwargs.setdefault('url', redis_url)
        made.append(RedisStorage(name, **kwargs))
        return made[-1]

    yield open_storage
    for storage in made:
        storage.flush_all()
        storage.close()


def own_keys(raw, storage):
    """Every key of the storage: its prefix, then a rest without dots (a dot
    there would make it a key of a longer name, like ``<name>.kv``)."""
    pattern = ''.join('\\' + c if c in '*?[]\\' else c for c in storage.prefix) + '*'
    prefix = storage.prefix.encode()
    return sorted(key for key in raw.scan_iter(match=pattern, count=1000)
                  if b'.' not in key[len(prefix):])


def wake_length(raw, storage):
    return raw.llen(storage.prefix + 'wake')


def drain(storage, owner='w1'):
    out = []
    while True:
        reservation = storage.reserve(owner, 30, NOW)
        if reservation is None:
            return out
        out.append(reservation.data)
        storage.ack(reservation.token)


def test_wake_list_stays_bounded(open_storage, raw):
    storage = open_storage()
    for i in range(1000):
        storage.enqueue(b'%d' % i)
    # One wake item per message nobody has taken yet, never more.
    assert wake_length(raw, storage) <= storage.queue_size() == 1000
    for _ in range(600):
        reservation = storage.reserve('w1', 30, NOW)
        storage.ack(reservation.token)
    assert wake_length(raw, storage) <= storage.queue_size() == 400
    assert len(drain(storage)) == 400
    assert wake_length(raw, storage) == 0
    # Blocking reserves on an empty queue leave nothing behind either.
    assert storage.reserve('w1', 30, NOW, timeout=0.1) is None
    assert wake_length(raw, storage) == 0


def test_concurrent_reservers_get_each_message_exactly_once(open_storage, unique_name):
    producer = open_storage()
    expected = [b'%d' % i for i in range(500)]
    producer.enqueue_many([(data, i % 3) for i, data in enumerate(expected)])
    handles = [open_storage(unique_name) for _ in range(4)]
    got = [[] for _ in handles]
    errors = []

    def consume(storage, out):
        try:
            while True:
                reservation = storage.reserve('w%d' % id(out), 30, NOW, timeout=0.2)
                if reservation is None:
                    return
                out.append(reservation.data)
                assert storage.ack(reservation.token)
        except Exception as exc:  # reported below: a thread's assert is lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(h, out)) for h, out in zip(handles, got)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    received = [data for out in got for data in out]
    assert len(received) == len(set(received)) == 500
    assert sorted(received) == sorted(expected)
    assert producer.queue_size() == producer.reserved_size() == 0


def test_blocking_reserve_wakes_promptly(open_storage):
    storage = open_storage()
    got, woke = [], []

    def consume():
        got.append(storage.reserve('w1', 30, NOW, timeout=10))
        woke.append(time.monotonic())

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)  # let the consumer block first
    sent = time.monotonic()
    storage.enqueue(b'wake')
    thread.join(12)
    assert got[0].data == b'wake'
    assert woke[0] - sent < 0.5


def test_every_blocked_reserver_wakes(open_storage, unique_name):
    storages = [open_storage(unique_name) for _ in range(3)]
    got = []

    def consume(storage):
        got.append(storage.reserve('w%d' % id(storage), 30, NOW, timeout=10))

    threads = [threading.Thread(target=consume, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    start = time.monotonic()
    for i in range(3):
        storages[0].enqueue(b'%d' % i)
        time.sleep(0.02)
    for thread in threads:
        thread.join(12)
    assert time.monotonic() - start < 2
    assert sorted(r.data for r in got) == [b'0', b'1', b'2']


def test_scheduled_and_requeued_messages_wake_a_blocked_reserver(open_storage):
    storage = open_storage()
    storage.schedule_add(b'later', NOW)
    storage.enqueue(b'first')
    first = storage.reserve('w1', 30, NOW)
    for make_pending, expected in ((lambda: storage.schedule_move_due(NOW), b'later'),
                                   (lambda: storage.requeue(first.token), b'first')):
        got = []
        thread = threading.Thread(
            target=lambda: got.append(storage.reserve('w2', 30, NOW, timeout=10)))
        thread.start()
        time.sleep(0.2)
        start = time.monotonic()
        make_pending()
        thread.join(12)
        assert got[0].data == expected
        assert time.monotonic() - start < 1


def test_blocking_longer_than_the_socket_timeout(open_storage):
    storage = open_storage(socket_timeout=0.4)
    start = time.monotonic()
    assert storage.reserve('w1', 30, NOW, timeout=1.2) is None  # no TimeoutError
    assert 1.1 <= time.monotonic() - start < 3
    got = []
    thread = threading.Thread(
        target=lambda: got.append(storage.reserve('w1', 30, NOW, timeout=5)))
    thread.start()
    time.sleep(0.9)  # longer than the socket timeout
    storage.enqueue(b'late')
    thread.join(6)
    assert got[0].data == b'late'


def test_unreachable_redis_raises_storage_unavailable_quickly(unique_name):
    port = free_port()
    storage = RedisStorage(unique_name, port=port, socket_connect_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        storage.enqueue(b'x')
    assert time.monotonic() - start < 2
    message = str(info.value)
    assert '127.0.0.1:%d' % port in message and 'redis-server running' in message
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    with pytest.raises(StorageUnavailable):
        storage.reserve('w1', 30, NOW, timeout=0.5)


def test_password_never_shown(unique_name):
    port = free_port()
    storage = RedisStorage(unique_name, url='redis://:s3cret@127.0.0.1:%d/2' % port,
                           socket_connect_timeout=0.5)
    assert storage.describe() == "RedisStorage %r at redis://127.0.0.1:%d/2" % (
        unique_name, port)
    with pytest.raises(StorageUnavailable) as info:
        storage.queue_size()
    assert 's3cret' not in str(info.value) and '127.0.0.1:%d' % port in str(info.value)


def test_decoding_client_is_refused(redis_url, unique_name):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigurationError):
        RedisStorage(unique_name, client=client)
    client.close()


@pytest.fixture
def stranger(raw, unique_name):
    """A key that is nobody's storage but shares our name's start."""
    key = 'huey.%sx.not-a-storage' % unique_name
    raw.set(key, b'keep')
    yield key
    raw.delete(key)


def test_flush_all_deletes_its_own_keys_only(open_storage, raw, unique_name, stranger):
    storage = open_storage()
    # Names that extend ours: dotted, or made to look like our key/value keys.
    neighbours = [open_storage(unique_name + suffix) for suffix in ('x', '.kv', '.kv:k')]
    storage.enqueue(b'q')
    storage.schedule_add(b's', NOW)
    storage.put_data('k.pending', b'v')
    storage.put_if_empty('lock', b'1', ttl=60)
    storage.enqueue_once('slot', 60, b'p')
    storage.dead_letter_add(b'd', 'r', NOW)
    storage.reserve('w1', 30, NOW)
    for neighbour in neighbours:
        neighbour.enqueue(b'n')
        neighbour.put_data('pending', b'n')
    assert own_keys(raw, storage)
    storage.flush_all()
    assert own_keys(raw, storage) == []
    assert raw.get(stranger) == b'keep'
    for neighbour in neighbours:
        assert neighbour.queue_items() == [b'n'] and neighbour.peek_data('pending') == b'n'


def test_tokens_are_not_reused_after_flush_all(open_storage):
    storage = open_storage()
    storage.enqueue(b'old')
    stale = storage.reserve('w1', 30, NOW)
    storage.flush_all()
    storage.enqueue(b'new')
    fresh = storage.reserve('w2', 30, NOW)
    assert fresh.token > stale.token
    assert storage.ack(stale.token) is False  # a late ack cannot end fresh's
    assert storage.reserved_size() == 1


def test_key_value_keys_with_dots_and_percents_stay_apart(open_storage):
    storage = open_storage()
    for key in ('a.b', 'a%2Eb', 'a%b', 'pending'):
        storage.put_data(key, key.encode())
    assert [storage.peek_data(k) for k in ('a.b', 'a%2Eb', 'a%b', 'pending')] == [
        b'a.b', b'a%2Eb', b'a%b', b'pending']
    assert storage.result_count() == 4
    storage.enqueue(b'still a queue')
    assert storage.queue_items() == [b'still a queue']


def test_expiring_keys_are_not_indexed(open_storage):
    """A key with a TTL leaves no index entry behind when Redis expires it
    (one per periodic slot would pile up forever), and is not counted."""
    storage = open_storage()
    storage.put_data('keep', b'1')
    assert storage.put_if_empty('short', b'1', ttl=60)
    storage.enqueue_once('slot', 60, b'p')
    assert storage.result_count() == 1
    client = storage._redis()
    assert client.scard(storage.prefix + 'kvkeys') == 1
    storage.flush_results()
    assert storage.result_count() == 0 and storage.peek_data('keep') is None
    assert storage.peek_data('short') is None


def test_owner_names_that_share_a_prefix(open_storage):
    storage = open_storage()
    for i in range(4):
        storage.enqueue(b'%d' % i)
    owners = ['w1', 'w10', 'w1\x00x', 'w1']
    held = [storage.reserve(owner, 30, NOW) for owner in owners]
    assert storage.renew('w1', 60, NOW) == 2
    assert storage.release_owner('w1') == 2
    assert storage.reserved_size() == 2
    assert sorted(drain(storage, 'w3')) == sorted([held[0].data, held[3].data])
    assert storage.release_owner('w1\x00x') == 1 and storage.release_owner('w10') == 1


def test_dead_letter_fields_round_trip(open_storage):
    storage = open_storage()
    when = 1_700_000_000.123456789
    reason = 'line one\nline two: caf\u00e9 \u2603'
    data = b'\n\x00' + bytes(range(256))
    storage.enqueue(data, priority=-7)
    reservation = storage.reserve('w1', 30, NOW)
    letter_id = storage.dead_letter(reservation.token, reason, when)
    assert storage.dead_letters() == [(letter_id, data, reason, when, -7)]
    assert storage.ack(reservation.token) is False
    assert storage.requeue_dead_letters(['nope', letter_id, letter_id]) == 1
    again = storage.reserve('w1', 30, NOW)
    assert (again.data, again.deliveries) == (data, 1)


def test_close_then_a_fresh_connection(open_storage):
    storage = open_storage()
    storage.enqueue(b'a')
    before = storage._redis().client_id()
    storage.close()
    assert storage._redis().client_id() != before
    assert storage.queue_items() == [b'a']
    storage.close()
    storage.close()  # twice is fine
    assert storage.queue_size() == 1


def test_close_keeps_a_pool_passed_in(redis_url, open_storage):
    pool = redis.ConnectionPool.from_url(redis_url)
    storage = open_storage(url=None, connection_pool=pool)
    storage.enqueue(b'a')
    before = storage._redis().client_id()
    storage.close()
    assert storage._redis().connection_pool is pool
    assert storage._redis().client_id() != before
    assert storage.queue_size() == 1
    pool.disconnect()


@fork
def test_forked_child_uses_its_own_connection(open_storage):
    storage = open_storage()
    storage.enqueue(b'from parent')
    parent_id = storage._redis().client_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report, then leave without running pytest's teardown
        status = 1
        try:
            os.close(read_end)
            child_id = storage._redis().client_id()
            reservation = storage.reserve('child', 30, NOW)
            storage.ack(reservation.token)
            os.write(write_end, b'%d %s' % (child_id, reservation.data))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, 'rb') as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    child_id, data = report.split(b' ', 1)
    assert int(child_id) != parent_id and data == b'from parent'
    # The child closed nothing of ours: the parent's connection still works.
    assert storage._redis().client_id() == parent_id
    assert storage.queue_size() == 0


def test_publish_reaches_a_subscriber(open_storage, raw, unique_name):
    storage = open_storage()
    pubsub = raw.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(unique_name)
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    assert storage.publish(unique_name, '{"status": "x"}') == 1
    message = pubsub.get_message(timeout=2)
    assert message['data'] == b'{"status": "x"}'
    pubsub.close()


def test_flush_finds_expiring_keys_of_a_name_with_glob_characters(open_storage, unique_name):
    storage = open_storage(unique_name + '*[x]?')
    other = open_storage(unique_name + 'Z[x]Q')  # would match an unescaped pattern
    storage.put_if_empty('claim', b'1', ttl=600)
    other.put_if_empty('claim', b'1', ttl=600)
    storage.flush_all()
    assert storage.peek_data('claim') is None
    assert other.peek_data('claim') == b'1'


def test_non_finite_lease_is_refused_before_it_can_strand_a_message(open_storage):
    """A NaN lease (say, from ``--lease nan``) once reached the reserve
    script, which popped the message and then failed: it was in neither the
    queue nor the reserved set. It is refused before the script runs."""
    storage = open_storage()
    storage.enqueue(b'm')
    for lease in (float('nan'), float('inf')):
        with pytest.raises(ValueError, match='finite'):
            storage.reserve('w1', lease, NOW)
    with pytest.raises(ValueError, match='finite'):
        storage.schedule_add(b's', float('nan'))
    assert storage.queue_size() == 1 and storage.reserved_size() == 0
    assert drain(storage) == [b'm']
