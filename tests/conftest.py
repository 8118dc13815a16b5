import os
import uuid

import pytest

from tests.redis_server import shared_redis_url


@pytest.fixture(scope='session')
def redis_url():
    url, server = shared_redis_url()
    # Subprocesses (consumers under test) find the same Redis through this.
    os.environ['HUEY_TEST_REDIS_URL'] = url
    yield url
    if server is not None:
        server.cleanup()


@pytest.fixture
def unique_name(request):
    """A queue name of this test's own: tests share one Redis."""
    return 'test-%s-%s' % (request.node.name[:40].replace('[', '-').rstrip(']'),
                           uuid.uuid4().hex[:8])


@pytest.fixture(params=['memory', 'sqlite', 'redis'])
def backend(request):
    return request.param


@pytest.fixture
def make_huey(backend, request, tmp_path, unique_name):
    """Builds Huey objects on this test's backend; flushes them after."""
    from huey import MemoryHuey, RedisHuey, SqliteHuey
    made = []

    def make(name=unique_name, **kwargs):
        if backend == 'memory':
            h = MemoryHuey(name, **kwargs)
        elif backend == 'sqlite':
            h = SqliteHuey(name, filename=str(tmp_path / 'huey.db'), **kwargs)
        else:
            h = RedisHuey(name, url=request.getfixturevalue('redis_url'), **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.immediate = False
        h.flush()
        h.close()


@pytest.fixture
def huey(make_huey):
    return make_huey()
