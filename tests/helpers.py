"""Small helpers the library tests share."""
import time


def run_pending(huey, owner='test-worker', limit=1000, max_deliveries=None):
    """Process queued messages in this process, as one worker would, until
    the queue is empty; return the outcomes."""
    outcomes = []
    for _ in range(limit):
        reservation = huey.reserve(owner, lease=60)
        if reservation is None:
            return outcomes
        outcomes.append(huey.process(reservation, max_deliveries))
    raise AssertionError('queue did not drain in %d messages' % limit)


def wait_for(condition, timeout=10.0, interval=0.02, message='condition'):
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %ss waiting for %s' % (timeout, message))
        time.sleep(interval)
