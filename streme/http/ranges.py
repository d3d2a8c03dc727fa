"""Byte-range requests: the Range header and multipart/byteranges (RFC 9110 §14).

How this works: `evaluate_range(header, size)` turns a Range field value and the file size
into a `RangeDecision`: FULL (ignore the header, answer 200), PARTIAL (206 with one or more
`ByteRange`s, inclusive ends, in request order), or UNSATISFIABLE (416 with
`unsatisfied_content_range(size)`). Range-specs are read left to right, exactly the way
nginx 1.22's ngx_http_range_filter_module reads them, because responses are compared
against nginx. For several ranges, `multipart_plan` lays out a multipart/byteranges body
(§14.6) as literal part headers interleaved with file ranges, byte for byte as nginx does.

Decisions (nginx 1.22.1 observed on a 100-byte file unless stated; "reject" is a 416):
- Unit other than `bytes` (case-insensitive, §14.1), no `=`, whitespace around `=`, or
  nothing after `bytes=`: ignore -> FULL (§14.2: MUST ignore unknown units; MAY ignore).
- A syntactically invalid range-spec anywhere in the set rejects the whole header
  (`bytes=abc`, `bytes=0-1,abc`, `bytes=-`, `bytes=1--2`, `bytes=+1-2`, `bytes=0-1 2`,
  non-ASCII digits): §14.2 allows a server to "ignore or reject" an invalid
  ranges-specifier; nginx rejects.
- Numbers above 2**63-1 (nginx's off_t) reject; leading zeros are fine
  (`bytes=000...0001-2` is 1-2). Values are bounded by magnitude, not by digit count.
- `first-last` with first > last (§14.1.1 calls it invalid) is dropped like an
  unsatisfiable range rather than rejecting the set: alone it gives 416, with
  `bytes=5-3,0-1` the 0-1 range is served (nginx).
- Whitespace: OWS (SP / HTAB) around list elements and empty list elements are accepted
  (§5.6.1.2 says a recipient MUST accept them). nginx diverges here: it rejects HTAB and
  empty elements (`bytes=0-1,`, `bytes=,0-1`, `bytes=0-1,,2-3` are 416 on nginx, 206
  here). Like nginx, spaces (SP only) are also tolerated inside an int-range around the
  `-` (`bytes=0 - 1` is 0-1), but not between `-` and a suffix length (`bytes=- 5` rejects).
  A set with no element at all (`bytes=,`) rejects.
- Zero-length file: an element that starts at 0 (`0-0`, `0-`, any suffix, even `-0`)
  makes nginx ignore the header -> FULL (200 with an empty body); elements starting later
  are unsatisfiable, so `bytes=1-` is 416 `bytes */0`. Ignoring is always allowed (§14.2),
  and §14.1.1 says nothing but a non-zero suffix is satisfiable for an empty
  representation, which cannot be expressed as a 206 anyway. Parsing stops at that
  element, so `bytes=0-0,abc` is FULL but `bytes=5-,abc` rejects.
- Overlapping or unordered ranges are served as asked, not coalesced (§14.2 permits
  either; nginx does not coalesce). If the lengths add up to more than the file (e.g.
  `bytes=0-59,40-99`, `bytes=0-,0-`), the header is ignored -> FULL, as nginx and Go's
  net/http do (a DoS defence, §14.2 / §17.15).
- More than MAX_RANGES (100) satisfiable ranges -> FULL, decided when the 101st is read
  (nginx's `max_ranges 100` behaviour; stock nginx has no limit and would answer 206).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_RANGES = 100
"""Ranges served in one multipart response; nginx's `max_ranges` (unlimited by default)."""

