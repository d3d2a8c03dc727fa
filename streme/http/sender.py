"""How one connection's response bodies reach its socket: a file's parts (zero-copy or
copied, body.py) or a produced stream, each wait bounded by `write_timeout`.

How this works: `start_file()` sends what the socket takes at once; most ranges fit in
the socket buffer and are done there, with no task. Otherwise `finish_file()` (awaited
by the connection's task) waits for the socket and goes on. Zero-copy writes go on a
`dup()` of the connection's descriptor (uvloop has no `loop.sendfile`; see
docs/decisions/0001-zero-copy-on-uvloop.md), so they start only when the transport's
own buffer is empty. `stream()` copies a swarm body's chunks into the transport,
waiting whenever the transport is full. Errors propagate to the caller
(`HTTPProtocol`), which decides what they mean for the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from streme.http.body import CopyWriter, Part, ZeroCopyWriter
from streme.http.flow import FlowControl
from streme.http.messages import StreamBody

Writer = ZeroCopyWriter | CopyWriter


class BodySender:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        flow: FlowControl,
        *,
        zero_copy: bool,
        copy_chunk_size: int,
        write_timeout: float,
    ) -> None:
        self._loop = loop
        self._transport = transport
        self._flow = flow
        self._zero_copy = zero_copy
        self._chunk = copy_chunk_size
        self._timeout = write_timeout
        self._sock: socket.socket | None = None  # dup of the connection's fd, for sendfile
        self.streamed = 0  # bytes of the current stream written so far

    def start_file(self, fd: int, parts: list[Part]) -> tuple[Writer | None, bool]:
        """Send what the socket takes now: (writer, done). No writer: the transport still
        holds bytes, and `finish_file` starts once they are out."""
        if self._zero_copy and self._transport.get_write_buffer_size() > 0:
            return None, False
        writer = self._writer(fd, parts)
        try:
            done = writer.advance()
        except OSError:
            writer.close()
            raise
        return writer, done

    async def finish_file(self, fd: int, parts: list[Part], writer: Writer | None) -> int:
        """Send the rest; the bytes sent in all, the parts' literal bytes included."""
        timeout = self._timeout
        try:
            if writer is None:
                await asyncio.wait_for(self._flow.wait_empty(), timeout)
                writer = self._writer(fd, parts)
                done = writer.advance()
            else:
                done = False
            while not done:
                await asyncio.wait_for(writer.wait(), timeout)
                done = writer.advance()
            return writer.sent
        finally:
            if writer is not None:
                writer.close()

    async def stream(self, body: StreamBody) -> int:
        """Copy a produced body to the client; the bytes written."""
        flow = self._flow
        self.streamed = 0
        async for chunk in body.open():
            if flow.closed:
                raise ConnectionResetError("connection lost")
            self._transport.write(chunk)
            self.streamed += len(chunk)
            if flow.writing_paused:
                await asyncio.wait_for(flow.drain(), self._timeout)
        return self.streamed

    def close(self) -> None:
        """Close the descriptor's duplicate (after any writer using it is closed)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _writer(self, fd: int, parts: list[Part]) -> Writer:
        if self._zero_copy:
            if self._sock is None:
                raw = self._transport.get_extra_info("socket")
                self._sock = socket.socket(fileno=socket.dup(raw.fileno()))
            return ZeroCopyWriter(self._loop, self._sock, fd, parts)
        return CopyWriter(self._transport, self._flow, fd, parts, self._chunk)
