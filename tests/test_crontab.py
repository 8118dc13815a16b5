import datetime

import pytest

from huey.crontab import Crontab, crontab

dt = datetime.datetime


def minutes_of_day(day=datetime.date(2024, 5, 14)):
    start = dt.combine(day, datetime.time())
    return [start + datetime.timedelta(minutes=i) for i in range(24 * 60)]


def days_of_year(year):
    start = dt(year, 1, 1)
    day = start
    while day.year == year:
        yield day
        day += datetime.timedelta(days=1)


# --- syntax forms -----------------------------------------------------------

def test_default_is_every_minute():
    cron = crontab()
    assert isinstance(cron, Crontab)
    assert cron.minutes == frozenset(range(60))
    assert cron.hours == frozenset(range(24))
    assert cron.days == frozenset(range(1, 32))
    assert cron.months == frozenset(range(1, 13))
    assert cron.days_of_week == frozenset(range(7))


def test_every_minute_matches_all_1440_minutes_of_a_day():
    cron = crontab()
    matched = [moment for moment in minutes_of_day() if cron(moment)]
    assert len(matched) == 1440


def test_star_slash_15_matches_96_minutes_a_day():
    cron = crontab(minute='*/15')
    matched = [m for m in minutes_of_day() if cron(m)]
    assert len(matched) == 96
    assert {m.minute for m in matched} == {0, 15, 30, 45}


@pytest.mark.parametrize('spec, expected', [
    (7, {7}),
    ('7', {7}),
    ('07', {7}),
    ('*', set(range(60))),
    ('*/20', {0, 20, 40}),
    ('*/7', {0, 7, 14, 21, 28, 35, 42, 49, 56}),
    ('10-13', {10, 11, 12, 13}),
    ('10-20/5', {10, 15, 20}),
    ('10-21/5', {10, 15, 20}),
    ('5/15', {5, 20, 35, 50}),
    ('58/1', {58, 59}),
    ('0,30', {0, 30}),
    ('1, 2 ,3', {1, 2, 3}),
    ('1-3,2-4,*/30', {0, 1, 2, 3, 4, 30}),
    ('5-5', {5}),
    ('*/100', {0}),
])
def test_minute_syntax(spec, expected):
    assert crontab(minute=spec).minutes == frozenset(expected)


def test_field_maximum_is_field_specific():
    assert crontab(hour='20/2').hours == frozenset({20, 22})
    assert crontab(day='25/3').days == frozenset({25, 28, 31})
    assert crontab(month='*/4').months == frozenset({1, 5, 9})
    assert crontab(month='10/1').months == frozenset({10, 11, 12})


def test_call_ignores_seconds_and_microseconds():
    cron = crontab(minute='30', hour='12')
    assert cron(dt(2024, 1, 1, 12, 30, 0))
    assert cron(dt(2024, 1, 1, 12, 30, 59, 999999))
    assert not cron(dt(2024, 1, 1, 12, 31, 0))
    assert not cron(dt(2024, 1, 1, 13, 30, 0))


def test_hour_and_minute_combined():
    cron = crontab(minute='0,30', hour='9-17')
    matched = [m for m in minutes_of_day() if cron(m)]
    assert len(matched) == 18
    assert matched[0] == dt(2024, 5, 14, 9, 0)
    assert matched[-1] == dt(2024, 5, 14, 17, 30)


def test_month_restricts():
    cron = crontab(minute=0, hour=0, month='3-4')
    assert cron(dt(2024, 3, 10))
    assert cron(dt(2024, 4, 30))
    assert not cron(dt(2024, 5, 1))
    assert not cron(dt(2024, 2, 29))


# --- day of week ------------------------------------------------------------

def test_day_of_week_numbering_matches_cron():
    # 2024-05-12 is a Sunday; the following days run Monday..Saturday.
    sunday = datetime.date(2024, 5, 12)
    assert sunday.strftime('%A') == 'Sunday'
    for cron_dow in range(7):
        cron = crontab(minute=0, hour=0, day_of_week=cron_dow)
        matched = [d for d in days_of_year(2024) if cron(d)]
        assert matched, cron_dow
        names = {d.strftime('%A') for d in matched}
        expected = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday',
                    'Friday', 'Saturday'][cron_dow]
        assert names == {expected}


