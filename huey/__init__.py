"""huey: a task queue with a supervised multiprocess consumer.

    from huey import RedisHuey, crontab
    huey = RedisHuey('my-app')

    @huey.task()
    def add(a, b):
        return a + b
"""
from huey.api import Huey
from huey.crontab import crontab
from huey.exceptions import (CancelExecution, ConfigurationError, DataStoreTimeout,
                             HueyException, QueueException, ResultTimeout, RetryTask,
                             TaskException, TaskLockedException)
from huey.flavors import MemoryHuey, RedisHuey, SqliteHuey
from huey.result import Result, ResultGroup
from huey.task import Task, TaskWrapper

__version__ = '0.1.0'

__all__ = ['Huey', 'RedisHuey', 'SqliteHuey', 'MemoryHuey', 'crontab', 'Result',
           'ResultGroup', 'Task', 'TaskWrapper', 'HueyException', 'QueueException',
           'DataStoreTimeout', 'ResultTimeout', 'TaskException', 'TaskLockedException', 'RetryTask',
           'CancelExecution', 'ConfigurationError']
