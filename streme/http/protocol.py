"""One HTTP/1.1 connection: an asyncio Protocol that parses with h11 and answers requests.

How this works:
- Bytes from the transport go into `h11.Connection`; `_process()` pulls events until h11
  needs more data. A complete request (head + any small body, which is read and dropped)
  is routed; the handler returns a `Response`, or an awaitable of one (then reading is
  paused and a task awaits it).
- Responses are framed by h11 (`send` for the head, a length placeholder through
  `send_with_data_passthrough` for file bodies) and written by `body.py`'s writers:
  zero-copy `sendfile` or the copying fallback. The common case — a small range whose
  bytes fit in the socket buffer — completes inside `data_received` with no task at all.
- After a response: close on `MUST_CLOSE`, else `start_next_cycle()` and carry on with
  any pipelined request already buffered.
- Timers: one per connection. `request_head_timeout` runs from the first byte of a
  request (or the connection's opening) to the end of its head — the slowloris guard;
  `keep_alive_timeout` runs while idle between requests. `write_timeout` bounds each
  wait for a client to accept bytes.
- Errors follow h11's canonical loop: an error response only while our state is IDLE or
  SEND_RESPONSE, otherwise close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

import h11

from streme.http import routing
from streme.http.body import CopyWriter, FileTruncatedError, ZeroCopyWriter
from streme.http.flow import FlowControl
from streme.http.messages import FileBody, Request, Response, error_response
from streme.http.status import reason
from streme.http.urls import BadTarget, split_target

if TYPE_CHECKING:
    from streme.http.server import ServerState

log = logging.getLogger("streme.http")
access_log = logging.getLogger("streme.access")

# Methods RFC 9110 defines (plus PATCH): unknown ones get 501, known ones 404/405 by route.
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
NO_BODY_STATUSES: Final = frozenset({204, 304})
SERVER_HEADER: Final = (b"server", b"streme")
CLOSE_HEADER: Final = (b"connection", b"close")


class _Length:
    """A stand-in body of a given length: h11 frames it, the writers send the real bytes."""

    __slots__ = ("_n",)

    def __init__(self, n: int) -> None:
        self._n = n

    def __len__(self) -> int:
        return self._n


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._config = state.config
        self._loop = state.loop
        self._conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=state.config.max_head_bytes
        )
        self._transport: asyncio.Transport | None = None
        self._flow: FlowControl | None = None
        self._sock: socket.socket | None = None  # dup of the connection's fd, for sendfile
        self._peer = "-"
        self._busy = False  # a request is being answered
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_is_head = False
        self._partial = False  # bytes of a request head have arrived
        self._requests = 0
        self._request: Request | None = None
        self._request_started = 0.0
        self._body_seen = 0
        self._response: Response | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._flow = FlowControl(
            transport, high=self._config.write_buffer_high, low=self._config.write_buffer_low
        )
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"
        self._state.add(self)
        self._arm_timer(head=True)

    def data_received(self, data: bytes) -> None:
        self._conn.receive_data(data)
        if not self._busy:
            self._partial = True
            if not self._timer_is_head:
                self._arm_timer(head=True)
        if not self._busy:
            self._process()

    def eof_received(self) -> bool:
        self._conn.receive_data(b"")
        if not self._busy:
            self._process()
        return True  # keep writing: a half-closed client still gets its response

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.discard(self)
        self._cancel_timer()
        if self._flow is not None:
            self._flow.connection_lost()
        self._transport = None
        if self._task is not None and not self._task.done():
            self._task.cancel()  # its cleanup releases the body and the dup'd socket
        else:
            self._release()
            self._close_dup()

    def pause_writing(self) -> None:
        if self._flow is not None:
            self._flow.pause_writing()

    def resume_writing(self) -> None:
        if self._flow is not None:
            self._flow.resume_writing()

    # -- public (server) -----------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return not self._busy

    def shutdown(self) -> None:
        """Close now if idle, else after the response in flight."""
        self._closing = True
        if not self._busy and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- request loop --------------------------------------------------------------------
    def _process(self) -> None:
        conn = self._conn
        while not self._busy and self._transport is not None:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            kind = type(event)
            if kind is h11.Request:
                assert isinstance(event, h11.Request)
                self._on_request(event)
            elif kind is h11.Data:
                assert isinstance(event, h11.Data)
                self._body_seen += len(event.data)
                if self._body_seen > self._config.max_body_bytes:
                    self._send_error_and_close(
                        413, "body_too_large", "request bodies are not accepted on this route"
                    )
                    return
            elif kind is h11.EndOfMessage:
                self._dispatch()
            elif kind is h11.ConnectionClosed:
                self._transport.close()
                return

    def _on_request(self, event: h11.Request) -> None:
        self._cancel_timer()
        self._partial = False
        self._request_started = time.perf_counter()
        self._body_seen = 0
        method = event.method.decode("ascii", "replace")
        target = event.target.decode("latin-1")
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            previous = headers.get(key)
            headers[key] = text if previous is None else f"{previous}, {text}"
        self._request = Request(method, target, "", "", headers)

    def _dispatch(self) -> None:
        request = self._request
        assert request is not None
        self._busy = True
        self._requests += 1
        try:
            request.path, request.query_string = split_target(request.target)
        except BadTarget as exc:
            self._respond(error_response(400, "bad_request", str(exc)))
            return
        if request.method not in KNOWN_METHODS:
            self._respond(
                error_response(501, "not_implemented", f"method {request.method} is not supported")
            )
            return
        found = self._state.router.resolve(request.method, request.path)
        if isinstance(found, routing.NotFound):
            self._respond(error_response(404, "not_found", f"no route for {request.path}"))
            return
        if isinstance(found, routing.MethodNotAllowed):
            allow = ", ".join(found.allow).encode()
            self._respond(
                error_response(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed on {request.path}",
                    [(b"allow", allow)],
                )
            )
            return
        try:
            result = found.handler(request, found.params)
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.target)
            result = error_response(500, "internal_error", "the server failed to answer")
        if isinstance(result, Response):
            self._respond(result)
        else:
            assert self._flow is not None
            self._flow.pause_reading()
            self._task = self._loop.create_task(self._await_handler(result))

    async def _await_handler(self, pending: Awaitable[Response]) -> None:
        request = self._request
        assert request is not None
        try:
            response = await pending
        except asyncio.CancelledError:
            self._task = None
            self._release()
            self._close_dup()
            raise
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.target)
            response = error_response(500, "internal_error", "the server failed to answer")
        self._task = None
        self._respond(response, in_task=True)

    # -- responses -----------------------------------------------------------------------
    def _respond(self, response: Response, *, in_task: bool = False) -> None:
        """Frame and start writing `response`; finish now if the socket takes it all."""
        request = self._request
        assert request is not None
        self._response = response
        transport = self._transport
        if transport is None:
            self._release()
            return
        status = response.status
        headers = response.headers
        headers.append((b"date", self._state.date_header()))
        headers.append(SERVER_HEADER)
        body = response.body
        length = response.content_length
        if status not in NO_BODY_STATUSES:
            headers.append((b"content-length", str(length).encode()))
        if self._closing or self._requests >= self._config.max_requests_per_connection:
            headers.append(CLOSE_HEADER)
        conn = self._conn
        try:
            head = conn.send(
                h11.Response(status_code=status, headers=headers, reason=reason(status))
            )
        except h11.LocalProtocolError:
            log.exception("could not frame a %d response", status)
            self._release()
            transport.close()
            return
        assert head is not None
        send_body = request.method != "HEAD" and status not in NO_BODY_STATUSES and length > 0
        if not send_body or not isinstance(body, FileBody):
            if send_body:
                assert isinstance(body, bytes)
                data = conn.send(h11.Data(data=body))
                assert data is not None
                head += data
            conn.send(h11.EndOfMessage())
            transport.write(head)
            self._finish(sent=length if send_body else 0, resume=in_task)
            return
        conn.send_with_data_passthrough(h11.Data(data=_Length(length)))  # type: ignore[arg-type]
        conn.send(h11.EndOfMessage())
        parts = [head, *body.parts]
        self._write_file_body(body, parts, in_task=in_task)

    def _write_file_body(
        self, body: FileBody, parts: list[bytes | object], *, in_task: bool
    ) -> None:
        transport = self._transport
        flow = self._flow
        assert transport is not None
        assert flow is not None
        writer: ZeroCopyWriter | CopyWriter
        zero_copy = self._config.zero_copy and transport.get_write_buffer_size() == 0
        if self._config.zero_copy and not zero_copy:
            # Bytes still queued in the transport: wait until they are out, then sendfile.
            flow.pause_reading()
            self._task = self._loop.create_task(self._drive_body(body, parts, wait_empty=True))
            return
        writer = self._make_writer(body, parts, zero_copy)
        try:
            done = writer.advance()
        except OSError as exc:
            self._body_failed(exc)
            return
        if done:
            self._finish(sent=writer.sent - len(parts[0]), resume=in_task)  # type: ignore[arg-type]
            return
        flow.pause_reading()
        self._task = self._loop.create_task(self._drive_body(body, parts, writer=writer))

    def _make_writer(
        self, body: FileBody, parts: list[bytes | object], zero_copy: bool
    ) -> ZeroCopyWriter | CopyWriter:
        transport = self._transport
        assert transport is not None
        assert self._flow is not None
        if zero_copy:
            if self._sock is None:
                raw = transport.get_extra_info("socket")
                self._sock = socket.socket(fileno=socket.dup(raw.fileno()))
            return ZeroCopyWriter(self._loop, self._sock, body.fd, parts)  # type: ignore[arg-type]
        return CopyWriter(
            transport,
            self._flow,
            body.fd,
            parts,
            self._config.copy_chunk_size,  # type: ignore[arg-type]
        )

    async def _drive_body(
        self,
        body: FileBody,
        parts: list[bytes | object],
        *,
        writer: ZeroCopyWriter | CopyWriter | None = None,
        wait_empty: bool = False,
    ) -> None:
        timeout = self._config.write_timeout
        assert self._flow is not None
        try:
            if wait_empty:
                await asyncio.wait_for(self._flow.wait_empty(), timeout)
            if writer is None:
                writer = self._make_writer(body, parts, zero_copy=True)
                done = writer.advance()
            else:
                done = False
            while not done:
                await asyncio.wait_for(writer.wait(), timeout)
                done = writer.advance()
        except TimeoutError:
            log.info("client %s accepted no bytes for %.0f s; closing", self._peer, timeout)
            self._task = None
            self._body_failed(None)
            return
        except asyncio.CancelledError:
            self._task = None
            self._release()
            self._close_dup()
            raise
        except OSError as exc:
            self._task = None
            self._body_failed(exc)
            return
        self._task = None
        self._finish(sent=writer.sent - len(parts[0]), resume=True)  # type: ignore[arg-type]

    def _body_failed(self, exc: OSError | None) -> None:
        """The body could not be completed: the framing is broken, so drop the connection."""
        if isinstance(exc, FileTruncatedError):
            log.warning("%s: %s; aborting the response", self._request_desc(), exc)
        elif exc is not None:
            log.debug("%s: client went away: %s", self._request_desc(), exc)
        self._release()
        if self._transport is not None:
            self._transport.abort()

    def _finish(self, *, sent: int, resume: bool) -> None:
        """The response is out: log it, then close or get ready for the next request."""
        request, response = self._request, self._response
        self._release()
        if self._config.access_log and request is not None and response is not None:
            elapsed_ms = (time.perf_counter() - self._request_started) * 1000
            access_log.info(
                '%s "%s %s" %d %d %.2fms',
                self._peer,
                request.method,
                request.target,
                response.status,
                sent,
                elapsed_ms,
            )
        transport = self._transport
        if transport is None:
            return
        conn = self._conn
        if (
            conn.our_state is h11.MUST_CLOSE
            or self._closing
            or self._requests >= self._config.max_requests_per_connection
        ):
            transport.close()
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            transport.close()
            return
        self._busy = False
        self._request = None
        self._arm_timer(head=False)
        if resume:
            assert self._flow is not None
            self._flow.resume_reading()
            self._process()

    def _release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.release()

    # -- errors and timers ---------------------------------------------------------------
    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint
        if status == 431:
            self._send_error_and_close(431, "head_too_large", "request head is too large")
        else:
            self._send_error_and_close(status, "bad_request", f"malformed request: {exc}")

    def _send_error_and_close(self, status: int, code: str, message: str) -> None:
        transport = self._transport
        if transport is None:
            return
        self._busy = True
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            response = error_response(status, code, message)
            headers = [
                *response.headers,
                (b"content-length", str(len(response.body)).encode()),
                (b"date", self._state.date_header()),
                SERVER_HEADER,
                CLOSE_HEADER,
            ]
            try:
                head = self._conn.send(
                    h11.Response(status_code=status, headers=headers, reason=reason(status))
                )
                data = self._conn.send(h11.Data(data=response.body))
                assert head is not None
                assert data is not None
                transport.write(head + data)
            except h11.LocalProtocolError:
                pass
        transport.close()

    def _arm_timer(self, *, head: bool) -> None:
        self._cancel_timer()
        self._timer_is_head = head
        if head:
            delay = self._config.request_head_timeout
            self._timer = self._loop.call_later(delay, self._on_head_timeout)
        else:
            delay = self._config.keep_alive_timeout
            self._timer = self._loop.call_later(delay, self._on_idle_timeout)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_is_head = False

    def _on_head_timeout(self) -> None:
        self._timer = None
        if self._busy or self._transport is None:
            return
        if not self._partial:  # nothing was ever sent: close quietly, like nginx
            self._transport.close()
            return
        log.debug("%s: request head not received in time; closing", self._peer)
        self._send_error_and_close(408, "request_timeout", "request head not received in time")

    def _on_idle_timeout(self) -> None:
        self._timer = None
        if not self._busy and self._transport is not None:
            self._transport.close()

    def _request_desc(self) -> str:
        request = self._request
        if request is None:
            return self._peer
        return f"{self._peer} {request.method} {request.target}"

    def _close_dup(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
