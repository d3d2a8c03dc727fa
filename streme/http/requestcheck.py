"""What a request head must satisfy before it is answered: the framing rules h11 leaves to
the server. Pure.

How this works: h11 parses the head and frames the body; it accepts some heads that RFC
9112 says a server must refuse or treat as faulty framing, because a proxy in front of
the server may read them differently (request smuggling). `refusal()` takes the parsed
head and returns the error to send (the connection is then closed), or None:

- the head over `max_head_bytes`: 414 when the request line alone is (RFC 9110 15.5.15),
  else 431 (RFC 6585 5);
- a major version other than 1: 505 (RFC 9110 2.5, 15.6.6). HTTP/1.x with x > 1 is
  answered as 1.1;
- Transfer-Encoding with Content-Length: 400 (RFC 9112 6.1: "ought to be handled as an
  error"; the connection MUST close). h11 would read the chunked body and take what the
  Content-Length covered beyond it as the next request;
- Transfer-Encoding in an HTTP/1.0 request: 400 (RFC 9112 6.1: faulty framing);
- a Content-Length over `max_body_bytes`: 413 at once, not after reading that much.

h11 itself rejects the rest of RFC 9112's framing faults (conflicting Content-Lengths,
whitespace before a colon, bare CR, invalid chunk sizes, codings other than chunked,
a missing or repeated Host): `tests/http/test_hostile.py` sends each to streme and
to nginx and records both answers.

`wants_continue()` says whether the client waits for `100 Continue` before it sends the
body (RFC 9110 10.1.1: the server MUST send it, or a final status, at once).
"""

from __future__ import annotations

from dataclasses import dataclass

# The request line's fixed part: two spaces, "HTTP/x.y" and CRLF.
REQUEST_LINE_OVERHEAD = 12


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    code: str
    message: str


def refusal(
    method: bytes,
    target: bytes,
    http_version: bytes,
    headers: dict[str, str],
    head_size: int,
    *,
    max_head_bytes: int,
    max_body_bytes: int,
) -> Refusal | None:
    """The error to answer this request head with (then close), or None to go on.

    `headers`: lower-case names, repeated fields joined with ", "; `head_size`: the
    head's bytes as received."""
    if head_size > max_head_bytes:
        if len(method) + len(target) + REQUEST_LINE_OVERHEAD > max_head_bytes:
            return Refusal(414, "uri_too_long", "request target is too long")
        return Refusal(431, "head_too_large", "request head is too large")
    if not http_version.startswith(b"1."):
        version = http_version.decode("ascii", "replace")
        return Refusal(
            505, "http_version_not_supported", f"HTTP/{version} is not supported; use HTTP/1.1"
        )
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            return Refusal(
                400, "bad_request", "both Transfer-Encoding and Content-Length: ambiguous framing"
            )
        if http_version == b"1.0":
            return Refusal(400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request")
    length = headers.get("content-length")
    if length is not None and declared_length(length) > max_body_bytes:
        return body_too_large(max_body_bytes)
    return None


def body_too_large(limit: int) -> Refusal:
    return Refusal(413, "body_too_large", f"the request body is over this route's {limit} bytes")


def declared_length(value: str) -> int:
    """A Content-Length h11 accepted: one number, or the same one repeated ("5, 5")."""
    return int(value.partition(",")[0])


def wants_continue(http_version: bytes, headers: dict[str, str]) -> bool:
    """The client sent `Expect: 100-continue` and holds back a body until told to go on."""
    expect = headers.get("expect")
    if expect is None or http_version == b"1.0" or "100-continue" not in expect.lower():
        return False
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and declared_length(length) > 0)
