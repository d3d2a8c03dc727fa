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
from streme.http.representation import Representation, plan


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
    rep = Representation(size, content_type, make_etag(mtime_ns, size), mtime_ns // 1_000_000_000)
    planned = plan(request.method, request.headers, rep)
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
