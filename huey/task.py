"""Tasks: the decorated function's wrapper and one queued instance of it.

``@huey.task()`` turns a function into a :class:`TaskWrapper`; calling the
wrapper builds a :class:`Task` (an instance of the wrapper's ``task_class``)
and enqueues it. ``.s()`` builds the Task without enqueueing, for pipelines.
"""
from __future__ import annotations

import datetime
import functools
import os
import sys
import uuid
from typing import Any, Callable, Optional

from huey.message import Message
from huey.timeutil import resolve_eta, resolve_expires, seconds, utc_datetime


def task_name(func: Callable) -> str:
    """``module.function``. A task defined in a script run as ``__main__`` is
    named after the script's file, so the producer (``python main.py``) and the
    consumer (which imports ``main``) agree on the name."""
    module = func.__module__
    if module == '__main__':
        main = sys.modules.get('__main__')
        spec = getattr(main, '__spec__', None)
        path = getattr(main, '__file__', None)
        if spec is not None and spec.name:
            module = spec.name  # python -m pkg.main: the consumer imports pkg.main
        elif path:
            module = os.path.splitext(os.path.basename(path))[0]
    return '%s.%s' % (module, func.__name__)


class Task:
    """One call of a task: its arguments and delivery settings."""

    name: str = None
    func: Callable = None
    huey = None
    periodic = False
    default_retries = 0
    default_retry_delay = 0
    default_priority = None
    default_expires = None
    context = False

    def __init__(self, args=None, kwargs=None, id=None, eta=None, retries=None,
                 retry_delay=None, priority=None, expires=None, on_complete=None,
                 on_error=None):
        self.args = tuple(args or ())
        self.kwargs = dict(kwargs or {})
        if id is not None and not isinstance(id, str):
            # Ids name storage keys (results, revocations): only strings do.
            raise TypeError('task id must be a string, not %s (%r): pass id=str(...)'
                            % (type(id).__name__, id))
        self.id = id or str(uuid.uuid4())
        self.eta = eta  # UTC epoch seconds, or None
        self.retries = self.default_retries if retries is None else retries
        self.retry_delay = _delay_seconds(
            self.default_retry_delay if retry_delay is None else retry_delay)
        self.priority = self.default_priority if priority is None else priority
        self.expires = resolve_expires(self.default_expires if expires is None else expires)
        self.on_complete = on_complete
        self.on_error = on_error

    def execute(self):
        kwargs = dict(self.kwargs)
        if self.context:
            kwargs['task'] = self
        return self.func(*self.args, **kwargs)

    def then(self, task, *args, **kwargs) -> 'Task':
        """Run ``task`` with this one's result after it succeeds; returns self
        so calls chain: ``a.s(1).then(b).then(c)``."""
        nxt = task if isinstance(task, Task) else task.s(*args, **kwargs)
        last = self
        while last.on_complete is not None:
            last = last.on_complete
        last.on_complete = nxt
        return self

    def error(self, task, *args, **kwargs) -> 'Task':
        """Run ``task`` with the exception if this one fails for good."""
        self.on_error = task if isinstance(task, Task) else task.s(*args, **kwargs)
        return self

    def extend_data(self, data: Any) -> None:
        """Feed a parent's result into this task's arguments."""
        if data is None:
            return
        if isinstance(data, tuple):
            self.args += data
        elif isinstance(data, dict):
            self.kwargs.update(data)
        else:
            self.args += (data,)

    def to_message(self) -> Message:
        return Message(
            id=self.id, name=self.name, args=self.args, kwargs=self.kwargs,
            eta=self.eta, retries=self.retries, retry_delay=self.retry_delay,
            priority=self.priority or 0, expires=self.expires,
            on_complete=self.on_complete.to_message() if self.on_complete else None,
            on_error=self.on_error.to_message() if self.on_error else None)

    def __repr__(self):
        eta = ' @%s' % utc_datetime(self.eta).isoformat() if self.eta else ''
        return '%s: %s%s' % (self.name, self.id, eta)


def _delay_seconds(value) -> float:
    """retry_delay as seconds: messages carry numbers, so a timedelta is
    converted here, where it is given, and a bad value is refused here too."""
    try:
        return seconds(value or 0)
    except TypeError:
        raise TypeError('retry_delay must be seconds or a timedelta, got %r' % (value,)) from None


