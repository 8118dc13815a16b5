# config.py: the SQLite twin of examples/beans: no server needed.
import os

from huey import SqliteHuey

# One file shared by producer and consumer; both run from this directory.
huey = SqliteHuey('beans', filename=os.environ.get('BEANS_DB', 'beans.db'))
