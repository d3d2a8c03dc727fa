"""HTTP-date formatting and parsing (RFC 9110 §5.6.7)."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streme.http.dates import format_http_date, parse_http_date

# 1994-11-06T08:49:37Z, the RFC's example instant.
RFC_EXAMPLE = 784_111_777
NOW_2026 = 1_795_482_000.0  # Tue, 24 Nov 2026 01:00:00 GMT
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
YEAR_1 = int((datetime(1, 1, 1, tzinfo=UTC) - EPOCH).total_seconds())
YEAR_9999_END = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - EPOCH).total_seconds())


def reference_format(seconds: int) -> str:
    return email.utils.format_datetime(EPOCH + timedelta(seconds=seconds), usegmt=True)


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (RFC_EXAMPLE, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (NOW_2026, "Tue, 24 Nov 2026 01:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (RFC_EXAMPLE + 0.999, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (-0.5, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (2**31, "Tue, 19 Jan 2038 03:14:08 GMT"),
        (YEAR_9999_END, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (-62_167_219_200, "Sat, 01 Jan 0000 00:00:00 GMT"),
    ],
)
def test_format_known_dates(epoch: float, expected: str) -> None:
    assert format_http_date(epoch) == expected


@pytest.mark.parametrize(
    "epoch", [math.nan, math.inf, -math.inf, YEAR_9999_END + 1, -62_167_219_201, 1e300]
)
def test_format_rejects_unrepresentable(epoch: float) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        format_http_date(epoch)


@given(st.integers(min_value=YEAR_1, max_value=YEAR_9999_END))
def test_format_matches_reference(seconds: int) -> None:
    assert format_http_date(seconds) == reference_format(seconds)


@given(st.floats(min_value=-62_167_219_200, max_value=YEAR_9999_END, allow_nan=False))
def test_round_trip_truncates(epoch: float) -> None:
    text = format_http_date(epoch)
    assert len(text) == 29
    assert parse_http_date(text) == math.floor(epoch)


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 format
        "Sun Nov  6 08:49:37 1994",  # ANSI C's asctime() format
        "Sun Nov 06 08:49:37 1994",  # asctime with 2DIGIT day
        "  Sun, 06 Nov 1994 08:49:37 GMT\t",  # surrounding OWS
        "Mon, 06 Nov 1994 08:49:37 GMT",  # weekday not checked against the date
    ],
)
def test_parse_rfc_example_in_every_form(value: str) -> None:
    assert parse_http_date(value, now=NOW_2026) == RFC_EXAMPLE


@pytest.mark.parametrize(
    ("value", "now", "year"),
    [
        ("Sunday, 06-Nov-94 08:49:37 GMT", NOW_2026, 1994),
        ("Monday, 06-Nov-76 08:49:37 GMT", NOW_2026, 2076),  # exactly 50 years ahead: kept
        ("Monday, 06-Nov-77 08:49:37 GMT", NOW_2026, 1977),  # more than 50 years ahead
        ("Monday, 06-Nov-26 08:49:37 GMT", NOW_2026, 2026),
        ("Monday, 06-Nov-00 08:49:37 GMT", NOW_2026, 2000),
        # In 2090, "10" is 2110 (20 years ahead), not 2010 (80 years back).
        ("Monday, 06-Nov-10 08:49:37 GMT", 3_791_836_800.0, 2110),
    ],
)
def test_rfc850_two_digit_years(value: str, now: float, year: int) -> None:
    parsed = parse_http_date(value, now=now)
    assert parsed is not None
    assert datetime.fromtimestamp(parsed, UTC).year == year


def test_rfc850_without_now_uses_the_clock() -> None:
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == RFC_EXAMPLE


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_parse_asctime_matches_ctime(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    assert parse_http_date(moment.ctime()) == int((moment - EPOCH).total_seconds())


@given(st.datetimes(min_value=datetime(1977, 1, 1), max_value=datetime(2076, 12, 31)))
def test_parse_rfc850_matches_reference(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    value = moment.strftime("%d-%b-%y %H:%M:%S GMT")
    value = f"{('Monday', 'Tuesday', 'Wednesday', 'Thursday')[moment.day % 4]}, {value}"
    assert parse_http_date(value, now=NOW_2026) == int((moment - EPOCH).total_seconds())


def test_leap_second_is_next_minute() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:60 GMT") == RFC_EXAMPLE + 23


def test_leap_days() -> None:
    assert parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT") == 951_782_400
    assert parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT") is not None
    assert parse_http_date("Thu, 29 Feb 1900 12:00:00 GMT") is None
    assert parse_http_date("Thu, 29 Feb 2023 12:00:00 GMT") is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "0",
        "1994-11-06T08:49:37Z",
        "sun, 06 nov 1994 08:49:37 gmt",  # names are case-sensitive (%s"...")
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMTx",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 30 Feb 1996 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, \uff106 Nov 1994 08:49:37 GMT",  # fullwidth digit zero
        "Sun, 06 Nov 19²4 08:49:37 GMT",  # superscript digit
        "Sun, +6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",  # a list
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Funday, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-9x 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 UTC",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  x 08:49:37 1994",
        "Sun Nov   08:49:37 1994",
        "Sun Nov  6 08:49:37 199x",
        "Sun Nov  6 08:49:37 1994 GMT",
    ],
)
def test_parse_invalid(value: str) -> None:
    assert parse_http_date(value, now=NOW_2026) is None


@given(st.text(max_size=40))
def test_parse_never_raises(value: str) -> None:
    result = parse_http_date(value, now=NOW_2026)
    assert result is None or isinstance(result, int)


@given(st.text(alphabet="SunMoTeWdhFriaJbpyglAgOcNvD0123456789 ,-:GMT", min_size=20, max_size=32))
def test_parse_near_miss_never_raises(value: str) -> None:
    result = parse_http_date(value, now=NOW_2026)
    if result is not None:
        assert YEAR_1 - 366 * 86_400 <= result <= YEAR_9999_END
