"""The one response planner: what a GET or HEAD of a representation gets (RFC 9110). Pure.

How this works: `plan()` takes the request's method and headers and what the source
says about the representation (size, type, validators, whether it can send several
ranges) and decides, in the RFC's order: preconditions (§13.2.2: If-Match,
If-Unmodified-Since, If-None-Match, If-Modified-Since) -> 304 or 412; If-Range
(§13.1.5) deciding whether Range is honoured; Range (§14.2): none -> 200, one -> 206
with Content-Range, several -> multipart/byteranges (§14.6) or, from a source that
cannot interleave them, the whole representation (200, which §14.2 allows), none
satisfiable -> 416 with `Content-Range: bytes */SIZE`. The plan lists the response's
headers and its body as pieces: literal bytes (multipart boundaries) and byte ranges of
the representation. The cache path sends those ranges from its open file
(`fileresponse.py`), the swarm path from a piece reader (`p2phandler.py`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from streme.http.conditional import Precondition, evaluate_preconditions, if_range_allows_range
from streme.http.dates import format_http_date
from streme.http.ranges import (
    ByteRange,
    RangeKind,
    evaluate_range,
    multipart_content_type,
    multipart_plan,
    unsatisfied_content_range,
)

ACCEPT_RANGES = (b"Accept-Ranges", b"bytes")

Header = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Representation:
    size: int
    content_type: str
    etag: str  # strong (§8.8.3)
    # Epoch seconds; None where the source has no modification time (a torrent's
    # content never changes: its ETag says all). Date preconditions are then ignored.
    last_modified: int | None
    # The source can send several ranges in one response (multipart/byteranges).
    multipart: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    status: int
    headers: list[Header]
    # The body: literal bytes and ranges of the representation, in order (empty for
    # 304, 412, 416 and an empty file). A HEAD gets the same plan and sends no body.
    body: list[bytes | ByteRange]
    length: int  # the body's bytes
    # For 412 and 416: the JSON error's code and message (the headers are its extra ones).
    error: tuple[str, str] | None = None


_http_dates: dict[int, bytes] = {}
# Representation -> its validator and 200/206 header fields: they depend only on the
# file (size, time, type), and a busy server answers the same few files.
_fields: dict[Representation, tuple[list[Header], list[Header]]] = {}
CONDITIONAL = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


def http_date(seconds: int) -> bytes:
    """An HTTP-date, memoised: a busy server formats the same few mtimes."""
    value = _http_dates.get(seconds)
    if value is None:
        if len(_http_dates) >= 4096:
            _http_dates.clear()
        value = _http_dates[seconds] = format_http_date(seconds).encode("ascii")
    return value


def header_fields(rep: Representation) -> tuple[list[Header], list[Header]]:
    """`rep`'s validators, and the fields every 200 and 206 of it carries (memoised:
    callers copy the lists before adding to them)."""
    fields = _fields.get(rep)
    if fields is None:
        validators: list[Header] = [(b"ETag", rep.etag.encode("ascii"))]
        if rep.last_modified is not None:
            validators.append((b"Last-Modified", http_date(rep.last_modified)))
        content_type = (b"Content-Type", rep.content_type.encode("latin-1"))
        if len(_fields) >= 4096:
            _fields.clear()
        fields = _fields[rep] = (validators, [content_type, ACCEPT_RANGES, *validators])
    return fields


def plan(method: str, headers: dict[str, str], rep: Representation) -> Plan:
    """What to answer a GET or HEAD of `rep` with. `headers`: lower-case names."""
    validators, common = header_fields(rep)
    if any(name in headers for name in CONDITIONAL):
        dated = rep.last_modified is not None
        outcome = evaluate_preconditions(
            method,
            etag=rep.etag,
            last_modified=rep.last_modified or 0,
            if_match=headers.get("if-match"),
            if_none_match=headers.get("if-none-match"),
            if_modified_since=headers.get("if-modified-since") if dated else None,
            if_unmodified_since=headers.get("if-unmodified-since") if dated else None,
        )
        if outcome is Precondition.NOT_MODIFIED:
            return Plan(304, validators[:], [], 0)
        if outcome is Precondition.PRECONDITION_FAILED:
            error = ("precondition_failed", "a precondition header did not hold")
            return Plan(412, [], [], 0, error)

    size = rep.size
    range_header = headers.get("range")
    if range_header is not None and not if_range_allows_range(
        headers.get("if-range"), etag=rep.etag, last_modified=rep.last_modified
    ):
        range_header = None
    decision = evaluate_range(range_header, size)
    if decision.kind is RangeKind.UNSATISFIABLE:
        unsatisfied = (b"Content-Range", unsatisfied_content_range(size).encode("ascii"))
        error = ("range_not_satisfiable", f"no requested range overlaps the {size}-byte file")
        return Plan(416, [unsatisfied, ACCEPT_RANGES], [], 0, error)

    ranges = decision.ranges
    if decision.kind is RangeKind.FULL or (len(ranges) > 1 and not rep.multipart):
        body: list[bytes | ByteRange] = [ByteRange(0, size - 1)] if size else []
        return Plan(200, common[:], body, size)
    if len(ranges) == 1:
        only = ranges[0]
        content_range = (b"Content-Range", b"bytes %d-%d/%d" % (only.start, only.end, size))
        return Plan(206, [*common, content_range], [only], only.length)
    boundary = secrets.token_hex(10)
    parts, length = multipart_plan(ranges, size, rep.content_type, boundary)
    multipart_type = (b"Content-Type", multipart_content_type(boundary).encode("latin-1"))
    return Plan(206, [multipart_type, ACCEPT_RANGES, *validators], list(parts), length)
