# config.py: the module holding the Huey object (the seed's layout, Python 3).
import os

from huey import Huey
from huey.backends.redis_backend import RedisBlockingQueue
from huey.backends.redis_backend import RedisDataStore

# REDIS_HOST/REDIS_PORT let the same example run against any Redis.
HOST = os.environ.get('REDIS_HOST', 'localhost')
PORT = int(os.environ.get('REDIS_PORT', '6379'))

queue = RedisBlockingQueue('beans-queue', host=HOST, port=PORT)
result_store = RedisDataStore('beans-results', host=HOST, port=PORT)

huey = Huey(queue, result_store=result_store)