_MAX_OFFSET = 2**63 - 1  # nginx's NGX_MAX_OFF_T_VALUE; larger numbers reject the header.
_MAX_DIGITS = 19  # len(str(_MAX_OFFSET)); longer digit strings need their zeros stripped.
_OWS = " \t"  # §5.6.3


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start` through `end` of a representation, both inclusive (§14.1.2)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The Content-Range field value for this range of a `size`-byte file (§14.4)."""
        return f"bytes {self.start}-{self.end}/{size}"


class RangeKind(enum.Enum):
    FULL = "full"  # no usable Range: 200 with the whole representation
    PARTIAL = "partial"  # 206 with `ranges`
    UNSATISFIABLE = "unsatisfiable"  # 416 with `Content-Range: bytes */SIZE` (§15.5.17)


@dataclass(frozen=True, slots=True)
class RangeDecision:
    kind: RangeKind
    ranges: tuple[ByteRange, ...] = ()  # non-empty only for PARTIAL


FULL = RangeDecision(RangeKind.FULL)
UNSATISFIABLE = RangeDecision(RangeKind.UNSATISFIABLE)


def unsatisfied_content_range(size: int) -> str:
    """Content-Range of a 416 answer (§14.4: unsatisfied-range)."""
    return f"bytes */{size}"


def _offset(digits: str) -> int:
    """The value of an ASCII 1*DIGIT (§14.1.1) up to 2**63-1, else -1."""
    if not (digits.isascii() and digits.isdigit()):  # isdigit() alone accepts '²' and '٣'
        return -1
    if len(digits) > _MAX_DIGITS:
        # int() refuses strings over 4300 digits; a long run of zeros is still a number.
        digits = digits.lstrip("0")
        if len(digits) > _MAX_DIGITS:
            return -1
        if not digits:
            return 0
    value = int(digits)
    return value if value <= _MAX_OFFSET else -1


# What players and load tools send: one range, "bytes=first-last" or "bytes=first-".
_ONE_RANGE = re.compile(r"bytes=([0-9]{1,18})-([0-9]{0,18})")  # ASCII digits only


def evaluate_range(header: str | None, size: int) -> RangeDecision:
    """Decide how to answer a GET carrying `Range: header` for a `size`-byte file (§14.2)."""
    if not header:
        return FULL
    one = _ONE_RANGE.fullmatch(header)
    if one is not None and size > 0:
        # The general parser below gives the same answer; this skips its splitting.
        start = int(one[1])
        if start >= size:
            return UNSATISFIABLE
        last = one[2]
        end = size - 1 if not last or int(last) >= size else int(last)
        if start > end:
            return UNSATISFIABLE
        return RangeDecision(RangeKind.PARTIAL, (ByteRange(start, end),))
    value = header.strip(_OWS)
    # §14.1: ranges-specifier = range-unit "=" range-set; range units are case-insensitive.
    if len(value) < 7 or value[:6].lower() != "bytes=":
        return FULL
    ranges: list[ByteRange] = []
    total = 0
    for element in value[6:].split(","):
        spec = element.strip(_OWS)
        if not spec:
            continue  # §5.6.1.2: empty list elements are allowed
        first_text, dash, last_text = spec.partition("-")
        if not dash:
            return UNSATISFIABLE
        if first_text:
            # int-range = first-pos "-" [ last-pos ] (§14.1.1); nginx allows SP around "-".
            start = _offset(first_text.rstrip(" "))
            if start < 0:
                return UNSATISFIABLE
            last_text = last_text.lstrip(" ")
            if last_text:
                last = _offset(last_text)
                if last < 0:
                    return UNSATISFIABLE
                stop = last + 1 if last < size else size  # clamp to the end (§14.1.2)
            else:
                stop = size
        else:
            # suffix-range = "-" suffix-length: the last N bytes, all of them if N > size.
            suffix = _offset(last_text)
            if suffix < 0:
                return UNSATISFIABLE
            start = size - suffix if suffix < size else 0
            stop = size
        if start < stop:
            ranges.append(ByteRange(start, stop - 1))
            total += stop - start
            if total > _MAX_OFFSET:
                return UNSATISFIABLE  # nginx's overflow guard on the summed length
            if len(ranges) > MAX_RANGES:
                return FULL
        elif start == 0:
            return FULL  # only for size 0: nginx ignores the header (see module docs)
        # else: unsatisfiable (first-pos >= size, suffix 0, or first > last): dropped
    if not ranges:
        # Covers "bytes=,": 1#range-spec needs one element, and an invalid set rejects.
        return UNSATISFIABLE
    if total > size:
        return FULL  # more bytes than the file: ignore (§14.2 DoS defence, as nginx/Go)
    return RangeDecision(RangeKind.PARTIAL, tuple(ranges))


# Boundary characters (RFC 2046 §5.1.1 bchars) that are also token characters, so the
# Content-Type parameter needs no quoting; minus "'", which parsers read as RFC 2231 syntax.
_BOUNDARY_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+_-.")


def multipart_content_type(boundary: str) -> str:
    """Content-Type of a multipart/byteranges response (§14.6)."""
    return f"multipart/byteranges; boundary={boundary}"


def multipart_plan(
    ranges: Sequence[ByteRange], size: int, content_type: str, boundary: str
) -> tuple[list[bytes | ByteRange], int]:
    """The multipart/byteranges body (§14.6) as segments, and its total length.

    Segments alternate literal bytes (delimiters and part headers) and `ByteRange`s to be
    sent from the file. The layout is nginx's: every delimiter is preceded by CRLF
    (including the first, which multipart parsers read as an empty preamble), each part
    has `Content-Type` (omitted when `content_type` is empty) and `Content-Range`, and the
    body ends with `CRLF --boundary-- CRLF`.

    The boundary must be 1-70 characters (RFC 2046 §5.1.1) that need no quoting in the
    Content-Type parameter (letters, digits, `+_-.`); ValueError otherwise, or for ranges
    that are empty or outside the file.
    """
    if not 1 <= len(boundary) <= 70 or not _BOUNDARY_CHARS.issuperset(boundary):
        raise ValueError(f"unusable multipart boundary: {boundary!r}")
    if not ranges:
        raise ValueError("a multipart/byteranges body needs at least one range")
    if "\r" in content_type or "\n" in content_type:
        raise ValueError(f"content type contains a line break: {content_type!r}")
    head = f"\r\n--{boundary}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    segments: list[bytes | ByteRange] = []
    total = 0
    for byte_range in ranges:
        if not 0 <= byte_range.start <= byte_range.end < size:
            raise ValueError(f"{byte_range} is not within a {size}-byte file")
        part_head = f"{head}Content-Range: {byte_range.content_range(size)}\r\n\r\n".encode(
            "latin-1"
        )
        segments.append(part_head)
        segments.append(byte_range)
        total += len(part_head) + byte_range.length
    closing = f"\r\n--{boundary}--\r\n".encode("latin-1")
    segments.append(closing)
    return segments, total + len(closing)
