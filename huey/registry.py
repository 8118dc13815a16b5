"""The task registry: task name -> task class, one per ``Huey`` object.

Decorating a function registers it; the consumer looks a message's task name
up here. The consumer only knows the tasks whose modules it imported, which is
why an unknown name says where to import it.
"""
from __future__ import annotations

from typing import Dict, List, Type

from huey.exceptions import ConfigurationError, QueueException


class TaskRegistry:
    def __init__(self):
        self._tasks: Dict[str, type] = {}
        self._periodic: List[type] = []

    def register(self, task_class: Type) -> None:
        name = task_class.name
        existing = self._tasks.get(name)
        if existing is not None and not _same_function(existing, task_class):
            raise ConfigurationError(
                'a task named %r is already registered (%s); two tasks cannot '
                'share a name: rename one function or pass name="..." to its '
                'decorator' % (name, _where(existing)))
        self._tasks[name] = task_class
        self._periodic = [t for t in self._periodic if t.name != name]
        if getattr(task_class, 'periodic', False):
            self._periodic.append(task_class)

    def unregister(self, name: str) -> bool:
        self._periodic = [t for t in self._periodic if t.name != name]
        return self._tasks.pop(name, None) is not None

    def lookup(self, name: str) -> Type:
        try:
            return self._tasks[name]
        except KeyError:
            module = name.rpartition('.')[0] or name
            raise QueueException(
                'task %r is not registered: the consumer knows only tasks whose '
                'modules were imported when it loaded your Huey object. Import '
                '%r in the module that defines or imports the Huey object, '
                'then restart the consumer' % (name, module)) from None

    def names(self) -> List[str]:
        return sorted(self._tasks)

    def periodic_tasks(self) -> List[Type]:
        return list(self._periodic)

    def __contains__(self, name: str) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)


def _same_function(a, b) -> bool:
    """Re-registering the same function is fine: the same object, or the same
    source compiled again (a module imported twice or reloaded). One code
    object behind two functions is a factory making closures: those differ."""
    fa, fb = a.func, b.func
    if fa is fb:
        return True
    ca, cb = fa.__code__, fb.__code__
    return (ca is not cb and ca.co_filename == cb.co_filename
            and ca.co_firstlineno == cb.co_firstlineno)


def _where(task_class) -> str:
    code = task_class.func.__code__
    return 'defined at %s:%d' % (code.co_filename, code.co_firstlineno)
