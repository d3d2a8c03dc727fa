"""Handing a client connection from a worker process to the process that owns the swarm.

How this works: with `--workers N` there is one libtorrent session, in the first process
(the engine's). A worker answers cache hits itself; for a request that needs the swarm
it sends the client's socket descriptor (`SCM_RIGHTS`) and the bytes it has read from
it (the request, and anything pipelined after it) over a Unix `SOCK_SEQPACKET` pair,
one message per connection, then forgets the connection without shutting it down. The
engine's process adopts the socket into its own event loop with those bytes replayed
first, and answers as if the client had connected to it: no byte of the response passes
through the worker, and the connection stays with the engine's process afterwards.

A socketpair per worker: each message carries its connection, so nothing needs to be
matched up, and a worker that dies closes its end (the engine's side sees the end of
the pair and forgets it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger("streme.workers")

# The largest message: a request head (http.max_head_bytes, up to 1 MiB), a small body,
# and pipelined bytes. Larger requests are answered 503 by the worker.
MAX_MESSAGE = 2 * 1024 * 1024 + 64 * 1024

Adopt = Callable[[socket.socket, bytes], None]
# The messages without a connection: the worker listens and answers (sent once); and
# the worker's counters (streme.stats), every `REPORT_INTERVAL` seconds.
READY = b"ready"
REPORT = b"stats:"
REPORT_INTERVAL = 1.0


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(engine's end, worker's end)."""
    engine, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in (engine, worker):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MAX_MESSAGE)
    return engine, worker


class HandoffSender:
    """The worker's end: `send` one connection. Non-blocking: a full pair (the engine's
    process not reading) fails at once, and the worker answers 503."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.sent = 0

    def ready(self) -> None:
        """Tell the engine's process this worker is serving the port."""
        self._sock.send(READY)

    def report(self, payload: bytes) -> None:
        """Send this worker's counters (dropped when the pair is full: the next one
        carries the same totals)."""
        with contextlib.suppress(BlockingIOError):
            self._sock.send(REPORT + payload)

    def send(self, fd: int, data: bytes) -> None:
        """Send the connection `fd` and the bytes read from it; raises OSError."""
        socket.send_fds(self._sock, [data], [fd])
        self.sent += 1

    def watch_end(self, loop: asyncio.AbstractEventLoop, on_end: Callable[[], None]) -> None:
        """Call `on_end` when the engine's process closes its end (it exited)."""

        def readable() -> None:
            try:
                data = self._sock.recv(1)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self._sock.fileno())
                on_end()

        loop.add_reader(self._sock.fileno(), readable)

    def close(self) -> None:
        self._sock.close()


class HandoffReceiver:
    """The engine's end of every worker's pair: each message becomes a connection of this
    process's HTTP server (`adopt`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, adopt: Adopt) -> None:
        self._loop = loop
        self._adopt = adopt
        self._socks: dict[int, socket.socket] = {}
        self._on_ready: dict[int, Callable[[], None]] = {}
        self.reports: dict[int, bytes] = {}  # each worker's latest counters, by channel
        self.received = 0

    def add(self, sock: socket.socket, on_ready: Callable[[], None]) -> None:
        """Take connections from the worker at the other end of `sock`; `on_ready` is
        called when it says it is serving."""
        sock.setblocking(False)
        self._socks[sock.fileno()] = sock
        self._on_ready[sock.fileno()] = on_ready
        self._loop.add_reader(sock.fileno(), self._readable, sock)

    def remove(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        self._on_ready.pop(fd, None)
        self.reports.pop(fd, None)
        if self._socks.pop(fd, None) is not None:
            self._loop.remove_reader(fd)
        sock.close()

    def close(self) -> None:
        for sock in list(self._socks.values()):
            self.remove(sock)

    def _readable(self, sock: socket.socket) -> None:
        while True:
            try:
                data, fds, flags, _ = socket.recv_fds(sock, MAX_MESSAGE, 1)
            except BlockingIOError:
                return
            except OSError as exc:
                log.error("hand-off channel failed: %s", exc)
                self.remove(sock)
                return
            if not data and not fds:  # the worker is gone
                self.remove(sock)
                return
            if not fds and data.startswith(REPORT):
                self.reports[sock.fileno()] = data[len(REPORT) :]
                continue
            if not fds:
                on_ready = self._on_ready.pop(sock.fileno(), None)
                if data == READY and on_ready is not None:
                    on_ready()
                else:
                    log.error("hand-off message without a connection (%d bytes)", len(data))
                continue
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                log.error("hand-off message cut short; closing its connection")
                for fd in fds:
                    os.close(fd)
                continue
            self.received += 1
            client = socket.socket(fileno=fds[0])
            for extra in fds[1:]:
                os.close(extra)
            try:
                client.setblocking(False)
                self._adopt(client, data)
            except Exception:
                log.exception("could not take over a handed-off connection")
                with contextlib.suppress(OSError):
                    client.close()
