"""Writing a response (head + file body) to the client, zero-copy or by copying.

How this works: a response is a list of parts — bytes (the head, multipart boundaries)
and `FileSegment`s of an open file. A writer moves them to the client in `advance()`,
which does as much as the socket accepts right now and returns True when everything is
out. When it returns False the caller awaits `wait()` and calls `advance()` again.

`ZeroCopyWriter` writes straight on the socket: bytes with `send(MSG_MORE)` so the head
and the first file bytes share packets, file data with `os.sendfile` (no copy through
user space). uvloop has no `loop.sendfile`, so it uses a `dup()` of the connection's fd:
uvloop refuses `add_writer` on its own transport's fd but accepts the duplicate, and
epoll reports the same socket. Precondition: the transport's buffer is empty (the caller
awaits `FlowControl.wait_empty()`), and nothing else writes until `advance()` is done.

`CopyWriter` is the fallback: `os.pread` chunks handed to `transport.write`, yielding
whenever the transport pauses writing. It costs a copy per byte but works on any
transport and file system. See docs/decisions/0001-zero-copy-on-uvloop.md.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence

from streme.http.flow import FlowControl
from streme.http.messages import FileSegment

Part = bytes | FileSegment


class FileTruncatedError(OSError):
    """The file ended before the promised Content-Length: the response cannot be completed."""


class ZeroCopyWriter:
    __slots__ = (
        "_fd",
        "_index",
        "_loop",
        "_parts",
        "_pos",
        "_sock",
        "_waiter",
        "_watching",
        "sent",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        fd: int,
        parts: Sequence[Part],
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = fd
        self._parts = parts
        self._index = 0
        self._pos = 0
        self._waiter: asyncio.Future[None] | None = None
        self._watching = False
        self.sent = 0

    def advance(self) -> bool:
        parts = self._parts
        last = len(parts) - 1
        sock = self._sock
        while self._index <= last:
            part = parts[self._index]
            try:
                if isinstance(part, bytes):
                    flags = socket.MSG_MORE if self._index < last else 0
                    n = sock.send(memoryview(part)[self._pos :], flags) if part else 0
                    remaining = len(part) - self._pos - n
                else:
                    count = part.count - self._pos
                    n = os.sendfile(sock.fileno(), self._fd, part.offset + self._pos, count)
                    if n == 0 and count > 0:
                        raise FileTruncatedError("file shorter than its recorded size")
                    remaining = count - n
            except BlockingIOError:
                return False
            self.sent += n
            if remaining == 0:
                self._index += 1
                self._pos = 0
            else:
                self._pos += n
        return True

    async def wait(self) -> None:
        """Wait until the socket is writable (or in error: the next advance() raises).

        The writer callback stays registered between waits (one epoll registration per
        body, not two epoll_ctl calls per wait); `close()` removes it.
        """
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiter = fut
        if not self._watching:
            self._loop.add_writer(self._sock.fileno(), self._writable)
            self._watching = True
        try:
            await fut
        finally:
            self._waiter = None

    def _writable(self) -> None:
        fut = self._waiter
        if fut is not None and not fut.done():
            fut.set_result(None)
        elif fut is None:  # not waiting: stop level-triggered wake-ups until the next wait
            self._loop.remove_writer(self._sock.fileno())
            self._watching = False

    def close(self) -> None:
        if self._watching:
            self._loop.remove_writer(self._sock.fileno())
            self._watching = False


class CopyWriter:
    __slots__ = ("_chunk", "_fd", "_flow", "_index", "_parts", "_pos", "_transport", "sent")

    def __init__(
        self,
        transport: asyncio.Transport,
        flow: FlowControl,
        fd: int,
        parts: Sequence[Part],
        chunk_size: int,
    ) -> None:
        self._transport = transport
        self._flow = flow
        self._fd = fd
        self._parts = parts
        self._chunk = chunk_size
        self._index = 0
        self._pos = 0
        self.sent = 0

    def advance(self) -> bool:
        parts = self._parts
        while self._index < len(parts):
            if self._flow.closed:
                raise ConnectionResetError("connection lost")
            if self._flow.writing_paused:
                return False
            part = parts[self._index]
            if isinstance(part, bytes):
                self._transport.write(part)
                self.sent += len(part)
                self._index += 1
                continue
            remaining = part.count - self._pos
            data = os.pread(self._fd, min(self._chunk, remaining), part.offset + self._pos)
            if not data:
                raise FileTruncatedError("file shorter than its recorded size")
            self._transport.write(data)
            self.sent += len(data)
            self._pos += len(data)
            if self._pos == part.count:
                self._index += 1
                self._pos = 0
        return True

    async def wait(self) -> None:
        await self._flow.drain()

    def close(self) -> None:
        pass
