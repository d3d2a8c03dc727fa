"""Flow control: the one owner of pausing and resuming a connection's reading and writing.

How this works: the transport calls `pause_writing`/`resume_writing` on the protocol when
its write buffer crosses the high/low water marks set in `connection_made` (uvloop's
default low mark is 16 bytes, so we always set both). Writers `await drain()` while
writing is paused. `wait_empty()` waits until the transport's buffer is fully flushed,
which the zero-copy path needs before it writes to the socket itself: it drops the low
mark to 0 and raises a pause if bytes are still queued, so `resume_writing` fires exactly
when the buffer empties. Reading is paused while a response is in flight so a pipelining
client cannot make our input buffer grow; a swarm stream is the exception (a client
leaving must be seen at once), bounded by the protocol's PIPELINE_BUFFER_LIMIT.
"""

from __future__ import annotations

import asyncio


class ConnectionLostError(ConnectionError):
    """The peer went away while we were waiting to write."""


class FlowControl:
    __slots__ = (
        "_closed",
        "_high",
        "_low",
        "_read_paused",
        "_transport",
        "_waiters",
        "_write_paused",
    )

    def __init__(self, transport: asyncio.Transport, *, high: int, low: int) -> None:
        self._transport = transport
        self._high = high
        self._low = low
        self._read_paused = False
        self._write_paused = False
        self._closed = False
        self._waiters: list[asyncio.Future[None]] = []
        transport.set_write_buffer_limits(high=high, low=low)

    # -- reading -------------------------------------------------------------------------
    def pause_reading(self) -> None:
        if not self._read_paused and not self._closed:
            self._read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and not self._closed:
            self._read_paused = False
            self._transport.resume_reading()

    @property
    def reading_paused(self) -> bool:
        return self._read_paused

    # -- writing -------------------------------------------------------------------------
    @property
    def writing_paused(self) -> bool:
        return self._write_paused

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake(None)

    def connection_lost(self) -> None:
        self._closed = True
        self._write_paused = False
        self._wake(ConnectionLostError("connection lost"))

    @property
    def closed(self) -> bool:
        return self._closed

    async def drain(self) -> None:
        """Wait until the transport's buffer is below the low water mark."""
        if self._closed:
            raise ConnectionLostError("connection lost")
        if not self._write_paused:
            return
        await self._wait()

    async def wait_empty(self) -> None:
        """Wait until every byte handed to the transport has reached the socket."""
        if self._closed:
            raise ConnectionLostError("connection lost")
        if self._transport.get_write_buffer_size() == 0:
            return
        self._transport.set_write_buffer_limits(high=1, low=0)  # pauses now, resumes at 0
        try:
            while self._transport.get_write_buffer_size() > 0:
                if self._closed:
                    raise ConnectionLostError("connection lost")
                await self._wait()
        finally:
            if not self._closed:
                self._transport.set_write_buffer_limits(high=self._high, low=self._low)

    def _wait(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return fut

    def _wake(self, exc: BaseException | None) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if fut.done():
                continue
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)