def task_from_message(huey, message: Message) -> Task:
    task_class = huey.registry.lookup(message.name)
    task = task_class(
        args=message.args, kwargs=message.kwargs, id=message.id, eta=message.eta,
        retries=message.retries, retry_delay=message.retry_delay,
        priority=message.priority, on_complete=None, on_error=None)
    task.expires = message.expires
    if message.on_complete is not None:
        task.on_complete = task_from_message(huey, message.on_complete)
    if message.on_error is not None:
        task.on_error = task_from_message(huey, message.on_error)
    return task


class TaskWrapper:
    """What ``@huey.task()`` returns: call it to enqueue, ``.call_local`` to run here."""

    def __init__(self, huey, func: Callable, retries=0, retry_delay=0, priority=None,
                 expires=None, name=None, context=False, task_base=Task, **settings):
        self.huey = huey
        self.func = func
        self.name = name or task_name(func)
        retry_delay = _delay_seconds(retry_delay)  # a bad value fails at decoration
        resolve_expires(expires)
        self.task_class = type(func.__name__, (task_base,), {
            'name': self.name, 'func': staticmethod(func), 'huey': huey,
            'default_retries': retries, 'default_retry_delay': retry_delay,
            'default_priority': priority, 'default_expires': expires,
            'context': context, '__module__': func.__module__, **settings})
        functools.update_wrapper(self, func)
        huey.registry.register(self.task_class)

    def __call__(self, *args, **kwargs):
        return self.huey.enqueue(self.s(*args, **kwargs))

    def s(self, *args, **kwargs) -> Task:
        """A task instance (a signature) not yet enqueued."""
        return self.task_class(args, kwargs)

    def schedule(self, args=None, kwargs=None, eta=None, delay=None, priority=None,
                 retries=None, retry_delay=None, expires=None, id=None):
        """Enqueue to run at ``eta`` (a datetime, naive = local time, or
        aware) or after ``delay`` (seconds or a timedelta)."""
        task = self.task_class(args, kwargs, id=id, eta=resolve_eta(eta, delay),
                               retries=retries, retry_delay=retry_delay,
                               priority=priority, expires=expires)
        return self.huey.enqueue(task)

    def map(self, iterable):
        """Enqueue one task per item in one round trip; items that are tuples
        are spread as positional arguments."""
        tasks = [self.s(*(item if isinstance(item, tuple) else (item,)))
                 for item in iterable]
        return self.huey.enqueue_many(tasks)

    def call_local(self, *args, **kwargs):
        """Run the function here and now, bypassing the queue."""
        return self.func(*args, **kwargs)

    # Revocation of every instance of this task.
    def revoke(self, revoke_until=None, revoke_once=False) -> None:
        self.huey.revoke_all(self.name, revoke_until, revoke_once)

    def is_revoked(self, dt=None) -> bool:
        return self.huey.is_revoked_all(self.name, dt)

    def restore(self) -> bool:
        return self.huey.restore_all(self.name)

    def unregister(self) -> bool:
        return self.huey.registry.unregister(self.name)

    def __repr__(self):
        return '<task %s>' % self.name


class PeriodicTaskWrapper(TaskWrapper):
    """What ``@huey.periodic_task(schedule)`` returns."""

    def __init__(self, huey, func, validate_datetime: Callable[[datetime.datetime], bool],
                 **kwargs):
        if not callable(validate_datetime):
            raise TypeError('periodic_task() needs a crontab(...) or a callable taking '
                            'a datetime, got %r' % (validate_datetime,))
        kwargs['periodic'] = True
        kwargs['validate_datetime'] = staticmethod(validate_datetime)
        super().__init__(huey, func, **kwargs)
        self.validate_datetime = validate_datetime

    def s(self, *args, **kwargs) -> Task:
        # Periodic tasks take no arguments: the scheduler calls them bare.
        if args or kwargs:
            raise TypeError('periodic task %s takes no arguments, got args=%r kwargs=%r'
                            % (self.name, args, kwargs))
        return self.task_class((), {})
