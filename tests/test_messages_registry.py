"""Messages and the registry: what cannot run becomes a dead letter with a
reason, never a raw pickle error and never a silent drop."""
import pickle

import pytest

from huey import Huey
from huey import signals as S
from huey.exceptions import TaskException, MessageDecodeError, QueueException
from huey.message import FORMAT_VERSION, MAGIC, Message, deserialize, peek_name, serialize
from tests.helpers import run_pending


def twin(huey, make_huey, backend):
    """A second Huey on the same storage name (another process's). Memory
    storages are per object, so the memory twin shares the object."""
    if backend == 'memory':
        return Huey(huey.storage, result_store=huey.result_storage)
    return make_huey()


def full_message():
    follower = Message(id='f-1', name='app.tasks.after', args=(1,), kwargs={'k': 'v'})
    fallback = Message(id='e-1', name='app.tasks.on_error')
    return Message(id='m-1', name='app.tasks.count_beans', args=(10, 'žluť', b'\x00\xff'),
                   kwargs={'nested': {'a': [1, 2, (3, 4)]}}, eta=1_700_000_000.5,
                   retries=3, retry_delay=2.5, priority=7, expires=1_700_000_100.0,
                   on_complete=follower, on_error=fallback)


# -- the serializer --------------------------------------------------------

def test_serializer_roundtrip():
    message = full_message()
    data = serialize(message)
    assert isinstance(data, bytes) and data.startswith(MAGIC)
    again = deserialize(data)
    assert again == message
    assert again.on_complete == message.on_complete
    assert isinstance(again.args, tuple)
    assert peek_name(data) == 'app.tasks.count_beans'


def test_serializer_roundtrip_minimal_and_bytearray():
    message = Message(id='x', name='t')
    assert deserialize(bytearray(serialize(message))) == message


def test_unpicklable_argument_is_refused_at_enqueue(huey):
    @huey.task()
    def takes(x):
        pass  # pragma: no cover

    with pytest.raises(QueueException, match='cannot be pickled'):
        takes(lambda: None)
    assert huey.pending_count() == 0


def _envelope(version=FORMAT_VERSION, **fields):
    body = {'id': 'x', 'name': 'tests.some_task'}
    body.update(fields)
    return MAGIC + pickle.dumps({'v': version, 'm': body})


GOOD = serialize(Message(id='t-1', name='tests.some_task', args=(1, 2)))

