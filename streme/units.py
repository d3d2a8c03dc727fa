"""Units for sizes and durations, and the parsers for their text forms.

Constants let config defaults read as `16 * KiB` or `5 * SECONDS`. The parsers turn what an
operator writes (in TOML, an environment variable or a flag) into bytes or seconds:

- `parse_size("50GiB")`: a non-negative number, optionally with a unit, case-insensitive.
  `B` is bytes; `KiB MiB GiB TiB` and the short `K M G T` are binary (1024^n); `KB MB GB TB`
  are decimal (1000^n). A bare number is bytes. Fractions round down to whole bytes.
- `parse_duration("12h")`: a non-negative number of seconds, or a number with `s`, `m`, `h`
  or `d`.
- `parse_percent("5%")`: a number from 0 to 100 followed by `%`.
- `parse_size_or_percent("5 %")`: bytes for a size; a percentage is checked and kept as
  text without blanks (`"5%"`), for `parse_percent` to read later.

All raise ValueError with a message quoting the text; they never touch the filesystem.
"""

from __future__ import annotations

import re
from fractions import Fraction

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

SECONDS = 1.0
MINUTES = 60 * SECONDS
HOURS = 60 * MINUTES
DAYS = 24 * HOURS

SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kib": KiB,
    "kb": 1000,
    "m": MiB,
    "mib": MiB,
    "mb": 1000**2,
    "g": GiB,
    "gib": GiB,
    "gb": 1000**3,
    "t": TiB,
    "tib": TiB,
    "tb": 1000**4,
}

DURATION_UNITS: dict[str, float] = {"": SECONDS, "s": SECONDS, "m": MINUTES, "h": HOURS, "d": DAYS}

# A plain decimal number (no sign, no exponent) and an optional unit word.
_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z%]*)\s*", re.IGNORECASE)


def _quantity(text: str) -> tuple[Fraction, str] | None:
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    return Fraction(match.group(1)), match.group(2).lower()


def parse_size(text: str) -> int:
    """Bytes from `123`, `500MiB`, `1.5GB`, `10G` (see the module docstring for the units)."""
    parsed = _quantity(text)
    if parsed is None or parsed[1] not in SIZE_UNITS:
        raise ValueError(
            f"{text!r} is not a size (bytes, or a number with a unit like 500MiB, 1.5GB, 10G)"
        )
    number, unit = parsed
    return int(number * SIZE_UNITS[unit])


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `30m`, `12h`, `3d` or `1.5h`."""
    parsed = _quantity(text)
    if parsed is None or parsed[1] not in DURATION_UNITS:
        raise ValueError(
            f"{text!r} is not a duration (seconds, or a number with s, m, h or d like 90s, 30m, "
            "12h, 3d)"
        )
    number, unit = parsed
    return float(number * Fraction(DURATION_UNITS[unit]))


def parse_percent(text: str) -> Fraction:
    """The number in `5%` or `2.5 %`, exactly; it must be from 0 to 100."""
    parsed = _quantity(text)
    if parsed is None or parsed[1] != "%":
        raise ValueError(f"{text!r} is not a percentage like 5%")
    if parsed[0] > 100:
        raise ValueError(f"{text!r} is more than 100%")
    return parsed[0]


def parse_size_or_percent(text: str) -> int | str:
    """Bytes for a size (`10GiB`); for a percentage, the text without blanks (`"5%"`)."""
    if text.strip().endswith("%"):
        parse_percent(text)
        return "".join(text.split())
    try:
        return parse_size(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a size or a percentage (like 10GiB or 5%)") from None
