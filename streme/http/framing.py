"""Response framing: status line and header block bytes (RFC 9112 §4, §5). Pure.

Why not h11's `send`: h11 parses every request here, but framing our responses through
it cost ~30 us a request (header re-validation and its state machine), more than half
of a cache hit's CPU. Our responses have a handful of shapes, always with a known
Content-Length, and every header value is built from integers and fixed tables (never
from request bytes), so the head is a join of precomputed pieces.
See docs/decisions/0002-h11-parses-we-frame.md.
"""

from __future__ import annotations

from streme.http.status import REASONS

_STATUS_LINES: dict[int, bytes] = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, phrase) for code, phrase in REASONS.items()
}
CRLF = b"\r\n"


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d \r\n" % status
    return line


def encode_head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    """`HTTP/1.1 <status> <reason>` and `Name: value` lines, ending with an empty line."""
    pieces = [status_line(status)]
    for name, value in headers:
        pieces.append(name + b": " + value + CRLF)
    pieces.append(CRLF)
    return b"".join(pieces)
