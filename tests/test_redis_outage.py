"""A producer's call during a Redis outage fails fast and clearly, never hangs."""
import os
import signal
import time

import pytest

from huey import RedisHuey
from huey.exceptions import StorageUnavailable
from tests.redis_server import PrivateRedis


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)  # in case a test left it stopped
    server.cleanup()


def test_enqueue_while_redis_is_down_raises_storage_unavailable(private_redis):
    huey = RedisHuey('outage', url=private_redis.url)

    @huey.task()
    def add(a, b):
        return a + b

    add(1, 2)
    private_redis.stop()
    start = time.monotonic()
    with pytest.raises(StorageUnavailable, match='127.0.0.1:%d' % private_redis.port):
        add(3, 4)
    assert time.monotonic() - start < 6


def test_enqueue_to_a_hung_redis_times_out(private_redis):
    """SIGSTOP makes Redis accept nothing but keep the socket open: the call
    must give up after socket_timeout, not wait forever."""
    huey = RedisHuey('hung', url=private_redis.url, socket_timeout=1)

    @huey.task()
    def add(a, b):
        return a + b

    add(1, 2)
    os.kill(private_redis.proc.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(StorageUnavailable):
            add(3, 4)
        assert time.monotonic() - start < 5
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)
    assert huey.pending_count() >= 1  # Redis is back and the first task is still there
