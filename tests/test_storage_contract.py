"""One contract, every backend: memory, a SQLite file, a real Redis."""
import threading
import time

import pytest

from huey.storage.memory import MemoryStorage

NOW = 1_700_000_000.0


@pytest.fixture(params=['memory', 'sqlite', 'redis'])
def make_storage(request, tmp_path):
    """Factory of storages of one backend; every one made is flushed after."""
    made = []
    shared = {}

    def make(name):
        if request.param == 'memory':
            # Memory storages share nothing; one per name, as in one process.
            store = shared.setdefault(name, MemoryStorage(name))
        elif request.param == 'sqlite':
            from huey.storage.sqlite import SqliteStorage
            store = SqliteStorage(name, filename=str(tmp_path / 'huey.db'))
        else:
            from huey.storage.redis import RedisStorage
            store = RedisStorage(name, url=request.getfixturevalue('redis_url'))
        made.append(store)
        return store

    yield make
    for store in made:
        store.flush_all()
        store.close()


@pytest.fixture
def storage(make_storage, unique_name):
    return make_storage(unique_name)


def drain(storage, owner='w1'):
    out = []
    while True:
        r = storage.reserve(owner, 30, NOW)
        if r is None:
            return out
        out.append(r.data)
        storage.ack(r.token)


def test_fifo_within_a_priority(storage):
    for i in range(5):
        storage.enqueue(b'm%d' % i)
    assert storage.queue_size() == 5
    assert storage.queue_items() == [b'm0', b'm1', b'm2', b'm3', b'm4']
    assert drain(storage) == [b'm0', b'm1', b'm2', b'm3', b'm4']
    assert storage.queue_size() == 0


def test_higher_priority_first(storage):
    storage.enqueue(b'low', -5)
    storage.enqueue(b'none')
    storage.enqueue(b'high', 10)
    storage.enqueue(b'high2', 10)
    assert drain(storage) == [b'high', b'high2', b'none', b'low']


def test_enqueue_many_keeps_order(storage):
    tokens = storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 1)])
    assert len(set(tokens)) == 3
    assert drain(storage) == [b'c', b'a', b'b']


def test_binary_payloads_survive(storage):
    payload = bytes(range(256)) * 4 + b'\x00\xff'
    storage.enqueue(payload)
    assert drain(storage) == [payload]


def test_reserve_is_not_a_pop_and_ack_ends_it(storage):
    storage.enqueue(b'x')
    r = storage.reserve('w1', 30, NOW)
    assert (r.data, r.deliveries) == (b'x', 1)
    assert storage.queue_size() == 0 and storage.reserved_size() == 1
    assert storage.reserve('w2', 30, NOW) is None
    assert storage.ack(r.token) is True
    assert storage.ack(r.token) is False
    assert storage.reserved_size() == 0


def test_requeue_keeps_place_and_counts_deliveries(storage):
    storage.enqueue(b'first')
    r = storage.reserve('w1', 30, NOW)
    storage.enqueue(b'second')
    assert storage.requeue(r.token) is True
    again = storage.reserve('w1', 30, NOW)
    assert (again.data, again.deliveries, again.token) == (b'first', 2, r.token)


def test_release_owner_returns_only_its_reservations(storage):
    for i in range(3):
        storage.enqueue(b'%d' % i)
    a = storage.reserve('dead', 30, NOW)
    b = storage.reserve('dead', 30, NOW)
    c = storage.reserve('alive', 30, NOW)
    assert storage.release_owner('dead') == 2
    assert storage.reserved_size() == 1
    assert sorted(drain(storage, 'w3')) == sorted([a.data, b.data])
    assert storage.ack(c.token)


