"""Cron-style schedules for periodic tasks.

``crontab(...)`` builds a schedule object. Calling it with a datetime answers
"should a periodic task run in this minute?"::

    every_five = crontab(minute='*/5')
    every_five(datetime.datetime(2024, 1, 1, 9, 35, 12))   # True
    every_five.next_after(datetime.datetime(2024, 1, 1, 9, 35))
    # datetime.datetime(2024, 1, 1, 9, 40)

Only the minute matters: seconds and microseconds are ignored. The object
never reads the clock, so a scheduler (or a test) can drive it with any time.
Matching uses the datetime's own wall-clock fields; time zones are the
caller's business.

Fields and their ranges
-----------------------
=============  =======  ===========================================
field          range    notes
=============  =======  ===========================================
minute         0-59
hour           0-23
day            1-31     day of the month
month          1-12
day_of_week    0-7      0 and 7 are both Sunday, Monday=1 ... Saturday=6
=============  =======  ===========================================

Syntax of a field
-----------------
A field is an ``int`` or a string of one or more comma-separated parts:

``*``       every value in the field's range
``*/n``     every n-th value, starting at the field's minimum
``m``       exactly m
``m-n``     m through n inclusive (ranges do not wrap, so m must be <= n)
``m-n/s``   every s-th value from m through n
``m/s``     every s-th value from m through the field's maximum

For example ``minute='0,30'``, ``hour='9-17'``, ``day_of_week='1-5'``,
``minute='5/15'`` (5, 20, 35, 50). For ``day_of_week`` the maximum is 7, so
``'1/3'`` means Monday, Thursday and Sunday.

Day of month versus day of week
-------------------------------
Every field must match, ``day`` and ``day_of_week`` included, as in huey:
``day='1-7', day_of_week='1'`` is the first Monday of each month. (Unix cron
differs here: when both are restricted it runs when EITHER matches. A huey
schedule moved to this project keeps its meaning; a crontab line copied from
Unix cron with both fields set does not, and wants two periodic tasks.)

Errors
------
Everything is checked when the schedule is built: anything that cannot be
parsed raises ``ValueError`` naming the field and the bad value. A schedule
that could never fire (``day='31', month='2'``) is rejected too, rather than
silently never running.

``strict=True`` additionally rejects specs that are legal but usually a
mistake:

* a step that leaves only one value of a range (``minute='*/60'`` means just
  minute 0; write ``minute='0'`` if that is what you want);
* an allowed day that does not exist in every year of an allowed month
  (``day='31'`` skips five months, ``day='29', month='2'`` runs only in leap
  years). Only checked when ``day_of_week`` is unrestricted.
"""
from __future__ import annotations

import calendar
import datetime
import re
from typing import Dict, FrozenSet, NamedTuple, Optional, Union

__all__ = ['crontab', 'Crontab']

FieldValue = Union[int, str]


class _Field(NamedTuple):
    name: str
    low: int
    high: int


MINUTE = _Field('minute', 0, 59)
HOUR = _Field('hour', 0, 23)
DAY = _Field('day', 1, 31)
MONTH = _Field('month', 1, 12)
DAY_OF_WEEK = _Field('day_of_week', 0, 7)

# Normalised day-of-week values are 0-6; 7 is only an alias for Sunday.
_ALL_DAYS_OF_WEEK = frozenset(range(7))

# The longest each month can be in any year (February: leap years)...
_MAX_DAYS = {month: calendar.monthrange(2000, month)[1] for month in range(1, 13)}
# ...and the length it has in every year (February: common years).
_MIN_DAYS = {month: calendar.monthrange(2001, month)[1] for month in range(1, 13)}

# ASCII digits only: \d would also accept e.g. Arabic-Indic digits.
_PART_RE = re.compile(
    r'^(?:(?P<star>\*)|(?P<start>[0-9]+)(?:-(?P<end>[0-9]+))?)'
    r'(?:/(?P<step>[0-9]+))?$'
)

