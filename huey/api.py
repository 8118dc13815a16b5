"""The ``Huey`` object: what an application builds once and decorates with.

It owns the task registry, the storage and the hooks, and offers two faces:
the producer's (decorators, enqueue, results, revoke, locks, dead letters)
and the consumer's (reserve, process, move due messages, periodic slots),
which ``consumer/`` drives. It starts no process and owns no thread.
"""
from __future__ import annotations

import copy
import datetime
import logging
import os
import pickle
import time
import uuid
from typing import Callable, Iterable, List, Optional, Tuple

from huey import signals as S
from huey.exceptions import ConfigurationError, MessageDecodeError, QueueException, TaskException
from huey.execution import Outcome, error_metadata, execute
from huey.locks import TaskLock, release_locks_of
from huey.message import deserialize, encode_task, peek_message
from huey.registry import TaskRegistry
from huey.result import ErrorResult, Result, ResultGroup, encode_result
from huey.signals import Signals
from huey.storage.base import Reservation, Storage
from huey.storage.memory import MemoryStorage
from huey.task import PeriodicTaskWrapper, Task, TaskWrapper, task_from_message
from huey.timeutil import instant, resolve_eta

logger = logging.getLogger('huey')

# A periodic slot's claim outlives any clock skew between consumers.
PERIODIC_SLOT_TTL = 3600


def _task_name_of(task) -> str:
    """A task's name from its wrapper, its class, an instance, or the name."""
    return task if isinstance(task, str) else task.name


def _storage_of(thing, role: str) -> Optional[Storage]:
    """Accept a Storage or a seed-era front door (which has ``.storage``)."""
    if thing is None or isinstance(thing, Storage):
        return thing
    storage = getattr(thing, 'storage', None)
    if isinstance(storage, Storage):
        return storage
    raise ConfigurationError('%s must be a huey storage or a backend object such as '
                             'RedisBlockingQueue, got %r' % (role, thing))


