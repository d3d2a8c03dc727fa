"""A bounded byte buffer between a stream's piece reader and its socket writer.

How this works (after trio's memory channel): the producer `put`s chunks and waits while
the buffer holds `max_bytes` or more; the consumer `get`s them in order. A chunk handed to
the consumer still counts until the consumer asks for the next one (it is being written,
so it is still in memory). So a slow client (the writer waits on the socket) fills the
buffer, the reader stops pulling pieces, and memory per stream stays at `max_bytes`,
the chunk being written included. `close()` ends the stream after the buffered bytes;
`abort()` wakes both sides with an error. `statistics()` reports the peak, so tests can
check the bound held. A chunk larger than the bound is admitted only into an empty
buffer (nothing queued, nothing being written), so the peak is at most
max(max_bytes, largest chunk).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


class BufferAborted(Exception):
    """The other side gave up: the stream cannot go on."""


@dataclass(frozen=True, slots=True)
class BufferStats:
    max_bytes: int
    current_bytes: int
    peak_bytes: int
    chunks_put: int


class ByteBuffer:
    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("a buffer needs a positive size: it is what bounds memory")
        self._max = max_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0  # queued chunks and the one being written
        self._handed = 0  # the chunk the consumer is writing
        self._peak = 0
        self._puts = 0
        self._closed = False
        self._error: BaseException | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    async def put(self, chunk: bytes) -> None:
        while True:
            if self._error is not None:
                raise BufferAborted(str(self._error)) from self._error
            if self._closed:
                raise BufferAborted("buffer closed")
            if self._size == 0 or self._size + len(chunk) <= self._max:
                break
            self._writable.clear()
            await self._writable.wait()
        self._chunks.append(chunk)
        self._size += len(chunk)
        self._puts += 1
        self._peak = max(self._peak, self._size)
        self._readable.set()

    async def get(self) -> bytes | None:
        """The next chunk, or None once closed and drained. Asking for it is what says the
        previous one is written: its bytes stop counting then."""
        if self._handed:
            self._size -= self._handed
            self._handed = 0
            self._writable.set()
        while not self._chunks:
            if self._error is not None:
                raise BufferAborted(str(self._error)) from self._error
            if self._closed:
                return None
            self._readable.clear()
            await self._readable.wait()
        chunk = self._chunks.popleft()
        self._handed = len(chunk)
        return chunk

    def close(self) -> None:
        self._closed = True
        self._readable.set()

    def abort(self, error: BaseException) -> None:
        self._error = error
        self._chunks.clear()
        self._size = self._handed = 0
        self._readable.set()
        self._writable.set()

    def statistics(self) -> BufferStats:
        return BufferStats(self._max, self._size, self._peak, self._puts)