# Gives up after roughly five years; long enough for any schedule that fires
# at least every leap year, short enough to stay cheap.
_SEARCH_LIMIT = datetime.timedelta(days=5 * 366)
_ONE_MINUTE = datetime.timedelta(minutes=1)


def _error(field: _Field, value: FieldValue, problem: str) -> ValueError:
    return ValueError(f'crontab: {field.name}={value!r} {problem}')


def _allowed_text(field: _Field) -> str:
    if field is DAY_OF_WEEK:
        numbers = 'numbers 0-7 (0 or 7 = Sunday)'
    else:
        numbers = f'numbers {field.low}-{field.high}'
    return (f"use {numbers}, '*', '*/n', 'm-n', 'm-n/s', 'm/s' "
            'or a comma list')


def _check_in_range(field: _Field, value: FieldValue, number: int) -> None:
    if not field.low <= number <= field.high:
        detail = '' if str(number) == str(value) else f' (got {number})'
        raise _error(field, value,
                     f'is out of range {field.low}-{field.high}{detail}')


def _parse_part(field: _Field, value: FieldValue, part: str,
                strict: bool) -> FrozenSet[int]:
    """Parse one comma-separated part into the set of values it allows."""
    match = _PART_RE.match(part)
    if match is None:
        raise _error(field, value, f'is not understood; {_allowed_text(field)}')

    if match['star']:
        low, high = field.low, field.high
    else:
        low = int(match['start'])
        _check_in_range(field, value, low)
        if match['end'] is not None:
            high = int(match['end'])
            _check_in_range(field, value, high)
            if low > high:
                raise _error(field, value,
                             f'has a reversed range {low}-{high}; put the '
                             'smaller number first (ranges do not wrap)')
        elif match['step'] is not None:
            high = field.high  # 'm/s' runs to the end of the field.
        else:
            high = low

    step = 1
    if match['step'] is not None:
        step = int(match['step'])
        if step == 0:
            base = part.split('/')[0]
            raise _error(field, value, f'has a step of 0; use {base}/1 or more')

    values = frozenset(range(low, high + 1, step))
    if strict and step > 1 and len(values) == 1 and high > low:
        raise _error(field, value,
                     f'has a step of {step} that leaves only {low}; '
                     f'write {low} if that is intended (strict mode)')
    return values


def _parse_field(field: _Field, value: FieldValue, strict: bool) -> FrozenSet[int]:
    """Turn one field's int or string into the frozenset of values it allows."""
    # bool is a subclass of int, but minute=True is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _error(field, value,
                     f'must be an int or a str, not {type(value).__name__}')
    if isinstance(value, int):
        _check_in_range(field, value, value)
        values = frozenset([value])
    else:
        if not value.strip():
            raise _error(field, value, "is empty; use '*' to allow every value")
        values = frozenset()
        for part in value.split(','):
            values |= _parse_part(field, value, part.strip(), strict)

    if field is DAY_OF_WEEK:
        # Sunday is spelled 0 or 7; store it once, as 0.
        values = frozenset(v % 7 for v in values)
    return values


def _cron_weekday(date: datetime.date) -> int:
    # Python counts Monday=0 ... Sunday=6; cron counts Sunday=0, Monday=1.
    return (date.weekday() + 1) % 7