class Huey:
    """``Huey(queue, result_store=None, schedule=None, events=None,
    store_none=False, always_eager=False)``, as in the seed.

    ``queue`` holds the queue, the schedule, locks, revocations and dead
    letters; ``result_store`` holds results (no result store: calling a task
    returns ``None``). ``schedule``, when given, must live where the queue
    lives, so that moving a due message into the queue is atomic.
    """

    def __init__(self, queue, result_store=None, schedule=None, events=None,
                 store_none=False, always_eager=False, name=None):
        self.storage = _storage_of(queue, 'queue')
        if self.storage is None:
            raise ConfigurationError('Huey() needs a queue, e.g. RedisBlockingQueue("name")')
        self.result_storage = _storage_of(result_store, 'result_store')
        self._adopt_schedule(schedule)
        self.name = name or self.storage.name
        self.store_none = store_none
        self.events = events
        self.registry = TaskRegistry()
        self.signals = Signals()
        self._pre_execute, self._post_execute = {}, {}
        self._startup, self._shutdown = [], []
        self._saved_storage = None
        self.lock_names = set()   # every lock_task() name, so locks can be flushed
        self.worker_owner = None  # set in a consumer worker: locks record who holds them
        if events is not None:
            self.signals.connect(self._emit_event)
        self.immediate = always_eager

    def _adopt_schedule(self, schedule_arg) -> None:
        """Delayed tasks live with the queue so that moving a due one into the
        queue is one atomic step; a seed-era schedule object must therefore
        sit on the queue's server, and becomes a view of the queue's schedule."""
        schedule = _storage_of(schedule_arg, 'schedule')
        if schedule is None or schedule is self.storage:
            return
        if (type(schedule) is not type(self.storage)
                or schedule.describe_server() != self.storage.describe_server()):
            raise ConfigurationError(
                'the schedule (%s) must use the same server as the queue (%s): '
                'delayed tasks are moved into the queue atomically' %
                (schedule.describe(), self.storage.describe()))
        if hasattr(schedule_arg, 'storage'):
            schedule_arg.storage = self.storage  # len(schedule) counts what is scheduled

    def __repr__(self):
        return '<Huey %r on %s>' % (self.name, self.storage.describe())

    # -- immediate mode ------------------------------------------------
    @property
    def immediate(self) -> bool:
        return self._saved_storage is not None

    @immediate.setter
    def immediate(self, value: bool) -> None:
        """Run tasks in the caller, on in-memory storage (for tests)."""
        if bool(value) == self.immediate:
            return
        if value:
            self._saved_storage = (self.storage, self.result_storage)
            self.storage = MemoryStorage(self.name)
            self.result_storage = self.storage if self.result_storage is not None else None
        else:
            self.storage, self.result_storage = self._saved_storage
            self._saved_storage = None

    always_eager = immediate

    # -- decorators ----------------------------------------------------
    def task(self, retries=0, retry_delay=0, priority=None, expires=None, name=None,
             context=False, **settings) -> Callable[[Callable], TaskWrapper]:
        def decorator(func):
            return TaskWrapper(self, func, retries=retries, retry_delay=retry_delay,
                               priority=priority, expires=expires, name=name,
                               context=context, **settings)
        return decorator

    def periodic_task(self, validate_datetime, retries=0, retry_delay=0, priority=None,
                      expires=None, name=None, context=False, **settings):
        def decorator(func):
            return PeriodicTaskWrapper(self, func, validate_datetime, retries=retries,
                                       retry_delay=retry_delay, priority=priority,
                                       expires=expires, name=name, context=context, **settings)
        return decorator

    def signal(self, *names: str):
        def decorator(handler):
            self.signals.connect(handler, *names)
            return handler
        return decorator

    def disconnect_signal(self, handler, *names: str) -> None:
        self.signals.disconnect(handler, *names)

    def pre_execute(self, name=None):
        def decorator(func):
            self._pre_execute[name or func.__name__] = func
            return func
        return decorator

    def post_execute(self, name=None):
        def decorator(func):
            self._post_execute[name or func.__name__] = func
            return func
        return decorator

    def on_startup(self, name=None):
        """Run in every consumer worker after it starts (open connections here)."""
        def decorator(func):
            self._startup.append(func)
            return func
        return decorator

    def on_shutdown(self, name=None):
        def decorator(func):
            self._shutdown.append(func)
            return func
        return decorator

    def lock_task(self, name: str) -> TaskLock:
        self.lock_names.add(name)
        return TaskLock(self, name)

    def lock_holder(self) -> str:
        """What a lock taken here records as its holder."""
        return self.worker_owner or '%s:%d' % (os.uname().nodename, os.getpid())

    def is_locked(self, name: str) -> bool:
        return TaskLock(self, name).is_locked()

    def release_locks_of(self, owner: str) -> List[str]:
        """Free the locks a dead worker held; the supervisor calls this."""
        return release_locks_of(self, owner)

    # -- enqueueing ----------------------------------------------------
    def enqueue(self, task: Task):
        """Queue a task (or a pipeline); its Result, or None without a result store."""
        if task.eta is not None and task.eta > time.time():
            # Delayed work waits in storage, in immediate mode too.
            self.storage.schedule_add(encode_task(task), task.eta, task.priority or 0)
            self.signals.send(S.SIGNAL_SCHEDULED, task)
        elif self.immediate:
            self.signals.send(S.SIGNAL_ENQUEUED, task)
            self._settle_revocation(execute(self, task))
        else:
            self.storage.enqueue(encode_task(task), task.priority or 0)
            self.signals.send(S.SIGNAL_ENQUEUED, task)
        return self._result_for(task)

    def enqueue_many(self, tasks: List[Task]):
        """Queue many tasks in one round trip; a ResultGroup (or None)."""
        if self.immediate:
            results = [self.enqueue(t) for t in tasks]
        else:
            self.storage.enqueue_many([(encode_task(t), t.priority or 0)
                                       for t in tasks])
            for task in tasks:
                self.signals.send(S.SIGNAL_ENQUEUED, task)
            results = [self._result_for(t) for t in tasks]
        return None if self.result_storage is None else ResultGroup(results)

    def _result_for(self, task: Task):
        if self.result_storage is None:
            return None
        if task.on_complete is None:
            return Result(self, task)
        chain, node = [], task
        while node is not None:
            chain.append(Result(self, node))
            node = node.on_complete
        return ResultGroup(chain)

    def reschedule(self, task: Task, eta=None, delay=None):
        """Revoke this instance and enqueue a copy to run at a new time."""
        if task.name is None:
            raise ConfigurationError('cannot reschedule task %s: this handle knows only its '
                                     'id; reschedule the Result the call returned' % task.id)
        self.revoke_by_id(task.id)
        again = copy.copy(task)  # keeps arguments, expiry, retries and pipeline links
        again.id = str(uuid.uuid4())
        again.eta = resolve_eta(eta, delay)
        return self.enqueue(again)

    # -- results -------------------------------------------------------
    def put_result(self, key: str, value) -> None:
        if self.result_storage is not None:
            self.result_storage.put_data(key, encode_result(value))

    def result(self, task_id: str, blocking=False, timeout=None, backoff=1.15,
               max_delay=1.0, revoke_on_timeout=False, preserve=False):
        if self.result_storage is None:
            raise ConfigurationError('this Huey has no result store: pass result_store=')
        handle = Result(self, Task(id=task_id))
        return handle.get(blocking, timeout, backoff, max_delay, revoke_on_timeout, preserve)

    def exception_for(self, task, exc, tb) -> TaskException:
        return TaskException(error_metadata(task, exc, tb))

    # -- revocation ----------------------------------------------------
    def _revoke(self, key: str, revoke_until, revoke_once) -> None:
        # Converted (or refused) here: a bad value stored would fail the
        # check that runs before every instance of the task.
        until = None if revoke_until is None else instant(revoke_until, 'revoke_until')
        self.storage.put_data(key, pickle.dumps((until, bool(revoke_once))))

    def _check_revoked(self, key: str, now: float, peek: bool) -> bool:
        return self._revoked_by(key, self.storage.peek_data(key), now, peek)

    def _in_force(self, key: str, data: Optional[bytes], now: float,
                  clear_lapsed: bool) -> Tuple[bool, bool]:
        """(in force at ``now``?, one-time?) for the revocation ``data`` stored
        at ``key``. Only a real check clears a lapsed one: a peek may ask
        about a later time."""
        if data is None:
            return False, False
        until, once = pickle.loads(data)
        if until is not None and now >= until:
            if clear_lapsed:
                self.storage.delete_data(key)
            return False, once
        return True, once

    def _revoked_by(self, key: str, data: Optional[bytes], now: float, peek: bool) -> bool:
        """Whether the revocation ``data`` stored at ``key`` holds at ``now``."""
        holds, once = self._in_force(key, data, now, clear_lapsed=not peek)
        if holds and once and not peek:
            # Only the check that deletes it is revoked: two workers taking
            # two instances at once must not both skip theirs.
            return self.storage.delete_data(key)
        return holds

    def revoke_by_id(self, task_id: str, revoke_until=None, revoke_once=True) -> None:
        self._revoke('r:%s' % task_id, revoke_until, revoke_once)

    def restore_by_id(self, task_id: str) -> bool:
        return self.storage.delete_data('r:%s' % task_id)

    def revoke(self, task, revoke_until=None, revoke_once=False) -> None:
        """Revoke one instance: a Task, a Result, or a task id (huey 2's form)."""
        self.revoke_by_id(getattr(task, 'id', task), revoke_until, revoke_once)

    def restore(self, task) -> bool:
        return self.restore_by_id(getattr(task, 'id', task))

    def revoke_all(self, task, revoke_until=None, revoke_once=False) -> None:
        """Revoke every instance of a task (its wrapper, its class or its name)."""
        self._revoke('rt:%s' % _task_name_of(task), revoke_until, revoke_once)

    def restore_all(self, task) -> bool:
        return self.storage.delete_data('rt:%s' % _task_name_of(task))

    def is_revoked_all(self, task, dt=None) -> bool:
        now = time.time() if dt is None else instant(dt, 'dt')
        return self._check_revoked('rt:%s' % _task_name_of(task), now, peek=True)

    def is_revoked(self, task, now: Optional[float] = None, peek=True) -> bool:
        """Revoked as an instance (by id) or as a whole task class. ``task``
        is a Task instance, a task id, or a task wrapper / class (all instances)."""
        now = time.time() if now is None else instant(now, 'now')
        if isinstance(task, str):
            return self._check_revoked('r:%s' % task, now, peek)
        if isinstance(task, TaskWrapper) or isinstance(task, type):
            return self._check_revoked('rt:%s' % task.name, now, peek)
        # Both keys in one read: this runs before every task.
        keys = ('r:%s' % task.id, 'rt:%s' % task.name)
        by_id, by_name = self.storage.peek_many(keys)
        return (self._revoked_by(keys[0], by_id, now, peek)
                or self._revoked_by(keys[1], by_name, now, peek))

    def check_revoked(self, task, now: float):
        """Before running ``task``: (revoked?, key to delete once its message
        is acked). A one-time revocation by id is cleared only after the ack:
        cleared before, a worker dying in between would let the message come
        back with nothing to stop it. (One-time revocations of a whole task
        are cleared at once: of two calls checked together, only one skips.)"""
        keys = ('r:%s' % task.id, 'rt:%s' % task.name)
        by_id, by_name = self.storage.peek_many(keys)
        holds, once = self._in_force(keys[0], by_id, now, clear_lapsed=True)
        if holds:
            return True, (keys[0] if once else None)
        return self._revoked_by(keys[1], by_name, now, peek=False), None

    def _settle_revocation(self, outcome: Outcome) -> None:
        if outcome.status == S.SIGNAL_REVOKED and outcome.value:
            self.storage.delete_data(outcome.value)

    # -- hooks ---------------------------------------------------------
    def run_pre_execute(self, task) -> None:
        for hook in list(self._pre_execute.values()):
            hook(task)  # CancelExecution propagates: it cancels the task

    def run_post_execute(self, task, value, exc) -> None:
        for name, hook in list(self._post_execute.items()):
            try:
                hook(task, value, exc)
            except Exception:
                logger.exception('post-execute hook %r failed', name)

    def run_startup_hooks(self) -> None:
        """Raises what a hook raises: a worker that cannot start must say so."""
        for hook in self._startup:
            hook()

    def run_shutdown_hooks(self) -> None:
        for hook in self._shutdown:
            try:
                hook()
            except Exception:
                logger.exception('shutdown hook %r failed', hook)

    def _emit_event(self, signal, task, *args) -> None:
        self.events.emit_signal(signal, task, *args)

    # -- the consumer's face ---------------------------------------------
    def reserve(self, owner: str, lease: float, timeout: float = 0) -> Optional[Reservation]:
        reservation = self.storage.reserve(owner, lease, time.time(), timeout)
        return None if reservation is None else reservation._replace(owner=owner)

    def process(self, reservation: Reservation, max_deliveries: Optional[int] = None,
                on_start: Optional[Callable] = None) -> Outcome:
        """Run one reserved message to its end and ack it. Messages that cannot
        run become dead letters; nothing raised here comes from the task.
        ``on_start(task)`` is called just before the task runs."""
        if max_deliveries and reservation.deliveries > max_deliveries:
            # Checked before anything else touches the message, so a message
            # that kills its worker anywhere (even while being decoded) ends.
            return self._dead_letter(reservation, (
                'poison message: delivered %d times without finishing (its worker '
                'died each time); inspect it before requeueing' % (reservation.deliveries - 1)))
        try:
            message = deserialize(reservation.data)
        except MessageDecodeError as exc:
            return self._dead_letter(reservation, str(exc))
        try:
            task = task_from_message(self, message)
        except QueueException as exc:
            return self._dead_letter(reservation, str(exc))
        if on_start is not None:
            on_start(task)
        outcome = execute(self, task)
        if not self.storage.ack(reservation.token, reservation.owner):
            # Our lease ran out (storage unreachable, or the process was
            # frozen) and the message went back; whoever has it now keeps it
            # (and any revocation with it).
            logger.warning('%s finished, but its reservation had already been returned '
                           'to the queue (lease ran out): it may run again', task)
            return outcome
        self._settle_revocation(outcome)
        return outcome

    def _dead_letter(self, reservation: Reservation, reason: str) -> Outcome:
        message = peek_message(reservation.data)
        logger.error('dead letter (%s): %s', message.name if message else '<undecodable>',
                     reason)
        if message is not None:
            # A caller waiting on get() learns why, instead of waiting forever.
            self.put_result(message.id, ErrorResult({
                'error': 'dead letter: %s' % reason, 'type': 'huey.exceptions.QueueException',
                'traceback': '', 'retries': 0, 'task_id': message.id, 'task': message.name}))
        self.storage.dead_letter(reservation.token, reason, time.time(), reservation.owner)
        self.signals.send(S.SIGNAL_DEAD_LETTER, self._task_or_none(message), reason)
        return Outcome(S.SIGNAL_DEAD_LETTER, reason)

    def _task_or_none(self, message):
        """The task of a message for signal handlers, or None if it has none here."""
        try:
            return None if message is None else task_from_message(self, message)
        except QueueException:
            return None

    def move_due(self, now: Optional[float] = None, batch: int = 1000) -> int:
        """Move every delayed message whose eta has come into the queue, in
        batches (each one atomic), so 10,000 tasks due at once are all
        queued in this call, not over ten scheduler ticks."""
        now = time.time() if now is None else now
        moved = total = self.storage.schedule_move_due(now, batch)
        while moved == batch:
            moved = self.storage.schedule_move_due(now, batch)
            total += moved
        return total

    def enqueue_periodic(self, dt: datetime.datetime) -> List[Task]:
        """Enqueue the periodic tasks matching ``dt``'s minute, once per minute
        however many consumers call this for it."""
        slot = dt.strftime('%Y-%m-%dT%H:%M')
        queued = []
        for task_class in self.registry.periodic_tasks():
            if not self._periodic_due(task_class, dt):
                continue
            task = task_class()
            key = 'periodic:%s:%s' % (task.name, slot)
            data = encode_task(task)
            if self.storage.enqueue_once(key, PERIODIC_SLOT_TTL, data, task.priority or 0):
                self.signals.send(S.SIGNAL_ENQUEUED, task)
                queued.append(task)
        return queued

    @staticmethod
    def _periodic_due(task_class, dt: datetime.datetime) -> bool:
        """Whether a periodic task's schedule matches ``dt``. A schedule that
        raises is logged and skipped for this minute: it must not hold back
        the other periodic tasks."""
        try:
            return bool(task_class.validate_datetime(dt))
        except Exception:
            logger.exception('schedule of periodic task %s failed for %s; skipped',
                             task_class.name, dt.strftime('%Y-%m-%d %H:%M'))
            return False

    def close(self) -> None:
        """Drop storage connections (a forked worker calls this first)."""
        self.storage.close()
        if self.result_storage is not None and self.result_storage is not self.storage:
            self.result_storage.close()

    # -- inspection ----------------------------------------------------
    def pending(self, limit=None) -> List[Task]:
        return [self._decode(d) for d in self.storage.queue_items(limit)]

    def scheduled(self, limit=None) -> List[Task]:
        return [self._decode(d) for _, d in self.storage.schedule_items(limit)]

    def _decode(self, data: bytes):
        try:
            return task_from_message(self, deserialize(data))
        except (MessageDecodeError, QueueException) as exc:
            return exc

    def pending_count(self) -> int:
        return self.storage.queue_size()

    def scheduled_count(self) -> int:
        return self.storage.schedule_size()

    def result_count(self) -> int:
        return 0 if self.result_storage is None else self.result_storage.result_count()

    def __len__(self) -> int:
        return self.pending_count()

    def flush(self) -> None:
        """Delete everything this Huey stores (tests, mostly)."""
        self.storage.flush_all()
        if self.result_storage is not None and self.result_storage is not self.storage:
            self.result_storage.flush_all()

    def flush_locks(self, *names: str) -> List[str]:
        """Release the named locks (all known ones when none are named)."""
        return [n for n in (names or sorted(self.lock_names)) if TaskLock(self, n).release()]

    # -- dead letters --------------------------------------------------
    def dead_letters(self):
        return self.storage.dead_letters()

    def requeue_dead_letters(self, ids: Optional[Iterable[str]] = None) -> int:
        """Put dead letters back in the queue; returns how many went back.
        The "dead letter" error stored for each is cleared first, so a get()
        waits for the new run instead of seeing the old failure."""
        wanted = None if ids is None else set(ids)
        if self.result_storage is not None:
            for letter in self.dead_letters():
                message = peek_message(letter.data)
                if message is not None and (wanted is None or letter.id in wanted):
                    self.result_storage.delete_data(message.id)
        return self.storage.requeue_dead_letters(wanted)

    def purge_dead_letters(self) -> int:
        return self.storage.purge_dead_letters()