def test_expired_leases_are_reclaimed_and_renew_extends(storage):
    storage.enqueue(b'a')
    storage.enqueue(b'b')
    ra = storage.reserve('w1', 10, NOW)
    rb = storage.reserve('w2', 10, NOW)
    assert storage.reclaim_expired(NOW + 5) == 0
    assert storage.renew('w2', 10, NOW + 5) == 1
    assert storage.reclaim_expired(NOW + 11) == 1  # w1's lease ended; w2's renewed
    assert drain(storage, 'w3') == [ra.data]
    assert storage.reclaim_expired(NOW + 16) == 1
    again = storage.reserve('w3', 10, NOW + 16)
    assert (again.data, again.deliveries) == (rb.data, 2)


def test_schedule_moves_only_due_messages(storage):
    storage.schedule_add(b'later', NOW + 60)
    storage.schedule_add(b'soon', NOW + 1, priority=3)
    storage.schedule_add(b'now', NOW)
    assert storage.schedule_size() == 3
    assert [d for _, d in storage.schedule_items()] == [b'now', b'soon', b'later']
    assert storage.schedule_move_due(NOW + 1) == 2
    assert storage.schedule_size() == 1
    assert drain(storage) == [b'soon', b'now']  # priority kept through the schedule
    assert storage.schedule_move_due(NOW + 59) == 0
    assert storage.schedule_move_due(NOW + 60) == 1
    assert drain(storage) == [b'later']


def test_schedule_move_respects_limit(storage):
    for i in range(5):
        storage.schedule_add(b'%d' % i, NOW + i)
    assert storage.schedule_move_due(NOW + 10, limit=2) == 2
    assert storage.schedule_move_due(NOW + 10, limit=10) == 3
    assert drain(storage) == [b'0', b'1', b'2', b'3', b'4']


def test_key_value(storage):
    assert storage.peek_data('k') is None
    storage.put_data('k', b'v')
    assert storage.has_data_for_key('k')
    assert storage.peek_data('k') == b'v'
    assert storage.result_count() == 1
    assert storage.pop_data('k') == b'v'
    assert storage.pop_data('k') is None
    storage.put_data('k2', b'')
    assert storage.peek_data('k2') == b''  # empty value is not "missing"
    assert storage.delete_data('k2') is True
    assert storage.delete_data('k2') is False


def test_peek_many_reads_keys_in_order(storage):
    storage.put_data('a.1', b'x')
    storage.put_data('c', b'')
    assert storage.peek_many(['a.1', 'b', 'c']) == [b'x', None, b'']
    assert storage.peek_many([]) == []


def test_put_if_empty_and_ttl(storage):
    assert storage.put_if_empty('lock', b'1') is True
    assert storage.put_if_empty('lock', b'2') is False
    assert storage.peek_data('lock') == b'1'
    assert storage.put_if_empty('short', b'1', ttl=0.3) is True
    assert storage.put_if_empty('short', b'1', ttl=0.3) is False
    deadline = time.monotonic() + 5
    while not storage.put_if_empty('short', b'again', ttl=10):
        assert time.monotonic() < deadline, 'ttl never expired'
        time.sleep(0.05)


def test_enqueue_once_claims_a_slot(storage):
    assert storage.enqueue_once('slot:1', 60, b'p') is not None
    assert storage.enqueue_once('slot:1', 60, b'p') is None
    assert storage.enqueue_once('slot:2', 60, b'q') is not None
    assert drain(storage) == [b'p', b'q']


def test_dead_letters(storage):
    storage.enqueue(b'poison', 4)
    r = storage.reserve('w1', 30, NOW)
    letter_id = storage.dead_letter(r.token, 'killed its worker 5 times', NOW)
    assert letter_id is not None
    assert storage.reserved_size() == 0 and storage.queue_size() == 0
    storage.dead_letter_add(b'\x80garbage', 'not a message', NOW + 1)
    letters = storage.dead_letters()
    assert [(d.data, d.reason, d.time, d.priority) for d in letters] == [
        (b'poison', 'killed its worker 5 times', NOW, 4),
        (b'\x80garbage', 'not a message', NOW + 1, 0)]
    assert storage.requeue_dead_letters([letters[0].id]) == 1
    assert [d.data for d in storage.dead_letters()] == [b'\x80garbage']
    assert drain(storage) == [b'poison']
    assert storage.purge_dead_letters() == 1
    assert storage.dead_letters() == []
    storage.dead_letter_add(b'x', 'r', NOW)
    assert storage.requeue_dead_letters() == 1
    assert drain(storage) == [b'x']


