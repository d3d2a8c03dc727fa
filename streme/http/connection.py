"""One HTTP/1.1 connection's state, sans I/O: bytes in -> requests, refusals, keep-alive
decisions and the next deadline. No sockets, no event loop: `HTTPProtocol`
(protocol.py) feeds it bytes and the time, and acts on what it returns. Tested without
sockets in tests/unit/test_connection.py, the way h11 tests itself.

How this works:
- `receive(data, now)` hands bytes to an `h11.Connection` used as the request parser
  (b"" is the end of input). Empty lines before a request line are dropped (RFC 9112
  2.2, as nginx does).
- `next_event()` pulls h11's events into one of: `NEED_DATA`; `CONTINUE` (write
  `100 Continue`, then ask again); `Ready(request)` (head and any small body are in:
  answer it; the connection is now `busy`); `Refused(status, code, message)` (answer
  that, then close: the framing is in doubt or a limit was hit); `CLOSED` (the client
  ended its input between requests).
- After each request the parser is replaced by a fresh one fed with h11's
  `trailing_data` (pipelined bytes): cheaper than h11's `start_next_cycle`, and it
  needs no response to go through h11 (we frame our own; framing.py).
- `response_done(now)` says whether to keep the connection open (h11's rule: HTTP/1.1
  without `Connection: close`; plus the per-connection request cap and shutdown).
- One deadline at a time: `request_head_timeout` from the first byte of a request (or
  the connection's opening) to the end of its head and body, the slowloris guard;
  `keep_alive_timeout` while idle between requests; none while a response is busy.
  `expired(now)` says what a timer that fired means.
- With `keep_raw`, the bytes of the request being answered, and everything received
  after them, are kept for `raw_request()`: a worker hands them, with the socket, to
  the process that owns the swarm (handoff.py).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import h11

from streme.http.messages import Request
from streme.http.requestcheck import Refusal, body_too_large, refusal, wants_continue

# RFC 9112 2.2: empty lines before a request line are ignored (nginx skips any CR and LF).
EMPTY_LINES: Final = b"\r\n"


@dataclass(frozen=True, slots=True)
class Limits:
    max_head_bytes: int
    max_body_bytes: int
    max_requests: int  # per connection
    head_timeout: float  # seconds from a request's first byte to its end
    idle_timeout: float  # seconds idle between requests
    # POST targets (paths, no query) that take larger bodies, and their caps in bytes
    # (a .torrent uploaded to the API); every other request gets `max_body_bytes`.
    uploads: Mapping[str, int] = field(default_factory=dict)


class Signal(enum.Enum):
    NEED_DATA = "need-data"
    CONTINUE = "continue"  # write `100 Continue`, then call next_event() again
    CLOSED = "closed"  # the client ended its input between requests


NEED_DATA: Final = Signal.NEED_DATA
CONTINUE: Final = Signal.CONTINUE
CLOSED: Final = Signal.CLOSED


@dataclass(frozen=True, slots=True)
class Ready:
    request: Request


Refused = Refusal  # answer with it, then close
Event = Signal | Ready | Refusal


class Expiry(enum.Enum):
    NOTHING = "nothing"  # no deadline is due (busy, or it moved later): see `deadline`
    CLOSE = "close"  # idle too long, or a connection that never sent a byte: close quietly
    TIMEOUT = "timeout"  # a request started but did not finish in time: answer 408


class _Phase(enum.Enum):
    HEAD = "head"  # waiting for (the rest of) a request
    IDLE = "idle"  # between requests, nothing received
    BUSY = "busy"  # a response is being produced


class HTTPConnection:
    """See the module docstring. `now` is a monotonic clock in seconds."""

    __slots__ = (
        "_body",
        "_body_limit",
        "_body_seen",
        "_closing",
        "_keep_alive",
        "_keep_raw",
        "_limits",
        "_parser",
        "_pending",
        "_phase",
        "_raw",
        "_request_raw",
        "_started",
        "deadline",
        "requests",
    )

    def __init__(self, limits: Limits, now: float, *, keep_raw: bool = False) -> None:
        self._limits = limits
        self._parser = self._new_parser()
        self._phase = _Phase.HEAD
        self._started = False  # bytes of the next request have arrived
        self._pending: Request | None = None  # a head whose body is still coming
        self._body_seen = 0
        self._body_limit = limits.max_body_bytes
        self._body: list[bytes] = []
        self._keep_alive = True
        self._closing = False
        self._keep_raw = keep_raw
        self._raw = bytearray()  # bytes received since the current request began
        self._request_raw = b""  # the bytes of the request being answered
        self.requests = 0
        self.deadline: float | None = now + limits.head_timeout

    def _new_parser(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._limits.max_head_bytes)

    # -- input ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._phase is _Phase.BUSY

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed (pipelined while a response is busy)."""
        return len(self._parser.trailing_data[0])

    def receive(self, data: bytes, now: float) -> None:
        if data and not self._started:
            data = data.lstrip(EMPTY_LINES)
            if not data:
                return
            self._started = True
            if self._phase is _Phase.IDLE:
                self._phase = _Phase.HEAD
                self.deadline = now + self._limits.head_timeout
        if self._keep_raw:
            self._raw += data
        self._parser.receive_data(data)

    def next_event(self) -> Event:
        """The next thing to act on; NEED_DATA until more bytes arrive (or while busy)."""
        if self._phase is _Phase.BUSY:
            return NEED_DATA
        parser = self._parser
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as exc:
                return self._refuse(self._protocol_error(exc))
            kind = type(event)
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return NEED_DATA
            if kind is h11.Request:
                assert isinstance(event, h11.Request)
                outcome = self._on_head(event)
                if outcome is not None:
                    return outcome
            elif kind is h11.Data:
                assert isinstance(event, h11.Data)
                self._body_seen += len(event.data)
                if self._body_seen > self._body_limit:
                    return self._refuse(body_too_large(self._body_limit))
                self._body.append(bytes(event.data))
            elif kind is h11.EndOfMessage:
                request = self._pending
                assert request is not None
                self._pending = None
                if self._body:
                    request.body = b"".join(self._body)
                    self._body = []
                self._start_response()
                return Ready(request)
            elif kind is h11.ConnectionClosed:
                self.deadline = None
                return CLOSED

    def _on_head(self, event: h11.Request) -> Signal | Refusal | None:
        headers: dict[str, str] = {}
        # h11 bounds only heads that arrive in pieces; one read whole is measured here.
        head_size = len(event.method) + len(event.target) + 12
        for raw_name, value in event.headers.raw_items():
            head_size += len(raw_name) + len(value) + 4
            key = raw_name.decode("latin-1").lower()
            text = value.decode("latin-1")
            previous = headers.get(key)
            headers[key] = text if previous is None else f"{previous}, {text}"
        # h11's keep-alive rule: HTTP/1.1 (or a later 1.x, answered as 1.1), and no `close`
        # token in Connection (RFC 9112 9.3).
        connection = headers.get("connection")
        self._keep_alive = event.http_version >= b"1.1" and not (
            connection is not None
            and "close" in (token.strip().lower() for token in connection.split(","))
        )
        self._body_seen = 0
        self._body = []
        self._body_limit = self._limits.max_body_bytes
        if self._limits.uploads and event.method == b"POST":
            path = event.target.partition(b"?")[0].decode("latin-1")
            self._body_limit = self._limits.uploads.get(path, self._body_limit)
        self._pending = Request(
            event.method.decode("ascii", "replace"), event.target.decode("latin-1"), "", "", headers
        )
        refused = refusal(
            event.method,
            event.target,
            event.http_version,
            headers,
            head_size,
            max_head_bytes=self._limits.max_head_bytes,
            max_body_bytes=self._body_limit,
        )
        if refused is not None:
            return self._refuse(refused)
        if wants_continue(event.http_version, headers):
            return CONTINUE
        return None

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> Refusal:
        status = exc.error_status_hint
        if status == 431 and b"\n" not in self._parser.trailing_data[0]:
            return Refusal(414, "uri_too_long", "request target is too long")
        if status == 431:
            return Refusal(431, "head_too_large", "request head is too large")
        return Refusal(status, "bad_request", f"malformed request: {exc}")

    def _refuse(self, refused: Refusal) -> Refusal:
        self._phase = _Phase.BUSY  # nothing more is read: the connection closes
        self._keep_alive = False
        self.deadline = None
        return refused

    def _start_response(self) -> None:
        """The request is in: hand what followed it to a fresh parser."""
        self._phase = _Phase.BUSY
        self.deadline = None
        self.requests += 1
        data, closed = self._parser.trailing_data
        self._parser = self._new_parser()
        if self._keep_raw:
            after = len(data)
            raw = bytes(self._raw)
            self._request_raw = raw[: len(raw) - after] if after else raw
            self._raw = bytearray(data)
        data = data.lstrip(EMPTY_LINES)
        self._started = bool(data)
        if data:
            self._parser.receive_data(data)
        if closed:
            self._parser.receive_data(b"")

    # -- output --------------------------------------------------------------------------
    def will_keep_alive(self) -> bool:
        """Whether the response being sent leaves the connection open (else it says
        `Connection: close`)."""
        return self._keep_alive and not self._closing and self.requests < self._limits.max_requests

    def close_after_response(self) -> None:
        """Shutdown: the response in flight is the last."""
        self._closing = True

    def response_done(self, now: float) -> bool:
        """The response is out. True: keep the connection for the next request."""
        if not self.will_keep_alive():
            self.deadline = None
            return False
        if self._started:  # (part of) the next request is already here
            self._phase = _Phase.HEAD
            self.deadline = now + self._limits.head_timeout
        else:
            self._phase = _Phase.IDLE
            self.deadline = now + self._limits.idle_timeout
        return True

    def raw_request(self) -> bytes:
        """The request being answered as received, and all bytes after it (`keep_raw`)."""
        return self._request_raw + bytes(self._raw)

    # -- time ----------------------------------------------------------------------------
    def expired(self, now: float) -> Expiry:
        """A timer fired at `now`: what the connection must do."""
        deadline = self.deadline
        if deadline is None or now < deadline or self._phase is _Phase.BUSY:
            return Expiry.NOTHING
        self.deadline = None
        if self._phase is _Phase.HEAD and self._started:
            self._refuse(Refusal(408, "request_timeout", "request head not received in time"))
            return Expiry.TIMEOUT
        return Expiry.CLOSE
