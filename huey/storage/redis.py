"""Storage in Redis (6.2 or newer), shared by every process that reaches it.

Every key of a storage named ``<name>`` starts with ``huey.<name>.`` and the
rest of the key never contains a dot, so two names can never share a key
(``huey.a.kv:x`` could only belong to the name ``a``). The keys:

``seq``
    String counter the tokens come from (``'%016d'``, so string order is
    arrival order); dead letter ids come from it too.
``wake``
    List of wake items for blocked reservers (see "Blocking" below).
``pending``
    Sorted set of the tokens waiting in the queue, scored ``-priority``.
    Equal scores sort by member, that is by token: FIFO within a priority.
``data``, ``priority``, ``deliveries``
    Hashes token -> payload bytes / priority / times reserved, for every
    pending and reserved message.
``reserved``
    Sorted set of the reserved tokens, scored by lease deadline (the
    ``now + lease`` the caller passed; time never comes from Redis).
``owner``
    Hash token -> owner of the reservation.
``owned``
    Sorted set, all scores 0, of ``owner + "\\0" + token``: one owner's
    tokens are one lexical range, so :meth:`RedisStorage.release_owner` and
    :meth:`RedisStorage.renew` read them without scanning.
``schedule``
    Sorted set of the scheduled tokens, scored by eta.
``sched:data``, ``sched:priority``
    Hashes token -> payload / priority of the scheduled messages (separate
    from the queue's, so flushing one leaves the other whole).
``dead``
    Hash id -> dead letter record, ``b"priority\\ntime\\nN\\n" + reason
    (N bytes) + data``; the time is kept as the text of the float sent.
``kvkeys``
    Set of the names of this storage's key/value keys (live or expired by
    Redis), so counting and flushing them never scans the keyspace.
``kv:<key>``
    One string key per key/value entry, so ``put_if_empty`` and
    ``enqueue_once`` can let Redis expire them (``SET NX PX``). In ``<key>``
    ``%`` is written ``%25`` and ``.`` is written ``%2E``.

Every verb that reads and then writes is one Lua script (``huey/storage/lua``,
``common.lua`` prepended to each), so it is atomic against other clients.

Blocking: :meth:`RedisStorage.reserve` runs its script; when the queue is
empty the script deletes the wake list and, if the caller gave a timeout, the
client waits with ``BLPOP wake`` and tries again. Every script that makes
messages pending pushes one wake item per message in the same script, so a
message that arrives after the empty check always leaves an item for the
waiter: no wakeup is lost and nobody polls. The reserve script keeps at most
one item per pending message, so the list stays short.
"""
from __future__ import annotations

import math
import os
import re
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from huey.exceptions import ConfigurationError, StorageError, StorageUnavailable
from huey.storage.base import DeadLetter, Reservation, Storage

_LUA_DIR = Path(__file__).resolve().with_name('lua')

# Fixed key suffixes, in the order of KEYS in every script (see common.lua).
_KEYS = ('seq', 'wake', 'pending', 'data', 'priority', 'deliveries', 'reserved',
         'owner', 'owned', 'schedule', 'sched:data', 'sched:priority', 'dead',
         'kvkeys')
_WAKE, _PENDING, _RESERVED, _SCHEDULE, _DEAD, _KVKEYS = 1, 2, 6, 9, 12, 13
_QUEUE_KEYS = ('wake', 'pending', 'data', 'priority', 'deliveries', 'reserved',
               'owner', 'owned')
_SCHEDULE_KEYS = ('schedule', 'sched:data', 'sched:priority')

_SCRIPTS = ('enqueue', 'enqueue_once', 'reserve', 'ack', 'requeue', 'release_owner',
            'renew', 'reclaim_expired', 'queue_items', 'schedule_add',
            'schedule_move_due', 'schedule_items', 'dead_letter', 'dead_letter_add',
            'requeue_dead_letters', 'result_count', 'flush_results', 'flush_all')


@lru_cache(maxsize=None)
def _script_sources() -> Dict[str, str]:
    """Each verb's Lua source with the shared prelude in front."""
    common = (_LUA_DIR / 'common.lua').read_text(encoding='utf-8')
    return {name: common + '\n' + (_LUA_DIR / (name + '.lua')).read_text(encoding='utf-8')
            for name in _SCRIPTS}