def test_names_are_separate_and_flush_touches_only_its_own(make_storage, unique_name):
    mine, other = make_storage(unique_name + '-a'), make_storage(unique_name + '-b')
    mine.enqueue(b'mine')
    mine.schedule_add(b'mine-later', NOW)
    mine.put_data('k', b'mine')
    other.enqueue(b'other')
    other.put_data('k', b'other')
    assert mine.queue_items() == [b'mine'] and other.queue_items() == [b'other']
    mine.flush_all()
    assert (mine.queue_size(), mine.schedule_size(), mine.peek_data('k')) == (0, 0, None)
    assert other.queue_items() == [b'other'] and other.peek_data('k') == b'other'


def test_two_handles_on_one_name_share_the_queue(make_storage, unique_name):
    producer, consumer = make_storage(unique_name), make_storage(unique_name)
    producer.enqueue(b'shared')
    assert drain(consumer) == [b'shared']


def test_blocking_reserve_wakes_on_enqueue(storage):
    if not storage.blocking:
        # A polling backend answers at once; the next poll sees the message.
        assert storage.reserve('w1', 30, NOW, timeout=5) is None
        storage.enqueue(b'wake')
        assert storage.reserve('w1', 30, NOW, timeout=5).data == b'wake'
        return
    got = []

    def consume():
        got.append(storage.reserve('w1', 30, NOW, timeout=5))

    thread = threading.Thread(target=consume)
    start = time.monotonic()
    thread.start()
    time.sleep(0.2)  # let the consumer block first; the point of the test
    storage.enqueue(b'wake')
    thread.join(6)
    assert got and got[0].data == b'wake'
    assert time.monotonic() - start < 3


def test_blocking_reserve_times_out(storage):
    start = time.monotonic()
    assert storage.reserve('w1', 30, NOW, timeout=0.3) is None
    elapsed = time.monotonic() - start
    assert elapsed < 2
    if storage.blocking:
        assert elapsed >= 0.25


def test_close_then_use_reconnects(storage):
    storage.enqueue(b'a')
    storage.close()
    assert storage.queue_size() == 1


def test_returns_can_take_the_delivery_back(storage):
    """A reservation cut short by a stop (not a crash) does not count."""
    storage.enqueue(b'long')
    first = storage.reserve('w1', 30, NOW)
    assert storage.requeue(first.token, count_delivery=False)
    assert storage.reserve('w1', 30, NOW).deliveries == 1
    assert storage.release_owner('w1', count_delivery=False) == 1
    again = storage.reserve('w2', 30, NOW)
    assert again.deliveries == 1
    assert storage.release_owner('w2') == 1  # a crash counts
    assert storage.reserve('w3', 30, NOW).deliveries == 2


def test_a_late_ack_does_not_end_the_next_owners_reservation(storage):
    """Worker A's lease ran out and B got the message (same token): A's late
    ack, requeue or dead-letter must leave B's reservation alone."""
    storage.enqueue(b'm')
    first = storage.reserve('A', 10, NOW)
    assert storage.reclaim_expired(NOW + 11) == 1
    second = storage.reserve('B', 10, NOW + 11)
    assert second.token == first.token
    assert storage.ack(first.token, owner='A') is False
    assert storage.requeue(first.token, owner='A') is False
    assert storage.dead_letter(first.token, 'late', NOW, owner='A') is None
    assert storage.reserved_size() == 1
    assert storage.release_owner('B') == 1  # B crashed: the message is still there
    assert storage.reserve('C', 10, NOW + 12).data == b'm'


def test_expiring_keys_go_with_a_flush(storage):
    storage.put_if_empty('claim', b'1', ttl=600)
    storage.enqueue_once('slot', 600, b'p')
    storage.flush_all()
    assert storage.peek_data('claim') is None and storage.peek_data('slot') is None