@pytest.mark.parametrize('sunday', [0, 7, '0', '7'])
def test_sunday_is_0_and_7(sunday):
    cron = crontab(day_of_week=sunday)
    assert cron.days_of_week == frozenset({0})
    assert cron(dt(2024, 5, 12, 8, 0))       # Sunday
    assert not cron(dt(2024, 5, 13, 8, 0))   # Monday
    assert not cron(dt(2024, 5, 18, 8, 0))   # Saturday


def test_day_of_week_ranges_including_7():
    weekend = crontab(day_of_week='6-7')
    assert weekend.days_of_week == frozenset({6, 0})
    assert weekend(dt(2024, 5, 11))          # Saturday
    assert weekend(dt(2024, 5, 12))          # Sunday
    assert not weekend(dt(2024, 5, 10))      # Friday
    assert crontab(day_of_week='1-5').days_of_week == frozenset({1, 2, 3, 4, 5})
    assert crontab(day_of_week='0-7').days_of_week == frozenset(range(7))
    # m/s runs to the field maximum, 7, which is Sunday.
    assert crontab(day_of_week='1/3').days_of_week == frozenset({1, 4, 0})
    assert crontab(day_of_week='*/2').days_of_week == frozenset({0, 2, 4, 6})


def test_weekdays_match_five_days_a_week():
    cron = crontab(minute=0, hour=9, day_of_week='1-5')
    matched = [d for d in days_of_year(2023) if cron(d.replace(hour=9))]
    # 2023 starts on a Sunday and has 365 days: 52 weeks + one Sunday.
    assert len(matched) == 52 * 5
    assert all(d.weekday() < 5 for d in matched)


# --- day of month and day of week: both must match (huey's rule) -----------

def test_day_and_day_of_week_both_restricted_must_both_match():
    """huey's idiom for "the first Monday of the month": AND, not Unix cron's OR."""
    cron = crontab(minute=0, hour=9, day='1-7', day_of_week='1')
    matched = [d.date() for d in days_of_year(2024) if cron(d.replace(hour=9))]
    assert len(matched) == 12
    assert all(d.weekday() == 0 and d.day <= 7 for d in matched)
    assert not cron(dt(2024, 6, 4, 9))   # Tuesday the 4th
    assert not cron(dt(2024, 6, 10, 9))  # the second Monday


def test_only_day_restricted_ignores_weekday():
    cron = crontab(minute=0, hour=0, day='13')
    matched = [d for d in days_of_year(2024) if cron(d)]
    assert len(matched) == 12
    assert all(d.day == 13 for d in matched)


def test_only_day_of_week_restricted_ignores_day():
    cron = crontab(minute=0, hour=0, day_of_week='5')
    matched = [d for d in days_of_year(2024) if cron(d)]
    assert len(matched) == 52
    assert all(d.weekday() == 4 for d in matched)


def test_spelling_of_every_value_does_not_matter():
    cron = crontab(minute=0, hour=0, day='1-31', day_of_week='1')
    matched = [d for d in days_of_year(2024) if cron(d)]
    assert len(matched) == 53  # the Mondays of 2024
    assert all(d.weekday() == 0 for d in matched)
    spelled = crontab(minute=0, hour=0, day='*/1', day_of_week='0-7')
    assert len([d for d in days_of_year(2024) if spelled(d)]) == 366


def test_friday_13th_is_friday_and_13th():
    cron = crontab(minute=0, hour=0, day=13, day_of_week=5)
    assert cron(dt(2024, 9, 13))       # Friday the 13th
    assert not cron(dt(2024, 9, 6))    # a Friday
    assert not cron(dt(2024, 8, 13))   # a Tuesday the 13th
    assert cron.next_after(dt(2024, 9, 13)) == dt(2024, 12, 13)


# --- leap years -------------------------------------------------------------

def test_february_29_only_in_leap_years():
    cron = crontab(minute=0, hour=0, day=29, month=2)
    assert cron(dt(2024, 2, 29))
    assert cron(dt(2000, 2, 29))
    assert sum(1 for d in days_of_year(2023) if cron(d)) == 0
    assert sum(1 for d in days_of_year(2024) if cron(d)) == 1


def test_february_29_is_not_a_never_matching_schedule():
    crontab(day='29', month='2')
    crontab(day='29-31', month='2')


