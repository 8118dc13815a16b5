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

import psutil

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


def wait_for_idle_workers(supervisor_pid, timeout=30.0):
    """Until every worker's process title (what `ps` shows) says idle, so the
    batch is shared among them rather than taken by the first one up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            titles = [' '.join(filter(None, c.cmdline()))  # setproctitle pads with ''
                      for c in psutil.Process(supervisor_pid).children()]
        except psutil.Error:
            titles = []
        if len([t for t in titles if t.endswith(' idle')]) == WORKERS:
            print('workers up: %s' % '; '.join(sorted(titles)))
            return
        time.sleep(0.05)
    raise SystemExit('the consumer did not start %d workers within %ss' % (WORKERS, timeout))


def main():
    db_path = os.path.join(tempfile.mkdtemp(prefix='huey-demo-'), 'beans.db')
    os.environ['BEANS_DB'] = db_path
    sys.path.insert(0, APP_DIR)
    from tasks import count_beans  # the same module the consumer imports

    consumer = start_consumer(db_path)
    try:
        wait_for_idle_workers(consumer.pid)
        start = time.monotonic()
        results = count_beans.map(range(1, TASKS + 1))
        print('enqueued %d tasks' % TASKS)
        by_pid = collections.Counter()
        for text in results.as_completed(timeout=60):
            pid = int(text.split()[1])
            by_pid[pid] += 1
            print('  result: %s' % text)
        elapsed = time.monotonic() - start
        print('%d results in %.2fs (%.0f tasks/s)' % (TASKS, elapsed, TASKS / elapsed))
        print('worker pids that ran them: %s' % ', '.join(
            '%d (%d tasks)' % item for item in sorted(by_pid.items())))
    finally:
        consumer.send_signal(signal.SIGTERM)
        code = consumer.wait(60)
    print('consumer stopped with SIGTERM, exit code %d' % code)
    return code


if __name__ == '__main__':
    sys.exit(main())
