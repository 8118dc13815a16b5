"""``huey_consumer.py main.huey [options]``: parse, load, check, supervise.

Every failure before the workers start is one clear line on stderr and exit
code 2 (bad usage or app path) or 1 (storage unreachable): never a
half-started daemon.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import List, Optional

from consumer import exitcodes
from consumer.config import config_from_args
from consumer.loader import LoadError, load_huey
from consumer.logs import setup_logging
from consumer.supervisor import Supervisor
from huey.exceptions import StorageError
from huey.storage.memory import MemoryStorage

PROG = 'huey_consumer.py'


def fail(message: str, code: int) -> int:
    print('%s: error: %s' % (PROG, message), file=sys.stderr)
    return code


def check_runnable(huey) -> Optional[str]:
    """Why this Huey cannot feed worker processes, or None."""
    if huey.immediate:
        return ('%r is in immediate mode (always_eager / immediate=True): its tasks run '
                'in the caller and never reach a queue; turn it off for the consumer' % huey.name)
    if isinstance(huey.storage, MemoryStorage):
        return ('%r keeps its queue in memory, which worker processes cannot share: use '
                'RedisHuey or SqliteHuey (or a Redis/SQLite queue)' % huey.name)
    return None


def make_room_for_the_app() -> None:
    """This daemon's package is named ``consumer``, a name applications give
    their own modules too (a Kafka consumer, say). Every daemon module is
    imported by now, and nothing imports from ``consumer`` later; taking its
    entries out of sys.modules lets the app's ``import consumer`` find the
    app's own module instead of this package."""
    for name in [n for n in sys.modules if n == 'consumer' or n.startswith('consumer.')]:
        del sys.modules[name]


def open_standard_fds() -> None:
    """Started with stdin, stdout or stderr closed (``>&-``, some service
    managers), the next file opened takes that number: a Redis socket
    would become fd 1, and a task's print() would be sent to Redis as a
    command. /dev/null fills any gap before anything else is opened."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdout is None:  # Python leaves None for a stream closed at start
        sys.stdout = open(1, 'w', closefd=False)
    if sys.stderr is None:
        sys.stderr = open(2, 'w', closefd=False)


def main(argv: Optional[List[str]] = None) -> int:
    open_standard_fds()
    try:
        config = config_from_args(argv)
    except ValueError as exc:
        return fail(str(exc), exitcodes.USAGE)
    handler = setup_logging(config, 'supervisor', owner_of_file=True)
    make_room_for_the_app()
    try:
        huey = load_huey(config.app_path)
    except LoadError as exc:
        return fail(str(exc), exitcodes.USAGE)
    problem = check_runnable(huey)
    if problem:
        return fail(problem, exitcodes.USAGE)
    try:
        huey.storage.queue_size()
    except StorageError as exc:
        return fail('cannot reach the storage of %s: %s' % (config.app_path, exc), exitcodes.ERROR)
    if config.flush_locks:
        freed = huey.flush_locks()
        logging.getLogger('huey.consumer').info('released locks at start: %s',
                                                ', '.join(freed) or 'none held')
    logging.getLogger('huey.consumer').info(
        'loaded %s: %d tasks (%d periodic)', config.app_path, len(huey.registry),
        len(huey.registry.periodic_tasks()))
    return Supervisor(huey, config, handler).run()