def test_day_31_with_month_star_matches_seven_months():
    cron = crontab(minute=0, hour=0, day=31)
    assert sum(1 for d in days_of_year(2024) if cron(d)) == 7


# --- errors -----------------------------------------------------------------

def error_for(**kwargs):
    with pytest.raises(ValueError) as info:
        crontab(**kwargs)
    return str(info.value)


@pytest.mark.parametrize('field, value, rng', [
    ('minute', '61', '0-59'),
    ('minute', 60, '0-59'),
    ('hour', '24', '0-23'),
    ('hour', -1, '0-23'),
    ('day', '0', '1-31'),
    ('day', '32', '1-31'),
    ('month', '0', '1-12'),
    ('month', '13', '1-12'),
    ('day_of_week', '8', '0-7'),
    ('day_of_week', 8, '0-7'),
])
def test_out_of_range(field, value, rng):
    message = error_for(**{field: value})
    assert message == f'crontab: {field}={value!r} is out of range {rng}'


def test_out_of_range_exact_message_and_part():
    assert error_for(minute='61') == "crontab: minute='61' is out of range 0-59"
    message = error_for(minute='5,50-70')
    assert message == "crontab: minute='5,50-70' is out of range 0-59 (got 70)"
    assert 'out of range 1-12' in error_for(month='13/2')


def test_step_of_zero():
    assert error_for(hour='*/0') == \
        "crontab: hour='*/0' has a step of 0; use */1 or more"
    assert error_for(minute='1-5/0') == \
        "crontab: minute='1-5/0' has a step of 0; use 1-5/1 or more"
    assert error_for(day='3/0').startswith("crontab: day='3/0' has a step of 0")


@pytest.mark.parametrize('value', [
    'mon', 'jan', '1-', '-1', '*/', '/5', '1-2-3', '*-5', '5/*', '**',
    '1,,2', '1,', '1.5', '1 2', '\u0663',
])
def test_not_understood(value):
    message = error_for(day_of_week=value)
    assert message == (
        f"crontab: day_of_week={value!r} is not understood; use numbers 0-7 "
        "(0 or 7 = Sunday), '*', '*/n', 'm-n', 'm-n/s', 'm/s' or a comma list")


def test_not_understood_names_other_fields():
    message = error_for(minute='abc')
    assert message.startswith("crontab: minute='abc' is not understood;")
    assert 'numbers 0-59' in message
    assert 'numbers 1-12' in error_for(month='x')


@pytest.mark.parametrize('value', ['', '   '])
def test_empty_string(value):
    assert error_for(hour=value) == \
        f"crontab: hour={value!r} is empty; use '*' to allow every value"


def test_reversed_range():
    message = error_for(hour='17-9')
    assert message.startswith("crontab: hour='17-9' has a reversed range 17-9")
    assert 'reversed range 6-1' in error_for(day_of_week='6-1/2')


@pytest.mark.parametrize('value, type_name', [
    (True, 'bool'), (False, 'bool'), (1.0, 'float'), (None, 'NoneType'),
    ([1, 2], 'list'), (b'5', 'bytes'),
])
def test_wrong_type(value, type_name):
    assert error_for(month=value) == \
        f'crontab: month={value!r} must be an int or a str, not {type_name}'


@pytest.mark.parametrize('day, month', [
    ('31', '2'), ('30', '2'), ('30-31', '2'), (31, '4,6,9,11'), ('31', '2,4'),
])
def test_never_matching_day_and_month(day, month):
    message = error_for(day=day, month=month)
    assert message.startswith(f'crontab: day={day!r}, month={month!r} never matches')


def test_never_matching_check_applies_with_day_of_week_too():
    # Both fields must match, so a weekday cannot rescue February 31st.
    with pytest.raises(ValueError, match='never matches'):
        crontab(minute=0, hour=0, day=31, month=2, day_of_week=1)


def test_day_31_allowed_when_some_month_has_it():
    assert crontab(day='31', month='2,3').months == frozenset({2, 3})


# --- strict -----------------------------------------------------------------

