"""A file as an HTTP response: validators, preconditions, ranges, multipart (RFC 9110).

How this works: given an open file and its fstat facts, build the `Response` a GET or
HEAD deserves, in the RFC's order: preconditions (§13.2.2: If-Match, If-Unmodified-Since,
If-None-Match, If-Modified-Since), then If-Range (§13.1.5) deciding whether Range is
honoured, then Range (§14.2): one range -> 206 with Content-Range, several ->
multipart/byteranges (§14.6), none satisfiable -> 416 with `Content-Range: bytes */SIZE`.
The body is a `FileBody` of segments that the connection sends zero-copy; the file
descriptor is owned by the response and closed after sending (or right here when the
answer has no body).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from streme.http.conditional import (
    Precondition,
    evaluate_preconditions,
    if_range_allows_range,
    make_etag,
)
from streme.http.dates import format_http_date
from streme.http.messages import FileBody, FileSegment, Request, Response, error_response
from streme.http.ranges import (
    ByteRange,
    RangeKind,
    evaluate_range,
    multipart_content_type,
    multipart_plan,
    unsatisfied_content_range,
)

ACCEPT_RANGES = (b"Accept-Ranges", b"bytes")

_http_dates: dict[int, bytes] = {}


def _last_modified(seconds: int) -> bytes:
    """Last-Modified bytes, memoised: a busy server formats the same few mtimes."""
    value = _http_dates.get(seconds)
    if value is None:
        if len(_http_dates) >= 4096:
            _http_dates.clear()
        value = _http_dates[seconds] = format_http_date(seconds).encode("ascii")
    return value


def file_response(
    request: Request,
    *,
    fd: int,
    size: int,
    mtime_ns: int,
    content_type: str,
    release: Callable[[], None],
) -> Response:
    """Answer `request` from the open file `fd`.

    The response takes over the file: `release` is called once when it is no longer
    needed — here, for answers without a body, or after the body has been sent.
    """
    headers = request.headers
    etag = make_etag(mtime_ns, size)
    last_modified = mtime_ns // 1_000_000_000
    validators = [
        (b"ETag", etag.encode("ascii")),
        (b"Last-Modified", _last_modified(last_modified)),
    ]
    outcome = evaluate_preconditions(
        request.method,
        etag=etag,
        last_modified=last_modified,
        if_match=headers.get("if-match"),
        if_none_match=headers.get("if-none-match"),
        if_modified_since=headers.get("if-modified-since"),
        if_unmodified_since=headers.get("if-unmodified-since"),
    )
    if outcome is not Precondition.PROCEED:
        release()
        if outcome is Precondition.NOT_MODIFIED:
            return Response(304, validators)
        return error_response(412, "precondition_failed", "a precondition header did not hold")

    range_header = headers.get("range")
    if range_header is not None and not if_range_allows_range(
        headers.get("if-range"), etag=etag, last_modified=last_modified
    ):
        range_header = None
    decision = evaluate_range(range_header, size)
    content_type_header = (b"Content-Type", content_type.encode("latin-1"))

    if decision.kind is RangeKind.UNSATISFIABLE:
        release()
        response = error_response(
            416,
            "range_not_satisfiable",
            f"no requested range overlaps the {size}-byte file",
            [(b"Content-Range", unsatisfied_content_range(size).encode("ascii")), ACCEPT_RANGES],
        )
        return response

    common = [content_type_header, ACCEPT_RANGES, *validators]
    if decision.kind is RangeKind.FULL:
        if size == 0:
            release()
            return Response(200, common, b"")
        return Response(200, common, FileBody(fd, [FileSegment(0, size)], size, release))

    ranges = decision.ranges
    if len(ranges) == 1:
        only = ranges[0]
        headers_out = [
            content_type_header,
            ACCEPT_RANGES,
            *validators,
            (b"Content-Range", only.content_range(size).encode("ascii")),
        ]
        body = FileBody(fd, [FileSegment(only.start, only.length)], only.length, release)
        return Response(206, headers_out, body)

    boundary = secrets.token_hex(10)
    plan, length = multipart_plan(ranges, size, content_type, boundary)
    parts: list[bytes | FileSegment] = [
        FileSegment(p.start, p.length) if isinstance(p, ByteRange) else p for p in plan
    ]
    headers_out = [
        (b"Content-Type", multipart_content_type(boundary).encode("latin-1")),
        ACCEPT_RANGES,
        *validators,
    ]
    return Response(206, headers_out, FileBody(fd, parts, length, release))
