"""Messages: what a queued task looks like in storage, and its serializer.

A message is a small record (task id, task name, arguments, retry settings,
eta, expiry, the next task of a pipeline). On the wire it is ``MAGIC`` followed
by a pickled dict carrying ``FORMAT_VERSION``. The magic prefix lets the
consumer tell "not a huey message" from "a message of another version" and
reject both with a clear :class:`~huey.exceptions.MessageDecodeError` (which
the consumer turns into a dead letter) instead of a raw unpickling error.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from huey.exceptions import MessageDecodeError, QueueException

MAGIC = b'HUEY'
FORMAT_VERSION = 1
PICKLE_PROTOCOL = 4  # readable by every Python this project supports


@dataclass
class Message:
    id: str
    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    eta: Optional[float] = None        # UTC epoch seconds; None = now
    retries: int = 0
    retry_delay: float = 0
    priority: int = 0
    expires: Optional[float] = None    # UTC epoch seconds after which it is dropped
    on_complete: Optional['Message'] = None
    on_error: Optional['Message'] = None

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for link in ('on_complete', 'on_error'):
            if out[link] is not None:
                out[link] = out[link].as_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> 'Message':
        if not isinstance(data, dict):
            raise TypeError('a message record is a dict, not %s' % type(data).__name__)
        data = dict(data)
        for link in ('on_complete', 'on_error'):
            if data.get(link) is not None:
                data[link] = cls.from_dict(data[link])
        message = cls(**data)
        message._check_types()
        return message

    def _check_types(self) -> None:
        """TypeError naming the first field of the wrong type: such a message
        must become a dead letter, not crash the worker that builds its task."""
        for name, kinds in _FIELD_TYPES:
            value = getattr(self, name)
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                raise TypeError('field %r is %r, of type %s' % (name, value, type(value).__name__))


_NUMBER = (int, float)
_FIELD_TYPES = (('id', (str,)), ('name', (str,)), ('args', (tuple, list)),
                ('kwargs', (dict,)), ('eta', _NUMBER + (type(None),)),
                ('retries', _NUMBER), ('retry_delay', _NUMBER), ('priority', _NUMBER),
                ('expires', _NUMBER + (type(None),)))


def serialize(message: Message) -> bytes:
    """Message -> bytes; arguments that cannot be pickled raise QueueException."""
    envelope = {'v': FORMAT_VERSION, 'm': message.as_dict()}
    try:
        return MAGIC + pickle.dumps(envelope, protocol=PICKLE_PROTOCOL)
    except RecursionError:
        raise  # encode_task explains it
    except Exception as exc:
        raise QueueException(
            'cannot enqueue task %s: its arguments cannot be pickled (%s: %s); '
            'pass plain data (ids, strings, numbers) instead'
            % (message.name, type(exc).__name__, exc)) from exc


def encode_task(task) -> bytes:
    """A task (anything with ``to_message()`` and ``name``) as message bytes."""
    try:
        return serialize(task.to_message())
    except RecursionError as exc:
        # Each pipeline stage nests the next: hundreds of .then() calls
        # exceed Python's recursion limit, whatever the arguments are.
        raise QueueException(
            'cannot enqueue task %s: the message nests too deeply (a pipeline of '
            'hundreds of stages?); split the pipeline, or enqueue later stages '
            'from a task' % task.name) from exc


def deserialize(data: bytes) -> Message:
    """bytes -> Message, or MessageDecodeError saying why not."""
    if not isinstance(data, (bytes, bytearray)):
        raise MessageDecodeError('not a huey message: expected bytes, got %s'
                                 % type(data).__name__)
    if not data.startswith(MAGIC):
        raise MessageDecodeError(
            'not a huey message (starts with %r): it was not written by huey\'s '
            'serializer; look at who else writes to this queue' % (bytes(data[:12]),))
    try:
        envelope = pickle.loads(data[len(MAGIC):])
    except Exception as exc:
        raise MessageDecodeError(
            'message cannot be unpickled (%s: %s): an argument\'s class may be '
            'missing from the consumer, or the bytes are damaged'
            % (type(exc).__name__, exc)) from exc
    return _from_envelope(envelope)


def _from_envelope(envelope: Any) -> Message:
    if not isinstance(envelope, dict) or 'v' not in envelope or 'm' not in envelope:
        raise MessageDecodeError('message has no format version: not a huey message')
    if envelope['v'] != FORMAT_VERSION:
        raise MessageDecodeError(
            'message format version %r is not %r: it was written by another '
            'version of huey; run a consumer of that version to drain it'
            % (envelope['v'], FORMAT_VERSION))
    try:
        return Message.from_dict(envelope['m'])
    except Exception as exc:  # whatever a malformed record raises, it is a dead letter
        raise MessageDecodeError('message fields are malformed: %s: %s'
                                 % (type(exc).__name__, exc)) from exc


def peek_message(data: bytes) -> Optional[Message]:
    """The message in ``data``, or ``None`` if it cannot be decoded."""
    try:
        return deserialize(data)
    except MessageDecodeError:
        return None


def peek_name(data: bytes) -> str:
    """Best-effort task name of raw bytes, for dead-letter listings."""
    try:
        return deserialize(data).name
    except MessageDecodeError:
        return '<undecodable>'