def test_strict_rejects_step_leaving_one_value():
    crontab(minute='*/60')  # legal when not strict: just minute 0
    message = error_for(minute='*/60', strict=True)
    assert message.startswith("crontab: minute='*/60' has a step of 60")
    assert 'strict' in message
    assert 'hour=' in error_for(hour='1-5/10', strict=True)
    crontab(minute='*/30', hour='5', strict=True)  # fine: several values / no step


def test_strict_rejects_days_missing_from_some_months():
    crontab(day='31')
    message = error_for(day='31', strict=True)
    assert message.startswith("crontab: day='31', month='*' skips month(s) [2, 4, 6, 9, 11]")
    assert '[2]' in error_for(day=29, month=2, strict=True)
    crontab(day='1-28', strict=True)
    crontab(day='31', month='1,3', strict=True)
    crontab(day='31', day_of_week='1', strict=True)  # weekday may fill in


# --- next_after -------------------------------------------------------------

def test_next_after_is_strictly_after_and_zeroes_seconds():
    cron = crontab(minute='*/5')
    assert cron.next_after(dt(2024, 1, 1, 9, 35)) == dt(2024, 1, 1, 9, 40)
    assert cron.next_after(dt(2024, 1, 1, 9, 35, 59, 1)) == dt(2024, 1, 1, 9, 40)
    assert cron.next_after(dt(2024, 1, 1, 9, 36, 10)) == dt(2024, 1, 1, 9, 40)
    assert crontab().next_after(dt(2024, 1, 1, 9, 35, 30)) == dt(2024, 1, 1, 9, 36)


def test_next_after_rolls_over_day_month_and_year():
    cron = crontab(minute=0, hour=0, day=1, month=1)
    assert cron.next_after(dt(2024, 1, 1, 0, 0)) == dt(2025, 1, 1, 0, 0)
    assert cron.next_after(dt(2024, 12, 31, 23, 59)) == dt(2025, 1, 1, 0, 0)
    hourly = crontab(minute=30, hour='*/6')
    assert hourly.next_after(dt(2024, 2, 29, 18, 30)) == dt(2024, 3, 1, 0, 30)


def test_next_after_weekday_and_day():
    monday_9 = crontab(minute=0, hour=9, day_of_week=1)
    # 2024-05-14 is a Tuesday.
    assert monday_9.next_after(dt(2024, 5, 14, 12, 0)) == dt(2024, 5, 20, 9, 0)
    both = crontab(minute=0, hour=9, day=15, day_of_week=1)
    # The next Monday the 15th after May 14th 2024 is July 15th.
    assert both.next_after(dt(2024, 5, 14, 12, 0)) == dt(2024, 7, 15, 9, 0)


def test_next_after_leap_day():
    cron = crontab(minute=0, hour=12, day=29, month=2)
    assert cron.next_after(dt(2024, 3, 1)) == dt(2028, 2, 29, 12, 0)
    assert cron.next_after(dt(2095, 1, 1)) == dt(2096, 2, 29, 12, 0)
    # 2100 is not a leap year; the next Feb 29 is in 2104, beyond the window.
    assert cron.next_after(dt(2096, 3, 1)) is None


def test_next_after_agrees_with_brute_force():
    cron = crontab(minute='7-50/13', hour='3,15', day='10-12', day_of_week='6')
    moment = dt(2024, 5, 1)
    brute = []
    probe = moment + datetime.timedelta(minutes=1)
    while len(brute) < 40:
        if cron(probe):
            brute.append(probe)
        probe += datetime.timedelta(minutes=1)
    found = []
    for _ in range(40):
        moment = cron.next_after(moment)
        found.append(moment)
    assert found == brute


def test_next_after_keeps_tzinfo():
    tz = datetime.timezone(datetime.timedelta(hours=2))
    cron = crontab(minute=0, hour=8)
    result = cron.next_after(dt(2024, 5, 14, 9, 0, tzinfo=tz))
    assert result == dt(2024, 5, 15, 8, 0, tzinfo=tz)
    assert result.tzinfo is tz


# --- repr -------------------------------------------------------------------

def test_repr():
    assert repr(crontab(minute='*/5')) == \
        "crontab(minute='*/5', hour='*', day='*', month='*', day_of_week='*')"
    assert repr(crontab(minute=0, hour='9-17', day_of_week='1-5', strict=True)) == \
        ("crontab(minute=0, hour='9-17', day='*', month='*', "
         "day_of_week='1-5', strict=True)")
