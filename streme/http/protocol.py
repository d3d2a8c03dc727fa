"""One HTTP/1.1 connection: the asyncio adapter around `HTTPConnection` (connection.py).

How this works:
- `HTTPConnection` holds the connection's state without I/O: bytes in -> a request to
  answer, a refusal, keep-alive, the next deadline. This class feeds it what the
  transport delivers, keeps one timer at its deadline, and acts on its events.
- A complete request is dispatched (dispatch.py: routing and the shared errors); the
  handler returns a `Response`, or an awaitable of one (then reading is paused and a
  task awaits it).
- Responses are framed by `framing.py`, not by h11's `send`: that halves the CPU of a
  request (docs/decisions/0002-h11-parses-we-frame.md). Every response has a
  Content-Length.
- File bodies go out through `body.py`: zero-copy `sendfile` or the copying fallback.
  The common case, a range that fits in the socket buffer, completes inside
  `data_received` with no task at all. Swarm bodies (`StreamBody`) are copied by a task
  that waits whenever the transport is full; `write_timeout` bounds each wait.
- One cleanup path: a response that cannot finish, or a connection that is lost, ends in
  `_drop_response()` (from the task it cancels, or at once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Final, cast

from streme.http.body import FileTruncatedError, Part
from streme.http.connection import (
    CLOSED,
    CONTINUE,
    NEED_DATA,
    Expiry,
    HTTPConnection,
    Ready,
    Refused,
)
from streme.http.dispatch import dispatch, handler_failed
from streme.http.flow import FlowControl
from streme.http.framing import encode_head
from streme.http.messages import (
    Answer,
    FileBody,
    HandOff,
    Request,
    Response,
    StreamBody,
    error_response,
)
from streme.http.sender import BodySender, Writer
from streme.http.state import ServerState
from streme.logbuffer import LineLog

log = logging.getLogger("streme.http")
access_log = LineLog("streme.access")  # queued, not written on the spot (logbuffer)

# Bytes a client may send ahead (pipelined requests) while a swarm stream is answered.
PIPELINE_BUFFER_LIMIT: Final = 64 * 1024
NO_BODY_STATUSES: Final = frozenset({204, 304})
SERVER_HEADER: Final = (b"Server", b"streme")
CLOSE_HEADER: Final = (b"Connection", b"close")
CONTINUE_LINE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, state: ServerState, preloaded: bytes = b"") -> None:
        self._state = state
        self._config = state.config
        self._loop = state.loop
        self._conn = HTTPConnection(
            state.limits, self._loop.time(), keep_raw=state.handoff is not None
        )
        self._preloaded = preloaded  # bytes another process read from this client
        self._transport: asyncio.Transport | None = None
        self._flow: FlowControl | None = None
        self._sender: BodySender | None = None
        self._peer = "-"
        self._client = ""  # the client's IP address
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._request: Request | None = None
        self._request_started = 0.0
        self._response: Response | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        transport = self._transport
        config = self._config
        self._flow = FlowControl(
            transport, high=config.write_buffer_high, low=config.write_buffer_low
        )
        self._sender = BodySender(
            self._loop,
            transport,
            self._flow,
            zero_copy=config.zero_copy,
            copy_chunk_size=config.copy_chunk_size,
            write_timeout=config.write_timeout,
        )
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"
            self._client = str(peer[0])
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
        self._sync_timer()
        if self._preloaded:  # handed over by a worker: its bytes come first
            data, self._preloaded = self._preloaded, b""
            self.data_received(data)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        conn.receive(data, self._loop.time())
        if not conn.busy:
            self._sync_timer()
            self._process()
        elif conn.buffered > PIPELINE_BUFFER_LIMIT and self._flow is not None:
            # A streamed response keeps reading (see `_respond`); what a pipelining
            # client sends meanwhile waits in the parser's buffer, up to this bound.
            self._flow.pause_reading()

    def eof_received(self) -> bool:
        response = self._response
        if self._conn.busy and response is not None and isinstance(response.body, StreamBody):
            # A player closes its side when it gives up on a response (every seek), and
            # the swarm stream would hold its pieces' deadlines until its next write
            # failed, competing with the request that replaced it (measured: 0.33 s of a
            # 4 MiB/s seeder). So the end of a client's input ends a swarm stream, as it
            # ends a request's context in Go's net/http. A cache hit is cheap to finish.
            return False  # the transport closes: connection_lost cancels the stream
        self._conn.receive(b"", self._loop.time())
        if not self._conn.busy:
            self._process()
        return True  # keep writing: a half-closed client still gets its response

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
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
        return not self._conn.busy

    def shutdown(self) -> None:
        """Close now if idle, else after the response in flight."""
        self._conn.close_after_response()
        if not self._conn.busy and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- request loop --------------------------------------------------------------------
    def _process(self) -> None:
        conn = self._conn
        while self._transport is not None:
            event = conn.next_event()
            if event is NEED_DATA:
                return
            if type(event) is Ready:
                assert isinstance(event, Ready)
                self._dispatch(event.request)
            elif event is CONTINUE:
                self._transport.write(CONTINUE_LINE)
            elif event is CLOSED:
                self._transport.close()
                return
            else:
                assert isinstance(event, Refused)
                self._send_error_and_close(event.status, event.code, event.message)
                return

    def _dispatch(self, request: Request) -> None:
        self._request = request
        request.client = self._client
        self._request_started = request.received = time.perf_counter()
        result = dispatch(self._state.router, request)
        if isinstance(result, Response):
            self._respond(result)
        elif isinstance(result, HandOff):
            self._hand_off()
        else:
            assert self._flow is not None
            self._flow.pause_reading()
            self._task = self._loop.create_task(self._await_handler(result))

    async def _await_handler(self, pending: Awaitable[Answer]) -> None:
        request = self._request
        assert request is not None
        try:
            response = await pending
        except asyncio.CancelledError:
            self._drop_response()
            raise
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.target)
            response = handler_failed()
        self._task = None
        if isinstance(response, HandOff):
            self._hand_off()
        else:
            self._respond(response, in_task=True)

    def _hand_off(self) -> None:
        """Give this client (its socket and the bytes read from it) to the engine's
        process (handoff.py) and forget it here, without shutting it down."""
        handoff = self._state.handoff
        transport = self._transport
        if transport is None:
            return
        if handoff is None:
            self._respond(handler_failed())
            return
        try:
            handoff.send(transport.get_extra_info("socket").fileno(), self._conn.raw_request())
        except OSError as exc:
            log.error("%s: could not hand the request over: %s", self._request_desc(), exc)
            message = "the process that streams from the swarm is not answering; retry"
            self._respond(error_response(503, "engine_unavailable", message))
            return
        self._state.handed_off += 1
        if self._config.access_log:
            request = self._request
            assert request is not None
            access_log.info(
                '%s "%s %s" handed to the engine', self._peer, request.method, request.target
            )
        self._transport = None
        self._request = None
        # Only this process's descriptor closes: the engine's holds the connection.
        transport.abort()

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
        if not self._conn.will_keep_alive():
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

    def _write_file_body(self, body: FileBody, parts: list[Part], *, in_task: bool) -> None:
        sender = self._sender
        assert sender is not None and self._flow is not None
        head_length = len(parts[0])
        try:
            writer, done = sender.start_file(body.fd, parts)
        except OSError as exc:
            self._body_failed(exc)
            return
        if done:
            assert writer is not None
            self._finish(sent=writer.sent - head_length, resume=in_task)
            return
        self._flow.pause_reading()
        self._task = self._loop.create_task(self._drive_file(body.fd, parts, writer))

    async def _drive_file(self, fd: int, parts: list[Part], writer: Writer | None) -> None:
        sender = self._sender
        assert sender is not None
        try:
            sent = await sender.finish_file(fd, parts, writer)
        except TimeoutError:
            timeout = self._config.write_timeout
            log.info("client %s accepted no bytes for %.0f s; closing", self._peer, timeout)
            self._task = None
            self._body_failed(None)
            return
        except asyncio.CancelledError:
            self._drop_response()
            raise
        except OSError as exc:
            self._task = None
            self._body_failed(exc)
            return
        self._task = None
        self._finish(sent=sent - len(parts[0]), resume=True)

    async def _drive_stream(self, body: StreamBody) -> None:
        sender = self._sender
        assert sender is not None
        try:
            sent = await sender.stream(body)
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
            log.error(
                "%s: stream failed after %d bytes: %s", self._request_desc(), sender.streamed, exc
            )
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
        if not self._conn.response_done(self._loop.time()):
            transport.close()
            return
        self._request = None
        self._sync_timer()
        if resume:
            assert self._flow is not None
            self._flow.resume_reading()
            self._process()

    def _drop_response(self) -> None:
        """The connection is gone: free the response's body and the socket's dup. The one
        cleanup of `connection_lost` and of a response task it cancelled."""
        self._task = None
        self._release()
        if self._sender is not None:
            self._sender.close()

    def _release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.release()

    # -- errors and timers ---------------------------------------------------------------
    def _send_error_and_close(self, status: int, code: str, message: str) -> None:
        transport = self._transport
        if transport is None:
            return
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

    def _sync_timer(self) -> None:
        """Make the connection's one timer fire by its deadline.

        The deadline moves on every request, so the timer handle is rescheduled only when
        the new deadline is earlier than the pending one; a timer that fires early finds
        `Expiry.NOTHING` and re-schedules itself for the current deadline."""
        deadline = self._conn.deadline
        if deadline is None:
            return
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None:
            return
        expiry = self._conn.expired(self._loop.time())
        if expiry is Expiry.NOTHING:
            self._sync_timer()
        elif expiry is Expiry.CLOSE:  # idle, or nothing was ever sent: close quietly, like nginx
            transport.close()
        else:
            log.debug("%s: request not received in time; closing", self._peer)
            self._send_error_and_close(408, "request_timeout", "request head not received in time")

    def _request_desc(self) -> str:
        request = self._request
        if request is None:
            return self._peer
        return f"{self._peer} {request.method} {request.target}"
