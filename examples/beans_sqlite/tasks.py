# tasks.py: the decorated functions; imports the huey object from config.
import os

from config import huey


@huey.task()
def count_beans(num):
    print('Counted %s beans' % num)
    return 'worker %d counted %s beans' % (os.getpid(), num)