BAD_MESSAGES = {
    'garbage': b'garbage',
    'empty': b'',
    'half-magic': MAGIC[:2],
    'magic-only': MAGIC,
    'plain-pickle': pickle.dumps({'id': 'x', 'name': 'y'}),
    'magic-other-pickle': MAGIC + pickle.dumps([1, 2, 3]),
    'magic-dict-without-version': MAGIC + pickle.dumps({'m': {'id': 'x', 'name': 'y'}}),
    'other-version': _envelope(version=FORMAT_VERSION + 1),
    'old-version': _envelope(version=0),
    'truncated': GOOD[:-3],
    'truncated-half': GOOD[:len(GOOD) // 2],
    'unknown-field': _envelope(colour='blue'),
    'missing-name': MAGIC + pickle.dumps({'v': FORMAT_VERSION, 'm': {'id': 'x'}}),
    'body-not-a-dict': MAGIC + pickle.dumps({'v': FORMAT_VERSION, 'm': 5}),
    'args-not-a-sequence': _envelope(args=5),
    'kwargs-not-a-dict': _envelope(kwargs=[1, 2]),
    'name-not-a-string': _envelope(name=None),
    # Both once escaped the decoder and crashed every worker that took them.
    'link-not-a-dict': _envelope(on_complete='abc'),
    'id-not-a-string': _envelope(id=42),
    # A class the consumer cannot import (protocol 0 GLOBAL opcode).
    'missing-class': MAGIC + b'cno_such_module_zz\nThing\n(tR.',
}


@pytest.mark.parametrize('label', sorted(BAD_MESSAGES))
def test_bytes_that_are_not_a_message_raise_message_decode_error(label):
    data = BAD_MESSAGES[label]
    with pytest.raises(MessageDecodeError) as info:
        deserialize(data)
    assert isinstance(info.value, QueueException)
    assert str(info.value)  # says why
    assert peek_name(data) == '<undecodable>'


def test_non_bytes_raise_message_decode_error():
    for thing in (None, 'HUEY text', 42):
        with pytest.raises(MessageDecodeError):
            deserialize(thing)


def test_version_mismatch_says_so():
    with pytest.raises(MessageDecodeError, match='version'):
        deserialize(BAD_MESSAGES['other-version'])


# -- dead letters through the worker's path ---------------------------------

def test_garbage_in_the_queue_becomes_a_dead_letter(huey, caplog):
    letters_signalled = []
    huey.signal(S.SIGNAL_DEAD_LETTER)(lambda sig, task, reason: letters_signalled.append(reason))

    @huey.task()
    def fine():
        return 'fine'

    huey.storage.enqueue(b'garbage')
    result = fine()
    outcomes = run_pending(huey)  # the bad message does not stop the worker
    assert [o.status for o in outcomes] == [S.SIGNAL_DEAD_LETTER, S.SIGNAL_COMPLETE]
    assert result.get() == 'fine'
    assert huey.pending_count() == 0 and huey.storage.reserved_size() == 0

    [letter] = huey.dead_letters()
    assert letter.data == b'garbage'
    assert 'not a huey message' in letter.reason
    assert letters_signalled == [letter.reason]
    assert 'not a huey message' in caplog.text  # logged with its reason
    # Listed among pending items as the decode error it is.
    huey.storage.enqueue(b'more garbage')
    [item] = huey.pending()
    assert isinstance(item, MessageDecodeError)
    huey.storage.flush_queue()


def test_requeue_and_purge_dead_letters(huey):
    for data in (b'garbage-1', b'garbage-2', BAD_MESSAGES['other-version']):
        huey.storage.enqueue(data)
    run_pending(huey)
    letters = huey.dead_letters()
    assert [d.data for d in letters] == [b'garbage-1', b'garbage-2',
                                          BAD_MESSAGES['other-version']]
    assert 'version' in letters[2].reason

    # Requeue one by id, then the rest.
    assert huey.requeue_dead_letters([letters[0].id]) == 1
    assert huey.pending_count() == 1
    assert [d.data for d in huey.dead_letters()] == [b'garbage-2', BAD_MESSAGES['other-version']]
    assert huey.requeue_dead_letters() == 2
    assert huey.dead_letters() == [] and huey.pending_count() == 3
    run_pending(huey)  # still undecodable: dead again, not lost
    assert len(huey.dead_letters()) == 3
    assert huey.purge_dead_letters() == 3
    assert huey.dead_letters() == []
    assert huey.purge_dead_letters() == 0
    assert huey.pending_count() == 0


def test_malformed_fields_become_a_dead_letter_not_a_crash(huey):
    ran = []

    @huey.task(name='tests.some_task')
    def some_task(*args, **kwargs):
        ran.append(args)

    for label in ('args-not-a-sequence', 'kwargs-not-a-dict'):
        huey.storage.enqueue(BAD_MESSAGES[label])
    huey.storage.enqueue(GOOD)
    outcomes = run_pending(huey)
    assert [o.status for o in outcomes] == [S.SIGNAL_DEAD_LETTER, S.SIGNAL_DEAD_LETTER,
                                            S.SIGNAL_COMPLETE]
    assert len(huey.dead_letters()) == 2
    assert ran == [(1, 2)]


# -- the registry ----------------------------------------------------------

def test_unknown_task_lookup_names_the_task_and_the_module_to_import(huey):
    with pytest.raises(QueueException) as info:
        huey.registry.lookup('tasks.count_beans')
    text = str(info.value)
    assert "'tasks.count_beans'" in text
    assert 'not registered' in text
    assert "Import 'tasks'" in text and 'Huey object' in text


def test_unknown_task_from_another_producer_is_dead_lettered_then_recoverable(
        huey, make_huey, backend):
    producer = twin(huey, make_huey, backend)

    def count_beans(num):
        return 'counted %d' % num
    # Only the producer imported the task module.
    on_producer = producer.task()(count_beans)
    assert count_beans.__module__ + '.count_beans' == on_producer.name
    assert on_producer.name not in huey.registry

    result = on_producer(10)
    with pytest.raises(QueueException, match='count_beans'):
        huey.registry.lookup(on_producer.name)

    [outcome] = run_pending(huey)  # the consumer lacks the task
    assert outcome.status == S.SIGNAL_DEAD_LETTER
    [letter] = huey.dead_letters()
    assert on_producer.name in letter.reason and 'Import' in letter.reason
    assert peek_name(letter.data) == on_producer.name
    # Not run, not dropped, and a waiting caller learns why.
    with pytest.raises(TaskException, match='dead letter: task .* is not registered'):
        result.get(blocking=True, timeout=5)
    result.reset()

    # The fix: import the module in the consumer, requeue, and it runs.
    huey.task()(count_beans)
    assert huey.requeue_dead_letters() == 1
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_COMPLETE
    assert result.get() == 'counted 10'


def test_unknown_pipeline_follower_is_dead_lettered(huey, make_huey, backend):
    producer = twin(huey, make_huey, backend)

    def first():
        return 1

    def second(x):
        return x + 1  # pragma: no cover
    huey.task()(first)
    p_first, p_second = producer.task()(first), producer.task()(second)
    producer.enqueue(p_first.s().then(p_second))
    [outcome] = run_pending(huey)
    assert outcome.status == S.SIGNAL_DEAD_LETTER
    assert p_second.name in huey.dead_letters()[0].reason


def test_poison_message_is_dead_lettered(huey):
    ran = []

    @huey.task()
    def crashes_worker():
        ran.append(1)

    crashes_worker()
    for _ in range(3):  # three deliveries whose workers died
        reservation = huey.reserve('w', lease=60)
        assert huey.storage.requeue(reservation.token)
    reservation = huey.reserve('w', lease=60)
    assert reservation.deliveries == 4
    outcome = huey.process(reservation, max_deliveries=3)
    assert outcome.status == S.SIGNAL_DEAD_LETTER
    assert ran == []
    [letter] = huey.dead_letters()
    assert 'poison' in letter.reason and '3 times' in letter.reason
    assert huey.pending_count() == 0 and huey.storage.reserved_size() == 0


def test_poison_is_checked_before_decoding(huey, monkeypatch):
    """A message that kills its worker while being decoded (here: decoding
    itself fails hard) still reaches the dead letters after max_deliveries."""
    huey.storage.enqueue(GOOD)
    for _ in range(3):
        huey.storage.requeue(huey.reserve('w', lease=60).token)
    monkeypatch.setattr('huey.api.deserialize', lambda data: 1 / 0)
    outcome = huey.process(huey.reserve('w', lease=60), max_deliveries=3)
    assert outcome.status == S.SIGNAL_DEAD_LETTER
    assert 'poison' in huey.dead_letters()[0].reason


def test_requeued_dead_letter_does_not_keep_its_old_error(huey):
    """A requeued poison message that then returns None: get() gives None,
    not the dead-letter error stored when it was given up on."""
    @huey.task()
    def flaky():
        return None

    result = flaky()
    for _ in range(3):
        huey.storage.requeue(huey.reserve('w', lease=60).token)
    assert huey.process(huey.reserve('w', lease=60), max_deliveries=3).status == \
        S.SIGNAL_DEAD_LETTER
    with pytest.raises(TaskException, match='dead letter'):
        huey.result(result.id, preserve=True)
    assert huey.requeue_dead_letters() == 1
    assert [o.status for o in run_pending(huey)] == [S.SIGNAL_COMPLETE]
    assert result.get() is None


def test_task_id_must_be_a_string(huey):
    @huey.task()
    def job():
        pass

    with pytest.raises(TypeError, match='id=str'):
        job.schedule(id=42)
    assert huey.pending_count() == 0 and huey.scheduled_count() == 0


def test_message_at_its_last_allowed_delivery_still_runs(huey):
    @huey.task()
    def survives():
        return 'ok'

    result = survives()
    for _ in range(2):
        huey.storage.requeue(huey.reserve('w', lease=60).token)
    reservation = huey.reserve('w', lease=60)
    assert reservation.deliveries == 3
    assert huey.process(reservation, max_deliveries=3).status == S.SIGNAL_COMPLETE
    assert result.get() == 'ok'
    assert huey.dead_letters() == []


def test_registry_names_contains_unregister(huey):
    @huey.task()
    def one():
        pass

    @huey.task(name='custom.two')
    def two():
        pass

    assert huey.registry.names() == sorted([one.name, 'custom.two'])
    assert one.name in huey.registry and len(huey.registry) == 2
    assert huey.registry.lookup('custom.two') is two.task_class
    assert one.unregister() is True
    assert one.unregister() is False
    assert one.name not in huey.registry
    with pytest.raises(QueueException):
        huey.registry.lookup(one.name)


def test_registering_the_same_function_twice_is_fine(huey):
    def job():
        return 'job'
    huey.task()(job)
    again = huey.task()(job)  # a module imported twice
    assert huey.registry.lookup(again.name) is again.task_class
