"""HTTP-date formatting and parsing (RFC 9110 §5.6.7).

How this works: dates are whole seconds since the Unix epoch, in UTC. Formatting always
produces the preferred IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). Parsing accepts the
three forms a recipient MUST accept: IMF-fixdate, the obsolete RFC 850 form
(`Sunday, 06-Nov-94 08:49:37 GMT`) and ANSI C's asctime() form (`Sun Nov  6 08:49:37 1994`).
Every form has fixed field positions, so parsing is slicing plus table look-ups, no regex.
Calendar arithmetic is Howard Hinnant's days-from-civil / civil-from-days on the proleptic
Gregorian calendar: pure integer maths, no `time`/`calendar` platform limits.

Choices where the RFC leaves room:
- Names (day, month, "GMT") are matched case-sensitively, as the grammar's `%s"..."`
  strings say; a lowercase date is invalid, and callers then ignore the field (nginx also
  treats `tue, 24 nov 2026 ... gmt` in If-Modified-Since as no date).
- The day name is checked to be a day name but not checked against the date (the weekday
  is redundant; Go and Python's email.utils do the same).
- Second 60 (leap second, allowed by the grammar) counts as the next minute's :00, the
  POSIX convention.
- RFC 850 two-digit years use the §5.6.7 rule: a year that appears more than 50 years in
  the future means the most recent past year with the same last two digits. That rule needs
  the current time; pass `now` to keep the call pure (tests do), else `time.time()` is read.
"""

from __future__ import annotations

import math
import time

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_NAMES_LONG = frozenset(
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
)
_DAY_NAME_SET = frozenset(_DAY_NAMES)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

SECONDS_PER_DAY = 86_400
# 4DIGIT year in IMF-fixdate: 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
_MIN_EPOCH = -62_167_219_200
_MAX_EPOCH = 253_402_300_799


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm)."""
    if month <= 2:
        year -= 1
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01 (inverse of the above)."""
    days += 719_468
    era = days // 146_097
    doe = days - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def format_http_date(epoch_seconds: float) -> str:
    """IMF-fixdate for `epoch_seconds` (§5.6.7), dropping the fraction of a second.

    Raises ValueError outside years 0000-9999 (the format's 4DIGIT year) or for NaN.
    """
    if not math.isfinite(epoch_seconds):
        raise ValueError(f"not a finite timestamp: {epoch_seconds!r}")
    # floor, not int(): -0.5 is 23:59:59 on 1969-12-31, the second the instant lies in.
    seconds = math.floor(epoch_seconds)
    if not _MIN_EPOCH <= seconds <= _MAX_EPOCH:
        raise ValueError(f"timestamp outside the years 0000-9999: {epoch_seconds!r}")
    days, rest = divmod(seconds, SECONDS_PER_DAY)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    # 1970-01-01 was a Thursday, index 3 in _DAY_NAMES.
    weekday = _DAY_NAMES[(days + 3) % 7]
    return (
        f"{weekday}, {day:02d} {_MONTH_NAMES[month - 1]} {year:04d} "
        f"{hour:02d}:{minute:02d}:{second:02d} GMT"
    )


def _number(text: str) -> int:
    """The value of an all-ASCII-digit string, or -1 (str.isdigit alone accepts '²', '٣')."""
    if text.isascii() and text.isdigit():
        return int(text)
    return -1


def _time_of_day(text: str) -> int:
    """Seconds into the day of `HH:MM:SS` (§5.6.7 time-of-day), or -1."""
    if len(text) != 8 or text[2] != ":" or text[5] != ":":
        return -1
    hour = _number(text[0:2])
    minute = _number(text[3:5])
    second = _number(text[6:8])
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 60):
        return -1
    return hour * 3600 + minute * 60 + second


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _epoch(year: int, month: int, day: int, seconds_of_day: int) -> int | None:
    if year < 0 or month == 0 or seconds_of_day < 0 or day < 1:
        return None
    limit = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month - 1]
    if day > limit:
        return None
    return _days_from_civil(year, month, day) * SECONDS_PER_DAY + seconds_of_day


def _two_digit_year(yy: int, now: float | None) -> int:
    """§5.6.7: a year more than 50 years ahead is the most recent past one instead."""
    if now is None:
        now = time.time()
    current = _civil_from_days(math.floor(now) // SECONDS_PER_DAY)[0]
    year = current - current % 100 + yy
    if year > current + 50:
        year -= 100
    elif year <= current - 50:
        year += 100
    return year


def parse_http_date(value: str, *, now: float | None = None) -> int | None:
    """Epoch seconds of an HTTP-date in any of the three §5.6.7 forms, or None if invalid.

    `now` (epoch seconds) only matters for RFC 850 two-digit years; see the module docs.
    Never raises.
    """
    text = value.strip(" \t")
    length = len(text)
    if length == 29 and text[3] == ",":
        # IMF-fixdate: day-name "," SP day SP month SP year SP time-of-day SP "GMT"
        #              0..2     3   4  5-6 7  8-10  11 12-15 16 17-24     25 26-28
        if (
            text[0:3] not in _DAY_NAME_SET
            or text[4] != " "
            or text[7] != " "
            or text[11] != " "
            or text[16] != " "
            or text[25:] != " GMT"
        ):
            return None
        return _epoch(
            _number(text[12:16]),
            _MONTHS.get(text[8:11], 0),
            _number(text[5:7]),
            _time_of_day(text[17:25]),
        )
    if length == 24 and text[3] == " ":
        # asctime-date: day-name SP month SP ( 2DIGIT / SP DIGIT ) SP time-of-day SP year
        #               0..2     3  4-6   7  8-9                    10 11-18      19 20-23
        if text[0:3] not in _DAY_NAME_SET or text[7] != " " or text[10] != " " or text[19] != " ":
            return None
        day_text = text[8:10]
        day = _number(day_text[1]) if day_text[0] == " " else _number(day_text)
        return _epoch(
            _number(text[20:24]),
            _MONTHS.get(text[4:7], 0),
            day,
            _time_of_day(text[11:19]),
        )
    # rfc850-date: day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP "GMT"
    comma = text.find(",")
    if comma < 6 or text[:comma] not in _DAY_NAMES_LONG:
        return None
    rest = text[comma:]
    #       0 1 2-3 4 5-7 8 9-10 11 12-19 20 21-23
    if len(rest) != 24 or rest[1] != " " or rest[4] != "-" or rest[8] != "-":
        return None
    if rest[11] != " " or rest[20:] != " GMT":
        return None
    yy = _number(rest[9:11])
    if yy < 0:
        return None
    return _epoch(
        _two_digit_year(yy, now),
        _MONTHS.get(rest[5:8], 0),
        _number(rest[2:4]),
        _time_of_day(rest[12:20]),
    )