def _finite(value: float, what: str) -> float:
    """Refuse NaN and infinities before a script sees them: Redis rejects
    them half-way through a script, after its first writes have happened."""
    if not math.isfinite(value):
        raise ValueError('%s must be a finite number of seconds (got %r)' % (what, value))
    return value


def _milliseconds(ttl: Optional[float]) -> int:
    """A ttl in seconds as PX milliseconds; 0 means no expiry."""
    if not ttl:
        return 0
    return max(1, int(math.ceil(ttl * 1000)))


class RedisStorage(Storage):
    """Storage for queue ``name`` in Redis.

    Give one of: ``client`` (a ``redis.Redis``), ``connection_pool``,
    ``url`` (``redis://[:password@]host:port/db``), or ``host``/``port``/
    ``db``/``password``. ``socket_timeout`` and ``connection_kwargs`` go to
    the client this storage builds (not to one you pass in).

    ``socket_timeout`` (default 10 s) and ``socket_connect_timeout`` (5 s)
    bound every call, so an unreachable or hung server raises
    :class:`StorageUnavailable` instead of hanging. To wait out short outages
    instead, pass ``retry=redis.retry.Retry(backoff, retries)``.

    Unless you pass ``retry=``, the client makes no retries of its own: a
    retried script may already have run (a duplicate enqueue, a reservation
    nobody holds), and callers already retry :class:`StorageUnavailable`.
    """

    blocking = True

    def __init__(self, name: str, url: Optional[str] = None, host: str = '127.0.0.1',
                 port: int = 6379, db: int = 0, password: Optional[str] = None,
                 connection_pool: Optional[redis.ConnectionPool] = None,
                 client: Optional[redis.Redis] = None,
                 socket_timeout: Optional[float] = 10.0, **connection_kwargs):
        super().__init__(name)
        self.prefix = 'huey.%s.' % name
        self._keys = [self.prefix + suffix for suffix in _KEYS]
        self._user_client = client
        self._user_pool = connection_pool
        self._url = url
        connection_kwargs.setdefault('retry', Retry(NoBackoff(), 0))
        # Bounded by default: during an outage a producer's call raises
        # StorageUnavailable within seconds instead of hanging on a dead socket.
        connection_kwargs.setdefault('socket_connect_timeout', 5.0)
        self._client_kwargs = dict(host=host, port=port, db=db, password=password,
                                   socket_timeout=socket_timeout, **connection_kwargs)
        self._lock = threading.Lock()
        self._client: Optional[redis.Redis] = None
        self._scripts: Dict[str, object] = {}
        self._pid = os.getpid()
        # Building a client opens no socket; doing it now finds a bad url or a
        # decoding client at once, and tells describe() where Redis is.
        client = self._build()
        self._where = self._location(client)
        self._adopt(client)

    # -- connections ---------------------------------------------------
    def _build(self) -> redis.Redis:
        if self._user_client is not None:
            client = self._user_client
        elif self._user_pool is not None:
            client = redis.Redis(connection_pool=self._user_pool)
        elif self._url:
            # The url names host, port and db; password and socket_timeout
            # override it only when given.
            kwargs = {key: value for key, value in self._client_kwargs.items()
                      if key not in ('host', 'port', 'db')
                      and not (key in ('password', 'socket_timeout') and value is None)}
            client = redis.Redis.from_url(self._url, **kwargs)
        else:
            client = redis.Redis(**self._client_kwargs)
        if client.connection_pool.connection_kwargs.get('decode_responses'):
            raise ConfigurationError('RedisStorage needs a client with decode_responses=False: '
                                     'payloads are binary')
        return client

    @staticmethod
    def _location(client: redis.Redis) -> str:
        """Where the client's Redis is, without the password."""
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        if kwargs.get('path'):
            return 'unix://%s?db=%s' % (kwargs['path'], kwargs.get('db', 0))
        scheme = 'rediss' if issubclass(pool.connection_class, redis.SSLConnection) else 'redis'
        return '%s://%s:%s/%s' % (scheme, kwargs.get('host', 'localhost'),
                                  kwargs.get('port', 6379), kwargs.get('db', 0))

    def _redis(self) -> redis.Redis:
        """This process's client, built on first use and again after a fork."""
        client, pid = self._client, os.getpid()
        if client is not None and self._pid == pid:
            return client
        if self._pid != pid:
            # Forked: the parent's lock may have been copied held, and the
            # parent's sockets are the parent's; start over without them.
            # (A pool passed in resets itself in the child: redis-py checks
            # the pid on every checkout.)
            self._lock = threading.Lock()
            self._client, self._pid = None, pid
        with self._lock:
            if self._client is None:
                self._adopt(self._build())
            return self._client

    def _adopt(self, client: redis.Redis) -> None:
        # register_script only hashes the source; redis-py loads it into Redis
        # the first time EVALSHA answers NOSCRIPT.
        self._scripts = {name: client.register_script(source)
                         for name, source in _script_sources().items()}
        self._client = client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        # In a forked child the sockets belong to the parent: leave them.
        if client is not None and self._pid == os.getpid():
            with self._errors():
                client.connection_pool.disconnect()

    def describe(self) -> str:
        return '%s %r at %s' % (type(self).__name__, self.name, self._where)

    def describe_server(self) -> str:
        # The loopback spellings name one server: localhost:6379 and
        # 127.0.0.1:6379 must compare equal when Huey checks a schedule.
        where = self._where
        for alias in ('://localhost:', '://[::1]:', '://::1:'):
            where = where.replace(alias, '://127.0.0.1:')
        return 'redis %s' % where

    @contextmanager
    def _errors(self):
        """Turn redis-py errors into huey's, keeping the original as cause."""
        try:
            yield
        except redis.exceptions.AuthenticationError as exc:
            raise StorageError('Redis at %s refused to authenticate (%s): check the password '
                               'given to RedisStorage %r' % (self._where, exc, self.name)) from exc
        except redis.exceptions.TimeoutError as exc:
            # No reply is not "not done": a hung or slow server may have run
            # the command. Say so, so a retrying caller knows the risk.
            raise StorageUnavailable(
                'Redis at %s did not answer RedisStorage %r in time (%s): it may be hung '
                'or overloaded; a write sent just then may still have taken effect, so '
                'retrying an enqueue can queue it twice' % (self._where, self.name, exc)) from exc
        except redis.exceptions.ConnectionError as exc:
            raise StorageUnavailable(
                'Redis at %s is unavailable for RedisStorage %r (%s): is redis-server '
                'running? check the url/host/port' % (self._where, self.name, exc)) from exc
        except redis.exceptions.RedisError as exc:
            raise StorageError('Redis at %s failed for RedisStorage %r: %s'
                               % (self._where, self.name, exc)) from exc

    def _run(self, script: str, *args, extra_keys: Sequence[str] = ()):
        """Run one of the Lua scripts with every fixed key (plus extra_keys)."""
        client = self._redis()
        with self._errors():
            return self._scripts[script](keys=self._keys + list(extra_keys), args=args,
                                         client=client)

    def _call(self, method: str, *args, **kwargs):
        """One plain command, e.g. ``self._call('zcard', key)``."""
        client = self._redis()
        with self._errors():
            return getattr(client, method)(*args, **kwargs)

    def _transaction(self, queue_commands) -> list:
        """Run the commands ``queue_commands(pipe)`` adds in one MULTI/EXEC."""
        client = self._redis()
        with self._errors(), client.pipeline(transaction=True) as pipe:
            queue_commands(pipe)
            return pipe.execute()

    def _kv_key(self, key: str) -> str:
        # Escaping keeps the part after the prefix free of dots (see above).
        return self.prefix + 'kv:' + key.replace('%', '%25').replace('.', '%2E')

    # -- queue ---------------------------------------------------------
    def enqueue_many(self, items: Sequence[Tuple[bytes, int]]) -> List[str]:
        args = []
        for data, priority in items:
            args.extend((bytes(data), int(priority or 0)))
        if not args:
            return []
        return [token.decode('ascii') for token in self._run('enqueue', *args)]

    def enqueue_once(self, key: str, ttl: float, data: bytes,
                     priority: int = 0) -> Optional[str]:
        token = self._run('enqueue_once', _milliseconds(ttl), bytes(data), int(priority or 0),
                          extra_keys=[self._kv_key(key)])
        return token.decode('ascii') if token else None

    def reserve(self, owner: str, lease: float, now: float,
                timeout: float = 0) -> Optional[Reservation]:
        give_up = time.monotonic() + max(timeout or 0, 0)
        while True:
            found = self._run('reserve', owner, _finite(float(now) + float(lease), 'lease'))
            if found:
                token, data, deliveries = found
                return Reservation(token.decode('ascii'), data, int(deliveries))
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                return None
            self._wait_for_wake(remaining)

    def _wait_for_wake(self, seconds: float) -> None:
        """Block until a wake item arrives or ``seconds`` pass (maybe fewer)."""
        client = self._redis()
        # The socket read must outlast BLPOP, or redis-py gives up on a healthy
        # connection (and a wake item could be popped for nobody): wait at most
        # half the socket timeout per BLPOP; reserve() loops for the rest.
        socket_timeout = client.connection_pool.connection_kwargs.get('socket_timeout')
        if socket_timeout:
            seconds = min(seconds, socket_timeout / 2.0)
        # BLPOP counts whole milliseconds and takes 0 as "forever".
        seconds = max(round(seconds, 3), 0.001)
        with self._errors():
            client.blpop([self._keys[_WAKE]], timeout=seconds)

    def ack(self, token: str, owner: Optional[str] = None) -> bool:
        return self._run('ack', token, owner or '') == 1

    def requeue(self, token: str, count_delivery: bool = True,
                owner: Optional[str] = None) -> bool:
        return self._run('requeue', token, 1 if count_delivery else 0, owner or '') == 1

    def release_owner(self, owner: str, count_delivery: bool = True) -> int:
        return self._run('release_owner', owner, 1 if count_delivery else 0)

    def renew(self, owner: str, lease: float, now: float) -> int:
        return self._run('renew', owner, _finite(float(now) + float(lease), 'lease'))

    def reclaim_expired(self, now: float) -> int:
        return self._run('reclaim_expired', float(now))

    def queue_size(self) -> int:
        return self._call('zcard', self._keys[_PENDING])

    def reserved_size(self) -> int:
        return self._call('zcard', self._keys[_RESERVED])

    def queue_items(self, limit: Optional[int] = None) -> List[bytes]:
        if limit is not None and limit <= 0:
            return []
        return self._run('queue_items', -1 if limit is None else limit - 1)

    def flush_queue(self) -> None:
        # One DEL: atomic, and scheduled messages live in other keys.
        self._call('delete', *[self.prefix + suffix for suffix in _QUEUE_KEYS])

    # -- schedule ------------------------------------------------------
    def schedule_add(self, data: bytes, eta: float, priority: int = 0) -> str:
        return self._run('schedule_add', bytes(data), _finite(float(eta), 'eta'),
                         int(priority or 0)).decode('ascii')

    def schedule_move_due(self, now: float, limit: int = 1000) -> int:
        if limit <= 0:
            return 0
        return self._run('schedule_move_due', float(now), int(limit))

    def schedule_size(self) -> int:
        return self._call('zcard', self._keys[_SCHEDULE])

    def schedule_items(self, limit: Optional[int] = None) -> List[Tuple[float, bytes]]:
        if limit is not None and limit <= 0:
            return []
        flat = self._run('schedule_items', -1 if limit is None else limit - 1)
        return [(float(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]

    def flush_schedule(self) -> None:
        self._call('delete', *[self.prefix + suffix for suffix in _SCHEDULE_KEYS])

    # -- key/value -----------------------------------------------------
    def put_data(self, key: str, value: bytes) -> None:
        name = self._kv_key(key)
        self._transaction(lambda pipe: (pipe.set(name, bytes(value)),
                                        pipe.sadd(self._keys[_KVKEYS], name)))

    def peek_data(self, key: str) -> Optional[bytes]:
        return self._call('get', self._kv_key(key))

    def peek_many(self, keys: Sequence[str]) -> List[Optional[bytes]]:
        return self._call('mget', [self._kv_key(key) for key in keys]) if keys else []

    def pop_data(self, key: str) -> Optional[bytes]:
        name = self._kv_key(key)
        return self._transaction(lambda pipe: (pipe.getdel(name),
                                               pipe.srem(self._keys[_KVKEYS], name)))[0]

    def delete_data(self, key: str) -> bool:
        name = self._kv_key(key)
        return self._transaction(lambda pipe: (pipe.delete(name),
                                               pipe.srem(self._keys[_KVKEYS], name)))[0] > 0

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        name, px = self._kv_key(key), _milliseconds(ttl) or None
        if px:
            # Not indexed in kvkeys: Redis expires it, and an index entry
            # would outlive it (one per periodic slot, forever).
            return bool(self._call('set', name, bytes(value), nx=True, px=px))
        return bool(self._transaction(lambda pipe: (
            pipe.set(name, bytes(value), nx=True),
            pipe.sadd(self._keys[_KVKEYS], name)))[0])

    def has_data_for_key(self, key: str) -> bool:
        return self._call('exists', self._kv_key(key)) == 1

    def result_count(self) -> int:
        return self._run('result_count')

    def flush_results(self) -> None:
        self._run('flush_results')
        self._delete_unindexed()

    def _delete_unindexed(self) -> None:
        """Keys with a TTL are not in kvkeys; a flush finds them by prefix
        (SCAN: flushing is rare, and never on a hot path)."""
        client = self._redis()
        with self._errors():
            start = len((self.prefix + 'kv:').encode())
            pattern = re.sub(r'([*?\[\]\\])', r'\\\1', self.prefix) + 'kv:*'
            # A key of ours has no dot after "kv:" (dots are escaped there);
            # a longer name such as "<name>.kv:x" owns keys that match too.
            names = [n for n in client.scan_iter(match=pattern, count=1000)
                     if b'.' not in n[start:]]
            if names:
                client.delete(*names)

    # -- dead letters --------------------------------------------------
    def dead_letter(self, token: str, reason: str, now: float,
                    owner: Optional[str] = None) -> Optional[str]:
        letter_id = self._run('dead_letter', token, reason, float(now), owner or '')
        return letter_id.decode('ascii') if letter_id else None

    def dead_letter_add(self, data: bytes, reason: str, now: float, priority: int = 0) -> str:
        return self._run('dead_letter_add', bytes(data), reason, float(now),
                         int(priority or 0)).decode('ascii')

    def dead_letters(self) -> List[DeadLetter]:
        records = self._call('hgetall', self._keys[_DEAD])
        # Ids are tokens: sorting them puts the oldest first.
        return [self._parse_dead(letter_id.decode('ascii'), records[letter_id])
                for letter_id in sorted(records)]

    @staticmethod
    def _parse_dead(letter_id: str, record: bytes) -> DeadLetter:
        priority, when, length, rest = record.split(b'\n', 3)
        length = int(length)
        return DeadLetter(letter_id, rest[length:], rest[:length].decode('utf-8', 'replace'),
                          float(when), int(priority))

    def requeue_dead_letters(self, ids: Optional[Iterable[str]] = None) -> int:
        if ids is None:
            return self._run('requeue_dead_letters', 'all')
        ids = list(ids)
        if not ids:
            return 0
        return self._run('requeue_dead_letters', 'ids', *ids)

    def purge_dead_letters(self) -> int:
        dead = self._keys[_DEAD]
        return self._transaction(lambda pipe: (pipe.hlen(dead), pipe.delete(dead)))[0]

    # -- events --------------------------------------------------------
    def publish(self, channel: str, message: str) -> int:
        """PUBLISH ``message`` on ``channel`` (as given, no prefix: the
        events emitter's subscribers name it); how many subscribers got it."""
        return self._call('publish', channel, message)

    # -- lifecycle -----------------------------------------------------
    def flush_all(self) -> None:
        self._run('flush_all')
        self._delete_unindexed()
