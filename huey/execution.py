"""Running one task: hooks, signals, the result, retries and pipelines.

Used by the consumer's workers and by immediate mode alike, so both behave
the same. Never raises for a task's own failure: the outcome says what
happened, and a failure's traceback is logged here, once.
"""
from __future__ import annotations

import copy
import logging
import time
import traceback
from typing import Any, NamedTuple, Optional

from huey import signals as S
from huey.exceptions import CancelExecution, RetryTask, TaskLockedException
from huey.result import ErrorResult, NoneResult, encode_result

logger = logging.getLogger('huey.execution')

# A None result, when store_none is off, is kept this long: enough for a
# waiting get() to see the task finished, short enough not to pile up.
NONE_RESULT_TTL = 3600


class Outcome(NamedTuple):
    status: str            # one of the signal names: complete, error, retrying, ...
    value: Any = None
    duration: float = 0.0


def _text_of(exc: BaseException) -> str:
    """str(exc), even for an exception whose __str__ itself raises."""
    try:
        return str(exc)
    except Exception:
        return '<%s whose str() failed>' % type(exc).__name__


def error_metadata(task, exc: BaseException, tb: Optional[str] = None) -> dict:
    return {'error': _text_of(exc), 'type': '%s.%s' % (type(exc).__module__, type(exc).__qualname__),
            'traceback': tb if tb is not None else traceback.format_exc(),
            'retries': task.retries, 'task_id': task.id, 'task': task.name}


def execute(huey, task, now: Optional[float] = None) -> Outcome:
    now = time.time() if now is None else now
    if task.expires is not None and now > task.expires:
        huey.signals.send(S.SIGNAL_EXPIRED, task)
        return Outcome(S.SIGNAL_EXPIRED)
    revoked, clear_after_ack = huey.check_revoked(task, now)
    if revoked:
        huey.signals.send(S.SIGNAL_REVOKED, task)
        return Outcome(S.SIGNAL_REVOKED, clear_after_ack)
    try:
        huey.run_pre_execute(task)
    except CancelExecution as exc:
        return _cancel(huey, task, exc, now)
    except Exception as exc:
        # A failing hook fails this task (retries apply), never the worker.
        logger.error('pre-execute hook failed for %s', task)
        return _fail(huey, task, exc, now, log=True)
    return _run(huey, task, now)


def _run(huey, task, now: float) -> Outcome:
    huey.signals.send(S.SIGNAL_EXECUTING, task)
    start = time.monotonic()
    value, exc = None, None
    try:
        value = task.execute()
    except TaskLockedException as e:
        exc = e
        logger.warning('task %s not run: %s', task, e)
        huey.signals.send(S.SIGNAL_LOCKED, task)
        # Reported as locked (signal sent above), not also as an error; the
        # error result is still stored so a waiting get() learns it did not run.
        outcome = _fail(huey, task, e, now, log=False, final=S.SIGNAL_LOCKED)
    except RetryTask as e:
        exc = e
        # Asking for a retry is honoured even with no retries left (as in huey).
        task.retries = max(task.retries, 1)
        outcome = _fail(huey, task, e, now, log=False, eta=e.eta, delay=e.delay)
    except CancelExecution as e:
        exc = e
        outcome = _cancel(huey, task, e, now)
    except (Exception, SystemExit) as e:
        # sys.exit() in a task fails that task; it must not end the worker
        # (which would count as a crash and run the task again).
        exc = e
        outcome = _fail(huey, task, e, now, log=True)
    else:
        outcome = _complete(huey, task, value, now)
    duration = time.monotonic() - start
    huey.run_post_execute(task, value, exc)
    return outcome._replace(duration=duration)


def _complete(huey, task, value, now: float) -> Outcome:
    try:
        data = _encode_value(huey, value)
    except Exception as exc:
        # A result that cannot be pickled fails the task with a clear error
        # rather than killing the worker or leaving get() waiting forever.
        # (Only encoding is guarded: a storage outage while storing must
        # propagate, so the message runs again instead of a false failure.)
        text = ('result of type %s could not be stored (%s: %s); return plain data'
                % (type(value).__name__, type(exc).__name__, exc))
        metadata = error_metadata(task, exc, traceback.format_exc())
        metadata.update(error=text, type='huey.exceptions.ResultNotStorable')
        huey.put_result(task.id, ErrorResult(metadata))
        logger.error('task %s: %s', task, text)
        huey.signals.send(S.SIGNAL_ERROR, task, exc)
        return Outcome(S.SIGNAL_ERROR, exc)
    _store_encoded(huey, task, value, data)
    huey.signals.send(S.SIGNAL_COMPLETE, task)
    if task.on_complete is not None:
        follower = task.on_complete
        follower.extend_data(value)
        huey.enqueue(follower)
    return Outcome(S.SIGNAL_COMPLETE, value)


def _encode_value(huey, value) -> Optional[bytes]:
    if huey.result_storage is None:
        return None
    if value is None and not huey.store_none:
        return encode_result(NoneResult())
    return encode_result(value)


def _store_encoded(huey, task, value, data: Optional[bytes]) -> None:
    if data is None:
        return
    if value is None and not huey.store_none:
        huey.result_storage.put_if_empty(task.id, data, NONE_RESULT_TTL)
    else:
        huey.result_storage.put_data(task.id, data)


def _fail(huey, task, exc, now, log, eta=None, delay=None,
          final=S.SIGNAL_ERROR) -> Outcome:
    tb = traceback.format_exc()
    if log:
        logger.error('task %s failed (%d retries left)\n%s', task, task.retries, tb.rstrip())
    if task.retries > 0:
        _retry(huey, task, now, eta, delay)
        return Outcome(S.SIGNAL_RETRYING, exc)
    huey.put_result(task.id, ErrorResult(error_metadata(task, exc, tb)))
    if final == S.SIGNAL_ERROR:
        huey.signals.send(S.SIGNAL_ERROR, task, exc)
    if task.on_error is not None:
        follower = task.on_error
        follower.extend_data((huey.exception_for(task, exc, tb),))
        huey.enqueue(follower)
    return Outcome(final, exc)


def _cancel(huey, task, exc: CancelExecution, now: float) -> Outcome:
    if exc.retry and task.retries > 0:
        _retry(huey, task, now)
        return Outcome(S.SIGNAL_RETRYING, exc)
    huey.signals.send(S.SIGNAL_CANCELED, task)
    return Outcome(S.SIGNAL_CANCELED, exc)


def _retry(huey, task, now: float, eta=None, delay=None) -> None:
    again = copy.copy(task)
    again.retries = task.retries - 1
    if eta is not None:
        again.eta = eta  # epoch seconds: RetryTask converts what it is given
    else:
        # The delay counts from the failure, not from when the task started.
        wait = task.retry_delay if delay is None else delay
        again.eta = time.time() + wait if wait else None
    huey.signals.send(S.SIGNAL_RETRYING, again)
    huey.enqueue(again)