class Crontab:
    """A cron schedule; call it with a datetime to test one minute.

    Build it with :func:`crontab`. See the module docstring for the syntax.
    A minute matches when every field matches (huey's semantics, not Unix
    cron's EITHER rule for ``day`` with ``day_of_week``).

    Attributes ``minutes``, ``hours``, ``days``, ``months`` and
    ``days_of_week`` hold the parsed values as frozensets. ``days_of_week``
    uses cron numbering with Sunday stored as 0 (never 7).
    """

    def __init__(self, minute: FieldValue = '*', hour: FieldValue = '*',
                 day: FieldValue = '*', month: FieldValue = '*',
                 day_of_week: FieldValue = '*', strict: bool = False) -> None:
        self._spec: Dict[str, FieldValue] = {
            'minute': minute, 'hour': hour, 'day': day, 'month': month,
            'day_of_week': day_of_week,
        }
        self.strict = strict
        self.minutes = _parse_field(MINUTE, minute, strict)
        self.hours = _parse_field(HOUR, hour, strict)
        self.days = _parse_field(DAY, day, strict)
        self.months = _parse_field(MONTH, month, strict)
        self.days_of_week = _parse_field(DAY_OF_WEEK, day_of_week, strict)

        self._day_restricted = self.days != frozenset(range(1, 32))
        self._dow_restricted = self.days_of_week != _ALL_DAYS_OF_WEEK
        self._check_days_exist()

    def _check_days_exist(self) -> None:
        """Reject day/month combinations that never (or, if strict, not
        always) exist.

        A date that exists falls on every weekday in some year, so a
        day_of_week restriction never makes a schedule impossible by itself.
        """
        where = f"crontab: day={self._spec['day']!r}, month={self._spec['month']!r}"
        if not any(day <= _MAX_DAYS[month]
                   for month in self.months for day in self.days):
            raise ValueError(
                f'{where} never matches: none of the allowed days exists in '
                'any allowed month (February has at most 29 days; April, '
                'June, September and November have 30)')
        if self.strict and self._day_restricted and not self._dow_restricted:
            short = sorted(month for month in self.months
                           if max(self.days) > _MIN_DAYS[month])
            if short:
                raise ValueError(
                    f'{where} skips month(s) {short} in some or all years '
                    'because an allowed day does not exist there (strict mode)')

    def _date_matches(self, date: datetime.date) -> bool:
        return (date.month in self.months and date.day in self.days
                and _cron_weekday(date) in self.days_of_week)

    def __call__(self, dt: datetime.datetime) -> bool:
        """True if the minute containing ``dt`` is on the schedule."""
        return (dt.minute in self.minutes
                and dt.hour in self.hours
                and self._date_matches(dt.date()))

    def next_after(self, dt: datetime.datetime) -> Optional[datetime.datetime]:
        """Return the first matching minute strictly after ``dt``.

        The result has seconds and microseconds zeroed and keeps ``dt``'s
        tzinfo (arithmetic is wall-clock, like matching). Returns None if
        nothing matches within about five years, which can only happen for
        rare dates such as February 29 across a non-leap century year.
        """
        candidate = dt.replace(second=0, microsecond=0) + _ONE_MINUTE
        limit = candidate + _SEARCH_LIMIT
        # Skip whole days and hours that cannot match, so the loop runs at
        # most a few thousand times even for yearly schedules.
        while candidate <= limit:
            if not self._date_matches(candidate.date()):
                candidate = (candidate.replace(hour=0, minute=0)
                             + datetime.timedelta(days=1))
            elif candidate.hour not in self.hours:
                candidate = (candidate.replace(minute=0)
                             + datetime.timedelta(hours=1))
            elif candidate.minute not in self.minutes:
                candidate += _ONE_MINUTE
            else:
                return candidate
        return None

    def __repr__(self) -> str:
        args = ', '.join(f'{name}={value!r}' for name, value in self._spec.items())
        if self.strict:
            args += ', strict=True'
        return f'crontab({args})'


def crontab(minute: FieldValue = '*', hour: FieldValue = '*',
            day: FieldValue = '*', month: FieldValue = '*',
            day_of_week: FieldValue = '*', strict: bool = False) -> Crontab:
    """Build a :class:`Crontab` schedule; see the module docstring.

    Raises ValueError (naming the field and value) for anything it cannot
    parse, and for day/month combinations that can never match.
    """
    return Crontab(minute=minute, hour=hour, day=day, month=month,
                   day_of_week=day_of_week, strict=strict)
