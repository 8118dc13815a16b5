# main.py: imports the Huey object AND the tasks, so `huey_consumer.py main.huey`
# sees every task.
from config import huey  # noqa: F401  (the consumer is pointed at main.huey)
from tasks import count_beans


if __name__ == '__main__':
    beans = input('How many beans? ')
    result = count_beans(int(beans))
    print('Enqueued job to count %s beans' % beans)
    print(result.get(blocking=True, timeout=30))
