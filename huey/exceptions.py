"""Every exception huey raises on purpose derives from :class:`HueyException`."""
from huey.timeutil import instant, seconds


class HueyException(Exception):
    """Base class of huey's own errors."""


class QueueException(HueyException):
    """A message could not be queued or run (for instance an unknown task)."""


class DataStoreTimeout(HueyException):
    """A blocking ``Result.get()`` ran past its timeout."""


class ConfigurationError(HueyException):
    """The ``Huey`` object or a task was set up wrongly."""


class MessageDecodeError(QueueException):
    """Bytes in the queue are not a message this version can read."""


class StorageError(HueyException):
    """The storage failed in a way a retry will not fix by itself."""


class StorageUnavailable(StorageError):
    """The storage server cannot be reached (Redis down, say)."""


class TaskException(HueyException):
    """Raised by ``Result.get()`` when the task raised.

    ``metadata`` holds ``error`` (the remote exception's text), ``type``
    (its class name), ``traceback`` (its formatted traceback), plus
    ``retries`` and ``task_id``.
    """

    def __init__(self, metadata=None, *args):
        self.metadata = metadata or {}
        # metadata goes into args so the exception pickles with it.
        super().__init__(self.metadata, *args)

    @property
    def type_name(self):
        return self.metadata.get('type')

    @property
    def traceback(self):
        return self.metadata.get('traceback')

    def __str__(self):
        return '%s: %s' % (self.metadata.get('type', 'Exception'),
                           self.metadata.get('error', ''))


class TaskLockedException(HueyException):
    """A task's lock is held elsewhere."""


class ResultTimeout(DataStoreTimeout):
    """What a blocking ``get()`` raises on timeout: today's huey name, and a
    ``DataStoreTimeout`` as the seed had it, so either ``except`` catches it."""


class RetryTask(Exception):
    """Raise inside a task to ask for a retry (``delay`` in seconds)."""

    def __init__(self, msg=None, eta=None, delay=None, *args, **kwargs):
        # Checked when raised, so a bad value fails this task with a clear
        # error instead of failing later in the worker's retry code.
        self.eta = None if eta is None else instant(eta, 'RetryTask(eta=...)')
        self.delay = None if delay is None else seconds(delay)
        super().__init__(msg, *args, **kwargs)


class CancelExecution(Exception):
    """Raise in a task or a pre-execute hook to cancel this execution.

    ``retry=True`` asks for a retry instead (when retries remain).
    """

    def __init__(self, retry=None, *args, **kwargs):
        self.retry = retry
        super().__init__(*args, **kwargs)
