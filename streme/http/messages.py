"""Requests as handlers see them, responses as handlers build them, and JSON errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import msgspec

JSON_TYPE = b"application/json"


@dataclass(slots=True)
class Request:
    method: str
    target: str  # raw request-target as sent
    path: str  # percent-decoded path
    query_string: str
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes = b""  # the request's content (bounded: http.max_body_bytes, or an upload cap)
    client: str = ""  # the client's address (IP), set by the connection
    received: float = 0.0  # time.perf_counter() when the request was complete
    _query: dict[str, str] | None = field(default=None, repr=False)

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; the first occurrence of a name wins."""
        if self._query is None:
            parsed: dict[str, str] = {}
            if self.query_string:
                for name, value in parse_qsl(self.query_string, keep_blank_values=True):
                    parsed.setdefault(name, value)
            self._query = parsed
        return self._query


@dataclass(slots=True)
class FileSegment:
    """`count` bytes of the body's file starting at `offset`.

    `__len__` lets h11 frame the segment without the bytes (data passthrough).
    """

    offset: int
    count: int

    def __len__(self) -> int:
        return self.count


@dataclass(slots=True)
class FileBody:
    """A body made of literal bytes and segments of the open file `fd`.

    `release` gives the file back (closes it, or drops a reference to a shared
    descriptor); `close()` calls it exactly once.
    """

    fd: int
    parts: list[bytes | FileSegment]
    length: int
    release: Callable[[], None]
    _closed: bool = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.release()


@dataclass(slots=True)
class StreamBody:
    """A body of `length` bytes produced asynchronously (from the swarm).

    `open()` starts the producer and returns its chunks; it is only called when the
    body is really sent (never for HEAD), so building the response costs nothing.
    `release` stops the producer, whether the body was sent, cut short, or never opened.
    """

    length: int
    open: Callable[[], AsyncIterator[bytes]]
    release: Callable[[], None]
    _closed: bool = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.release()


Body = bytes | FileBody | StreamBody


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: Body = b""
    error: str = ""  # the error's code, for a JSON error (error_response)

    @property
    def content_length(self) -> int:
        body = self.body
        return len(body) if isinstance(body, bytes) else body.length

    def release(self) -> None:
        """Free what the body holds (an open file, a producer) whether or not it was sent."""
        if not isinstance(self.body, bytes):
            self.body.close()


class HandOff:
    """A handler's answer meaning "not here": the connection goes, with the bytes read from
    it, to the process that owns the swarm (handoff.py), which answers the request."""

    __slots__ = ()


HAND_OFF = HandOff()

Answer = Response | HandOff
Handler = Callable[[Request, dict[str, str]], "Answer | Awaitable[Answer]"]


class _ErrorBody(msgspec.Struct):
    error: str
    message: str


_encoder = msgspec.json.Encoder()


def json_response(
    status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    body = _encoder.encode(payload)
    return Response(status, [(b"Content-Type", JSON_TYPE), *(headers or [])], body)


def error_response(
    status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    """The JSON error every route answers with: {"error": "<code>", "message": "..."}."""
    response = json_response(status, _ErrorBody(code, message), headers)
    response.error = code
    return response
