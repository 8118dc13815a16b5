"""The consumer's configuration: each option declared once.

:data:`OPTIONS` drives the command line (flags, defaults, help text), the
frozen :class:`Config` the CLI builds, and the option table in the docs.
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, fields
from typing import Any, List, Optional


@dataclass(frozen=True)
class Option:
    dest: str
    flags: tuple
    default: Any
    help: str
    type: Any = None
    action: Optional[str] = None
    group: str = 'workers'


def default_workers() -> int:
    """One worker per core, at least 2: tasks often wait on I/O, and two
    workers keep the queue moving while one runs a long task."""
    return max(2, os.cpu_count() or 1)


OPTIONS: List[Option] = [
    Option('workers', ('-w', '--workers'), None, type=int,
           help='number of worker processes (default: one per CPU core, at least 2)'),
    Option('delay', ('-d', '--delay'), 0.1, type=float, group='polling',
           help='SQLite: first pause between polls of an empty queue, in seconds (default 0.1)'),
    Option('max_delay', ('-m', '--max-delay'), 10.0, type=float, group='polling',
           help='SQLite: longest pause between polls, in seconds (default 10)'),
    Option('backoff', ('-b', '--backoff'), 1.15, type=float, group='polling',
           help='SQLite: factor the pause grows by after each empty poll (default 1.15)'),
    Option('scheduler_interval', ('-s', '--scheduler-interval'), 1.0, type=float,
           group='scheduler',
           help='how often the storage thread moves due delayed tasks into the queue '
                'and returns reservations whose lease ran out, in seconds (default 1; '
                'leases are renewed at least every lease/4 whatever this says)'),
    Option('periodic', ('-n', '--no-periodic'), True, action='store_false', group='scheduler',
           help='do not enqueue periodic tasks'),
    Option('utc_given', ('-u', '--utc'), False, action='store_true', group='scheduler',
           help='match periodic tasks against UTC (the default)'),
    Option('localtime', ('--localtime',), False, action='store_true', group='scheduler',
           help='match periodic tasks against the local time zone instead of UTC'),
    Option('graceful_timeout', ('--graceful-timeout',), 30.0, type=float, group='stopping',
           help='on SIGTERM/SIGINT, seconds to let running tasks finish before '
                'stopping them and returning their messages (default 30)'),
    Option('lease', ('--lease',), 60.0, type=float, group='delivery',
           help='seconds a reserved message stays with its worker without a renewal; '
                'renewed every lease/3 while the task runs. After a consumer dies '
                'unseen, its messages return after this long (at least 1; default 60)'),
    Option('max_deliveries', ('--max-deliveries',), 5, type=int, group='delivery',
           help='a message delivered this many times without finishing (its worker '
                'died each time) goes to the dead letters (default 5)'),
    Option('worker_type', ('-k', '--worker-type'), 'process', group='workers',
           help="kind of worker: 'process' only (accepted so huey command lines work; "
                "threads and greenlets are not offered: a stuck or crashing task must "
                "not take its neighbours down)"),
    Option('flush_locks', ('-f', '--flush-locks'), False, action='store_true', group='workers',
           help='at start, release every lock the application declared with '
                'lock_task() (left held by a consumer that died whole)'),
    Option('max_boot_failures', ('--max-boot-failures',), 5, type=int, group='workers',
           help='consecutive worker start-up failures after which the consumer '
                'stops with exit code 3 (default 5)'),
    Option('logfile', ('-l', '--logfile'), None, group='logging',
           help='log to this file (rotated at 10 MB, 5 kept) instead of stderr'),
    Option('verbose', ('-v', '--verbose'), False, action='store_true', group='logging',
           help='log debug detail, including every task start and finish'),
    Option('quiet', ('-q', '--quiet'), False, action='store_true', group='logging',
           help='log only warnings and errors'),
]


@dataclass(frozen=True)
class Config:
    app_path: str
    workers: int
    delay: float = 0.1
    max_delay: float = 10.0
    backoff: float = 1.15
    scheduler_interval: float = 1.0
    periodic: bool = True
    localtime: bool = False
    graceful_timeout: float = 30.0
    lease: float = 60.0
    max_deliveries: int = 5
    max_boot_failures: int = 5
    logfile: Optional[str] = None
    verbose: bool = False
    quiet: bool = False
    utc_given: bool = False
    worker_type: str = 'process'
    flush_locks: bool = False

    @property
    def use_utc(self) -> bool:
        return not self.localtime

    def validate(self) -> None:
        """Raise ValueError naming the option and the fix."""
        if self.worker_type != 'process':
            raise ValueError("-k/--worker-type %r is not offered: workers are processes "
                             "here; drop -k or use -k process" % self.worker_type)
        if self.workers < 1:
            raise ValueError('-w/--workers must be 1 or more (got %d)' % self.workers)
        for opt in OPTIONS:
            value = getattr(self, opt.dest)
            if opt.type is float and not math.isfinite(value):
                # NaN passes every comparison below and would reach storage.
                raise ValueError('%s must be a finite number of seconds (got %r)'
                                 % ('/'.join(opt.flags), value))
        positive = ('delay', 'max_delay', 'scheduler_interval', 'lease')
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError('--%s must be more than 0 (got %r)'
                                 % (name.replace('_', '-'), getattr(self, name)))
        if self.lease < 1:
            # Renewals tick every lease/4: shorter leases would busy the
            # storage thread and expire under any hiccup.
            raise ValueError('--lease must be at least 1 second (got %r); the default '
                             'is 60' % self.lease)
        if self.backoff < 1:
            raise ValueError('-b/--backoff must be 1 or more (got %r)' % self.backoff)
        if self.graceful_timeout < 0:
            raise ValueError('--graceful-timeout must be 0 or more')
        if self.max_deliveries < 1 or self.max_boot_failures < 1:
            raise ValueError('--max-deliveries and --max-boot-failures must be 1 or more')
        if self.verbose and self.quiet:
            raise ValueError('choose -v/--verbose or -q/--quiet, not both')
        if self.localtime and self.utc_given:
            raise ValueError('choose -u/--utc or --localtime, not both')
        if self.logfile:
            check_logfile(self.logfile)


def check_logfile(path: str) -> None:
    """A log file we cannot write is a usage error, found before starting."""
    if os.path.isdir(path):
        raise ValueError('-l/--logfile %s is a directory: give a file path' % path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError('-l/--logfile %s: folder %s does not exist; create it first'
                         % (path, folder))
    target = path if os.path.exists(path) else folder
    if not os.access(target, os.W_OK):
        raise ValueError('-l/--logfile %s is not writable by this user' % path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='huey_consumer.py',
        description='Run the huey consumer: a supervisor that forks worker processes '
                    'and runs the scheduler. Signals: TERM/INT stop gracefully '
                    '(a second one stops at once), HUP restarts the workers.')
    parser.add_argument('app_path', metavar='module.huey',
                        help='import path of your Huey object, e.g. main.huey '
                             '(run from the directory that holds main.py)')
    groups = {}
    for opt in OPTIONS:
        group = groups.get(opt.group) or groups.setdefault(
            opt.group, parser.add_argument_group(opt.group))
        kwargs = {'dest': opt.dest, 'default': opt.default, 'help': opt.help}
        if opt.action:
            kwargs['action'] = opt.action
        else:
            kwargs['type'] = opt.type or str
        group.add_argument(*opt.flags, **kwargs)
    return parser


def config_from_args(argv=None) -> Config:
    args = build_parser().parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in fields(Config) if hasattr(args, f.name)}
    if values.get('workers') is None:
        values['workers'] = default_workers()
    config = Config(**values)
    config.validate()
    return config
