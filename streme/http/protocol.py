"""One HTTP/1.1 connection: an asyncio Protocol that parses with h11 and answers requests.

How this works:
- Bytes from the transport go into an `h11.Connection` used as the request parser;
  `_process()` pulls events until h11 needs more data. A complete request (head plus any
  small body, which is read and dropped) is routed; the handler returns a `Response`, or
  an awaitable of one (then reading is paused and a task awaits it).
- After each request the parser is replaced by a fresh one fed with h11's
  `trailing_data` (the pipelined bytes already received), and responses are framed by
  `framing.py`, not by h11's `send`: that halves the CPU of a request. Framing is simple
  because every response has a Content-Length; keep-alive follows h11's own rule
  (HTTP/1.1 without `Connection: close`). See docs/decisions/0002-h11-parses-we-frame.md.
- File bodies go out through `body.py`: zero-copy `sendfile` or the copying fallback.
  The common case, a range that fits in the socket buffer, completes inside
  `data_received` with no task at all.
- Timers: one per connection. `request_head_timeout` runs from the first byte of a
  request (or the connection's opening) to the end of its head and any body — the
  slowloris guard;
  `keep_alive_timeout` runs while idle between requests; `write_timeout` bounds each
  wait for a client to accept bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable
from typing import Final, cast

import h11

from streme.http import routing
from streme.http.body import CopyWriter, FileTruncatedError, Part, ZeroCopyWriter
from streme.http.flow import FlowControl
from streme.http.framing import encode_head
from streme.http.messages import FileBody, Request, Response, StreamBody, error_response
from streme.http.requestcheck import refusal, wants_continue
from streme.http.state import ServerState
from streme.http.urls import BadTarget, split_target
from streme.logbuffer import LineLog

log = logging.getLogger("streme.http")
access_log = LineLog("streme.access")  # queued, not written on the spot (logbuffer)

# Bytes a client may send ahead (pipelined requests) while a swarm stream is answered.
PIPELINE_BUFFER_LIMIT: Final = 64 * 1024

# Methods RFC 9110 defines (plus PATCH): unknown ones get 501, known ones 404/405 by route.
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
NO_BODY_STATUSES: Final = frozenset({204, 304})
SERVER_HEADER: Final = (b"Server", b"streme")
CLOSE_HEADER: Final = (b"Connection", b"close")
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
# RFC 9112 2.2: empty lines before a request line are ignored (nginx skips any CR and LF).
EMPTY_LINES: Final = b"\r\n"


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._config = state.config
        self._loop = state.loop
        self._parser = self._new_parser()
        self._transport: asyncio.Transport | None = None
        self._flow: FlowControl | None = None
        self._sock: socket.socket | None = None  # dup of the connection's fd, for sendfile
        self._peer = "-"
        self._busy = False  # a request is being answered
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_is_head = False
        self._timer_armed = False
        self._deadline = 0.0
        self._partial = False  # bytes of a request have arrived
        self._at_request_start = True  # the parser has seen nothing of the next request
        self._requests = 0
        self._request: Request | None = None
        self._keep_alive = True
        self._request_started = 0.0
        self._body_seen = 0
        self._response: Response | None = None

    def _new_parser(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._config.max_head_bytes)

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        transport = self._transport
        self._flow = FlowControl(
            transport, high=self._config.write_buffer_high, low=self._config.write_buffer_low
        )
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"
        if not self._state.admit(self):
            if self._state.refused == 1 or self._state.refused % 1000 == 0:
                log.warning(
                    "%d connection(s) refused: over http.max_connections (%d)",
                    self._state.refused,
                    self._state.max_connections,
                )
            self._send_error_and_close(
                503, "too_many_connections", "the server is at its connection limit; retry"
            )
            return
        self._arm_timer(head=True)

    def data_received(self, data: bytes) -> None:
        if self._at_request_start:
            data = data.lstrip(EMPTY_LINES)
            if not data:
                return
            self._at_request_start = False
        self._parser.receive_data(data)
        if self._busy and len(self._parser.trailing_data[0]) > PIPELINE_BUFFER_LIMIT:
            # A streamed response keeps reading (see `_respond`); what a pipelining
            # client sends meanwhile waits in h11's buffer, up to this bound.
            assert self._flow is not None
            self._flow.pause_reading()
        if not self._busy:
            self._partial = True
            if not (self._timer_armed and self._timer_is_head):
                self._arm_timer(head=True)
            self._process()

    def eof_received(self) -> bool:
        response = self._response
        if self._busy and response is not None and isinstance(response.body, StreamBody):
            # A player closes its side when it gives up on a response (every seek), and
            # the swarm stream would hold its pieces' deadlines until its next write
            # failed, competing with the request that replaced it (measured: 0.33 s of a
            # 4 MiB/s seeder). So the end of a client's input ends a swarm stream, as it
            # ends a request's context in Go's net/http. A cache hit is cheap to finish.
            return False  # the transport closes: connection_lost cancels the stream
        self._parser.receive_data(b"")
        if not self._busy:
            self._process()
        return True  # keep writing: a half-closed client still gets its response

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.discard(self)
        self._stop_timer()
        if self._flow is not None:
            self._flow.connection_lost()
        self._transport = None
        if self._task is not None and not self._task.done():
            self._task.cancel()  # it calls _drop_response as it ends
        else:
            self._drop_response()

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
        while not self._busy and self._transport is not None:
            try:
                event = self._parser.next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            kind = type(event)
            if kind is h11.Request:
                assert isinstance(event, h11.Request)
                if not self._on_request(event):
                    return
            elif kind is h11.Data:
                assert isinstance(event, h11.Data)
                self._body_seen += len(event.data)
                if self._body_seen > self._config.max_body_bytes:
                    self._send_error_and_close(
                        413, "body_too_large", "request bodies are not accepted on this route"
                    )
                    return
            elif kind is h11.EndOfMessage:
                self._cancel_timer()  # the request, and any body, is in
                self._partial = False
                more = self._next_parser()
                self._dispatch()
                if not more:
                    return  # nothing pipelined: skip asking the fresh parser
            elif kind is h11.ConnectionClosed:
                self._transport.close()
                return

    def _next_parser(self) -> bool:
        """Hand the bytes already received after this request to a fresh parser.

        Returns whether it holds anything (pipelined bytes or the end of input).
        """
        data, closed = self._parser.trailing_data
        self._parser = self._new_parser()
        self._at_request_start = True
        data = data.lstrip(EMPTY_LINES)
        if data:
            self._at_request_start = False
            self._parser.receive_data(data)
        if closed:
            self._parser.receive_data(b"")
        return bool(data) or closed

    def _on_request(self, event: h11.Request) -> bool:
        """Take in a request head; False if it was refused (the error is on its way and
        the connection closing). The request deadline runs on until the end of any body."""
        self._request_started = time.perf_counter()
        self._body_seen = 0
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
        # token in Connection (RFC 9112 §9.3).
        connection = headers.get("connection")
        self._keep_alive = event.http_version >= b"1.1" and not (
            connection is not None
            and "close" in (token.strip().lower() for token in connection.split(","))
        )
        self._request = Request(
            event.method.decode("ascii", "replace"), event.target.decode("latin-1"), "", "", headers
        )
        refused = refusal(
            event.method,
            event.target,
            event.http_version,
            headers,
            head_size,
            max_head_bytes=self._config.max_head_bytes,
            max_body_bytes=self._config.max_body_bytes,
        )
        if refused is not None:
            self._send_error_and_close(refused.status, refused.code, refused.message)
            return False
        if wants_continue(event.http_version, headers) and self._transport is not None:
            self._transport.write(CONTINUE)
        return True

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
            message = f"method {request.method} is not supported"
            self._respond(error_response(501, "not_implemented", message))
            return
        found = self._state.router.resolve(request.method, request.path)
        if isinstance(found, routing.NotFound):
            self._respond(error_response(404, "not_found", f"no route for {request.path}"))
            return
        if isinstance(found, routing.MethodNotAllowed):
            allow = ", ".join(found.allow).encode()
            message = f"{request.method} is not allowed on {request.path}"
            self._respond(error_response(405, "method_not_allowed", message, [(b"Allow", allow)]))
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
            self._drop_response()
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
        body = response.body
        length = response.content_length
        if status not in NO_BODY_STATUSES:
            headers.append((b"Content-Length", b"%d" % length))
        headers.append((b"Date", self._state.date_header()))
        headers.append(SERVER_HEADER)
        if not self._will_keep_alive():
            headers.append(CLOSE_HEADER)
        head = encode_head(status, headers)
        send_body = request.method != "HEAD" and status not in NO_BODY_STATUSES and length > 0
        if not send_body:
            transport.write(head)
            self._finish(sent=0, resume=in_task)
        elif isinstance(body, bytes):
            transport.write(head + body)
            self._finish(sent=length, resume=in_task)
        elif isinstance(body, StreamBody):
            transport.write(head)
            # Reading goes on while a swarm stream waits for pieces: a player that gives
            # up (a seek) closes with our bytes unread, and only a read sees that reset at
            # once. Paused, the stream would hold its pieces' deadlines until its next
            # write failed, competing with the request that replaced it.
            assert self._flow is not None
            self._flow.resume_reading()  # paused while an awaited handler ran
            self._task = self._loop.create_task(self._drive_stream(body))
        else:
            self._write_file_body(body, [head, *body.parts], in_task=in_task)

    def _will_keep_alive(self) -> bool:
        return (
            self._keep_alive
            and not self._closing
            and self._requests < self._config.max_requests_per_connection
        )

    def _write_file_body(self, body: FileBody, parts: list[Part], *, in_task: bool) -> None:
        transport = self._transport
        flow = self._flow
        assert transport is not None and flow is not None
        head_length = len(parts[0])
        if self._config.zero_copy and transport.get_write_buffer_size() > 0:
            # Bytes still queued in the transport: wait until they are out, then sendfile.
            flow.pause_reading()
            self._task = self._loop.create_task(
                self._drive_body(None, body, parts, head_length, wait_empty=True)
            )
            return
        writer = self._make_writer(body, parts)
        try:
            done = writer.advance()
        except OSError as exc:
            self._body_failed(exc)
            return
        if done:
            self._finish(sent=writer.sent - head_length, resume=in_task)
            return
        flow.pause_reading()
        self._task = self._loop.create_task(self._drive_body(writer, body, parts, head_length))

    def _make_writer(self, body: FileBody, parts: list[Part]) -> ZeroCopyWriter | CopyWriter:
        transport = self._transport
        assert transport is not None and self._flow is not None
        if self._config.zero_copy:
            if self._sock is None:
                raw = transport.get_extra_info("socket")
                self._sock = socket.socket(fileno=socket.dup(raw.fileno()))
            return ZeroCopyWriter(self._loop, self._sock, body.fd, parts)
        chunk = self._config.copy_chunk_size
        return CopyWriter(transport, self._flow, body.fd, parts, chunk)

    async def _drive_body(
        self,
        writer: ZeroCopyWriter | CopyWriter | None,
        body: FileBody,
        parts: list[Part],
        head_length: int,
        *,
        wait_empty: bool = False,
    ) -> None:
        timeout = self._config.write_timeout
        assert self._flow is not None
        try:
            if writer is None:
                if wait_empty:
                    await asyncio.wait_for(self._flow.wait_empty(), timeout)
                writer = self._make_writer(body, parts)
                done = writer.advance()
            else:
                done = False
            while not done:
                await asyncio.wait_for(writer.wait(), timeout)
                done = writer.advance()
        except TimeoutError:
            if writer is not None:
                writer.close()
            log.info("client %s accepted no bytes for %.0f s; closing", self._peer, timeout)
            self._task = None
            self._body_failed(None)
            return
        except asyncio.CancelledError:
            if writer is not None:
                writer.close()
            self._drop_response()
            raise
        except OSError as exc:
            if writer is not None:
                writer.close()
            self._task = None
            self._body_failed(exc)
            return
        writer.close()
        self._task = None
        self._finish(sent=writer.sent - head_length, resume=True)

    async def _drive_stream(self, body: StreamBody) -> None:
        """Copy a produced body to the client, waiting whenever the transport is full."""
        flow = self._flow
        assert flow is not None
        sent = 0
        try:
            async for chunk in body.open():
                transport = self._transport
                if transport is None:
                    raise ConnectionResetError("connection lost")
                transport.write(chunk)
                sent += len(chunk)
                if flow.writing_paused:
                    await asyncio.wait_for(flow.drain(), self._config.write_timeout)
        except asyncio.CancelledError:
            self._drop_response()
            raise
        except (OSError, TimeoutError) as exc:
            self._task = None
            log.info("%s: stream ended early: %s", self._request_desc(), exc)
            self._body_failed(None)
            return
        except Exception as exc:
            self._task = None
            log.error("%s: stream failed after %d bytes: %s", self._request_desc(), sent, exc)
            self._body_failed(None)
            return
        self._task = None
        if sent != body.length:
            log.error("%s: stream produced %d of %d bytes", self._request_desc(), sent, body.length)
            self._body_failed(None)
            return
        self._finish(sent=sent, resume=True)

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
        if not self._will_keep_alive():
            transport.close()
            return
        self._busy = False
        self._request = None
        self._arm_timer(head=False)
        if resume:
            assert self._flow is not None
            self._flow.resume_reading()
            self._process()

    def _drop_response(self) -> None:
        """The connection is gone: free the response's body and the socket's dup. The one
        cleanup of `connection_lost` and of a response task it cancelled."""
        self._task = None
        self._release()
        self._close_dup()

    def _release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.release()

    # -- errors and timers ---------------------------------------------------------------
    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint
        if status == 431 and b"\n" not in self._parser.trailing_data[0]:
            self._send_error_and_close(414, "uri_too_long", "request target is too long")
        elif status == 431:
            self._send_error_and_close(431, "head_too_large", "request head is too large")
        else:
            self._send_error_and_close(status, "bad_request", f"malformed request: {exc}")

    def _send_error_and_close(self, status: int, code: str, message: str) -> None:
        transport = self._transport
        if transport is None:
            return
        self._busy = True
        self._cancel_timer()
        response = error_response(status, code, message)
        body = response.body
        assert isinstance(body, bytes)
        headers = [
            *response.headers,
            (b"Content-Length", b"%d" % len(body)),
            (b"Date", self._state.date_header()),
            SERVER_HEADER,
            CLOSE_HEADER,
        ]
        transport.write(encode_head(status, headers) + body)
        transport.close()

    def _arm_timer(self, *, head: bool) -> None:
        """Set the connection's one deadline: for a request head, or for idling.

        Re-arming happens on every request, so it only records the deadline; the timer
        handle is rescheduled only when the new deadline is earlier than the pending
        one, and a timer that fires early re-schedules itself for the current deadline.
        """
        delay = self._config.request_head_timeout if head else self._config.keep_alive_timeout
        deadline = self._loop.time() + delay
        self._deadline = deadline
        self._timer_is_head = head
        self._timer_armed = True
        if self._timer is None or self._timer.when() > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        self._timer_armed = False
        self._timer_is_head = False

    def _stop_timer(self) -> None:
        self._cancel_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if not self._timer_armed or self._busy or self._transport is None:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self._timer_armed = False
        if not self._timer_is_head:
            self._transport.close()  # idle keep-alive connection
        elif not self._partial:  # nothing was ever sent: close quietly, like nginx
            self._transport.close()
        else:
            log.debug("%s: request head not received in time; closing", self._peer)
            self._send_error_and_close(408, "request_timeout", "request head not received in time")

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
