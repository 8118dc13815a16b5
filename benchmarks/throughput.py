"""Throughput of the real consumer: tasks per second, end to end.

Enqueues N no-op tasks (one round trip, ``.map``), starts the consumer
(``python -m consumer app.huey -w W``) and times from its start until the
last result is stored; prints one line per backend and worker count.

    python benchmarks/throughput.py [--tasks 5000] [--workers 2 4] [--backend redis sqlite]

Redis: REDIS_URL, else 127.0.0.1:6379 when it answers, else a private
redis-server. Figures vary with the machine: compare runs made together.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tests.redis_server import shared_redis_url  # noqa: E402

APP = textwrap.dedent('''\
    import os
    from huey import RedisHuey, SqliteHuey
    if os.environ['BENCH_BACKEND'] == 'redis':
        huey = RedisHuey(os.environ['BENCH_NAME'], url=os.environ['BENCH_REDIS_URL'])
    else:
        huey = SqliteHuey(os.environ['BENCH_NAME'], filename=os.environ['BENCH_SQLITE'])

    @huey.task()
    def noop(i):
        return i
''')


def run(backend, workers, tasks, redis_url, folder):
    name = 'bench-%s' % uuid.uuid4().hex[:8]
    env = dict(os.environ, BENCH_BACKEND=backend, BENCH_NAME=name,
               BENCH_REDIS_URL=redis_url or '', BENCH_SQLITE=os.path.join(folder, name + '.db'))
    os.environ.update(env)
    sys.path.insert(0, folder)
    sys.modules.pop('app', None)
    import app
    app.huey.flush()
    results = app.noop.map(range(tasks))
    args = [sys.executable, '-m', 'consumer', 'app.huey', '-w', str(workers), '-q', '-n']
    if backend == 'sqlite':
        args += ['-d', '0.005', '-m', '0.05']
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=folder, env=env, start_new_session=True)
    try:
        last = results[-1]
        last.get(blocking=True, timeout=600, max_delay=0.05)
        while app.huey.pending_count() or app.huey.storage.reserved_size():
            time.sleep(0.01)
        elapsed = time.monotonic() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        app.huey.flush()
        app.huey.close()
        sys.path.remove(folder)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tasks', type=int, default=5000)
    parser.add_argument('--workers', type=int, nargs='+', default=[2, 4])
    parser.add_argument('--backend', nargs='+', default=['redis', 'sqlite'])
    opts = parser.parse_args()
    redis_url, server = shared_redis_url() if 'redis' in opts.backend else (None, None)
    folder = tempfile.mkdtemp(prefix='huey-bench-')
    with open(os.path.join(folder, 'app.py'), 'w') as f:
        f.write(APP)
    print('%-7s %7s %7s %9s %10s' % ('backend', 'workers', 'tasks', 'seconds', 'tasks/s'))
    try:
        for backend in opts.backend:
            for workers in opts.workers:
                took = run(backend, workers, opts.tasks, redis_url, folder)
                print('%-7s %7d %7d %9.2f %10.0f' % (backend, workers, opts.tasks, took,
                                                     opts.tasks / took))
    finally:
        if server is not None:
            server.cleanup()


if __name__ == '__main__':
    main()
