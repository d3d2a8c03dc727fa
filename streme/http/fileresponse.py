"""A cached file as an HTTP response: the planner's answer with the file as its body.

How this works: `representation.plan` decides status, headers and body ranges from the
file's fstat facts (its ETag from mtime and size, Last-Modified in whole seconds); this
attaches the open file: each planned range becomes a `FileSegment` of a `FileBody` that
the connection sends zero-copy. The response owns the descriptor: `release` is called
once, after the body is sent, or right here when the answer has no body.
"""

from __future__ import annotations

from collections.abc import Callable

from streme.http.conditional import make_etag
from streme.http.messages import FileBody, FileSegment, Request, Response, error_response
from streme.http.ranges import ByteRange
from streme.http.representation import Header, Representation, plan

# (size, mtime, type) -> the file's Representation: a busy server answers the same few files.
_representations: dict[tuple[int, int, str], Representation] = {}


def representation(size: int, mtime_ns: int, content_type: str) -> Representation:
    """A file version's representation: its ETag from mtime and size, Last-Modified in
    whole seconds (memoised)."""
    key = (size, mtime_ns, content_type)
    rep = _representations.get(key)
    if rep is None:
        if len(_representations) >= 4096:
            _representations.clear()
        etag = make_etag(mtime_ns, size)
        rep = _representations[key] = Representation(
            size, content_type, etag, mtime_ns // 1_000_000_000
        )
    return rep


def file_response(
    request: Request,
    *,
    fd: int,
    size: int,
    mtime_ns: int,
    content_type: str,
    release: Callable[[], None],
) -> Response:
    """Answer `request` from the open file `fd`."""
    planned = plan(request.method, request.headers, representation(size, mtime_ns, content_type))
    if planned.error is not None:
        release()
        return error_response(planned.status, *planned.error, planned.headers)
    if not planned.body:
        release()
        return Response(planned.status, planned.headers, b"")
    parts: list[bytes | FileSegment] = [
        FileSegment(p.start, p.length) if isinstance(p, ByteRange) else p for p in planned.body
    ]
    return Response(planned.status, planned.headers, FileBody(fd, parts, planned.length, release))


def bytes_response(
    request: Request, data: bytes, content_type: str, etag: str, extra: list[Header] | None = None
) -> Response:
    """Answer `request` from `data` held in memory (a page, a converted subtitle), with
    the same planner as a file: conditional requests, ranges, HEAD. `etag` is strong."""
    planned = plan(
        request.method, request.headers, Representation(len(data), content_type, etag, None)
    )
    if planned.error is not None:
        return error_response(planned.status, *planned.error, planned.headers)
    headers = planned.headers + (extra or [])
    body = b"".join(
        data[p.start : p.end + 1] if isinstance(p, ByteRange) else p for p in planned.body
    )
    return Response(planned.status, headers, body)
