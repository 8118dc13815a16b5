"""The bundled examples and the README's first command, run as documented."""
import os
import signal
import subprocess
import sys

import pytest

from tests.redis_server import PrivateRedis

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _consume_and_count(app_dir, env):
    """Start the consumer in ``app_dir``, count 5 beans through main.py."""
    consumer = subprocess.Popen([sys.executable, '-m', 'consumer', 'main.huey', '-w', '2',
                                 '-d', '0.01', '-m', '0.2'], cwd=app_dir, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    try:
        producer = subprocess.run([sys.executable, 'main.py'], cwd=app_dir, env=env,
                                  input='5\n', capture_output=True, text=True, timeout=60)
    finally:
        consumer.send_signal(signal.SIGTERM)
        try:
            code = consumer.wait(30)
        finally:
            if consumer.poll() is None:
                os.killpg(consumer.pid, signal.SIGKILL)
                consumer.wait(10)
            consumer.stderr.close()
    return producer, code


@pytest.mark.timeout(120)
def test_readme_first_command_demo():
    """examples/demo.py: consumer on the SQLite example, results printed with
    the worker pids, a clean stop."""
    env = dict(os.environ, DEMO_TASKS='20', DEMO_WORKERS='3')
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'examples', 'demo.py')],
                          env=env, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count('  result: worker ') == 20
    assert proc.stdout.count(' idle') >= 3  # it waited for every worker's title to say idle
    assert 'worker pids that ran them:' in proc.stdout
    assert 'consumer stopped with SIGTERM, exit code 0' in proc.stdout


@pytest.mark.timeout(120)
def test_beans_sqlite_example(tmp_path):
    env = dict(os.environ, BEANS_DB=str(tmp_path / 'beans.db'))
    producer, code = _consume_and_count(os.path.join(REPO, 'examples', 'beans_sqlite'), env)
    assert producer.returncode == 0, producer.stderr
    assert 'Enqueued job to count 5 beans' in producer.stdout
    assert 'counted 5 beans' in producer.stdout
    assert code == 0


@pytest.mark.timeout(120)
def test_beans_redis_example_the_seeds_layout():
    """examples/beans: the seed's config.py / tasks.py / main.py on Redis (a
    private server, since the example's queue names are fixed)."""
    server = PrivateRedis().start()
    try:
        env = dict(os.environ, REDIS_HOST='127.0.0.1', REDIS_PORT=str(server.port))
        producer, code = _consume_and_count(os.path.join(REPO, 'examples', 'beans'), env)
    finally:
        server.cleanup()
    assert producer.returncode == 0, producer.stderr
    assert 'counted 5 beans' in producer.stdout
    assert code == 0
