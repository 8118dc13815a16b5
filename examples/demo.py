"""The README's first command: the consumer on the SQLite beans example.

Starts ``huey_consumer.py main.huey -w 4`` in examples/beans_sqlite (on a
fresh database file), enqueues a batch of tasks, prints each result as it
comes back with the pid of the worker that ran it, then stops the consumer
with SIGTERM and reports its exit code. No Redis needed.
"""
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APP_DIR = os.path.join(HERE, 'beans_sqlite')
TASKS = int(os.environ.get('DEMO_TASKS', '40'))
WORKERS = int(os.environ.get('DEMO_WORKERS', '4'))


def start_consumer(db_path):
    env = dict(os.environ, BEANS_DB=db_path, PYTHONUNBUFFERED='1')
    cmd = [sys.executable, '-m', 'consumer', 'main.huey', '-w', str(WORKERS),
           '-d', '0.01', '-m', '0.2']
    print('$ cd examples/beans_sqlite && huey_consumer.py main.huey -w %d -d 0.01 -m 0.2' % WORKERS)
    return subprocess.Popen(cmd, cwd=APP_DIR, env=env, start_new_session=True)


def main():
    db_path = os.path.join(tempfile.mkdtemp(prefix='huey-demo-'), 'beans.db')
    os.environ['BEANS_DB'] = db_path
    sys.path.insert(0, APP_DIR)
    from tasks import count_beans  # the same module the consumer imports

    consumer = start_consumer(db_path)
    try:
        start = time.monotonic()
        results = count_beans.map(range(1, TASKS + 1))
        print('enqueued %d tasks' % TASKS)
        by_pid = collections.Counter()
        for text in results.as_completed(timeout=60):
            pid = int(text.split()[1])
            by_pid[pid] += 1
            print('  result: %s' % text)
        elapsed = time.monotonic() - start
        print('%d results in %.2fs (%.0f tasks/s, including worker start-up)'
              % (TASKS, elapsed, TASKS / elapsed))
        print('worker pids that ran them: %s' % ', '.join(
            '%d (%d tasks)' % item for item in sorted(by_pid.items())))
    finally:
        consumer.send_signal(signal.SIGTERM)
        code = consumer.wait(60)
    print('consumer stopped with SIGTERM, exit code %d' % code)
    return code


if __name__ == '__main__':
    sys.exit(main())
