"""Time conversions. Stored times are UTC epoch seconds (floats): they mean
the same instant to every process, whatever its time zone."""
from __future__ import annotations

import datetime
import time
from typing import Optional, Union

Delay = Union[int, float, datetime.timedelta]
When = Union[int, float, datetime.datetime, datetime.timedelta]


def to_timestamp(dt: datetime.datetime) -> float:
    """Naive datetimes are local time (as ``datetime.now()`` gives them);
    aware ones carry their own zone. Both become one UTC epoch instant."""
    return dt.timestamp()


def seconds(value: Delay) -> float:
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('expected seconds or a timedelta, got %r' % (value,))
    return float(value)


def resolve_eta(eta: Optional[datetime.datetime] = None, delay: Optional[Delay] = None,
                now: Optional[float] = None) -> Optional[float]:
    if eta is not None and delay is not None:
        raise ValueError('give eta= or delay=, not both')
    if eta is not None:
        if not isinstance(eta, datetime.datetime):
            raise TypeError('eta must be a datetime, got %r' % (eta,))
        return to_timestamp(eta)
    if delay is not None:
        return (time.time() if now is None else now) + seconds(delay)
    return None


def instant(value: When, what: str, now: Optional[float] = None) -> float:
    """An absolute moment as epoch seconds: a datetime, epoch seconds, or a
    timedelta counted from now. Anything else is a TypeError naming ``what``,
    raised where the value is given, not later in a worker."""
    if isinstance(value, datetime.datetime):
        return to_timestamp(value)
    if isinstance(value, datetime.timedelta):
        return (time.time() if now is None else now) + value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('%s must be a datetime, epoch seconds or a timedelta, got %r'
                        % (what, value))
    return float(value)


def resolve_expires(expires: Optional[When], now: Optional[float] = None) -> Optional[float]:
    """Seconds or a timedelta are relative to now; a datetime is absolute."""
    if expires is None:
        return None
    if isinstance(expires, datetime.datetime):
        return to_timestamp(expires)
    return (time.time() if now is None else now) + seconds(expires)


def utc_datetime(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
