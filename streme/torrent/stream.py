"""One reader of a file range from the swarm: pieces in order, through a bounded buffer.

How this works: a producer task walks the piece slices of [start, end]. Before awaiting
each piece it moves its read-ahead window (deadlines nearest first) on the torrent's
shared scheduler, then waits for the verified piece bytes (`stall_timeout` at most) and
puts the slice into a `ByteBuffer`. It asks for the next few pieces before it needs
them (`prefetch_depth`), so libtorrent reads one piece while the socket sends another;
those pieces, the one in hand and the buffer (which counts the chunk being written) share
`buffer_bytes`, the stream's memory bound. The HTTP side pulls chunks from the buffer as
fast as the client takes them; when the client is slow the buffer fills, `put` waits,
and the producer stops asking for more pieces.
`close()` cancels the producer and withdraws its deadlines, so a client that leaves
costs nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator

from streme.config import P2PConfig
from streme.torrent.active import ActiveTorrent
from streme.torrent.buffer import BufferAborted, BufferStats, ByteBuffer
from streme.torrent.errors import PieceStalled
from streme.torrent.pieces import (
    PieceSlice,
    last_piece_of_a_player_start,
    pieces_for,
    prefetch_depth,
    ramped_window_bytes,
    slices,
    window,
)
from streme.torrent.tailhint import index_tail_bytes

log = logging.getLogger("streme.p2p")

# Deadlines (ms) of the tail pins: an index the head says is at the end comes right after
# the head's first pieces (nothing plays without it); an unknown tail after the window.
INDEX_TAIL_DEADLINE_MS = 15
UNKNOWN_TAIL_DEADLINE_MS = 1000
# A head claiming more than this for its index is not believed past it.
TAIL_PIN_CAP = 32 * 1024 * 1024
# Before the head is here, a player's stream asks for the file's last piece right behind
# the first ones, if pieces are at most this big: an index at the end (an MP4's moov,
# Matroska's cues) then comes in the seeder's first burst, not one round later (a 4 MiB/s
# libtorrent seeder hands out its upload every 500 ms: Chromium waited 0.45 s for the
# moov). A wrong guess costs that one piece.
GUESSED_TAIL_MAX_PIECE = 1024 * 1024


class RangeReader:
    def __init__(
        self,
        torrent: ActiveTorrent,
        file_index: int,
        start: int,
        end: int,
        config: P2PConfig,
        reader_id: int,
    ) -> None:
        self._torrent = torrent
        self._file_index = file_index
        self._start = start
        self._end = end
        self._config = config
        self._reader_id = reader_id
        layout = torrent.layout
        assert layout is not None
        # Pieces asked for ahead, the piece in hand (waiting to go into the buffer) and
        # the buffer share `buffer_bytes`: that is the stream's memory bound, whatever
        # the client's speed. (Pieces larger than a quarter of it are still read whole:
        # then the buffer keeps half of it.)
        self._depth = prefetch_depth(config.buffer_bytes, layout.piece_length)
        in_hand = (self._depth + 1) * layout.piece_length
        self._buffer = ByteBuffer(max(config.buffer_bytes // 2, config.buffer_bytes - in_hand))
        self._task: asyncio.Task[None] | None = None
        self._done = False
        torrent.reader_opened()

    def statistics(self) -> BufferStats:
        return self._buffer.statistics()

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._produce())
        while (chunk := await self._buffer.get()) is not None:
            yield chunk

    async def _produce(self) -> None:
        torrent = self._torrent
        layout = torrent.layout
        assert layout is not None
        span = torrent.spans[self._file_index]
        position = self._start
        # A stream from byte 0 is a player starting: once its first piece is here, keep the
        # end of the file coming too, for the index it will ask for next (`tail_pins`).
        pins = self._guessed_tail()
        delivered = 0
        depth = self._depth
        parts = iter(slices(layout, span, self._start, self._end))
        pending: deque[tuple[PieceSlice, asyncio.Future[bytes]]] = deque()
        # Before any deadline: libtorrent drops deadlines (and their read alerts) on
        # pieces of a file at priority 0, and every file starts there.
        torrent.want_file(self._file_index)
        starting = True
        try:
            while True:
                # The window covers at least the pieces asked for ahead (their
                # deadlines must follow the reading order, not tie with the next piece).
                size = max(
                    ramped_window_bytes(
                        self._config.readahead_bytes, layout.piece_length, delivered
                    ),
                    (depth + 1) * layout.piece_length,
                )
                ahead = window(layout, span, position, size)
                near = {p for p, _ in ahead}
                torrent.set_window(
                    self._reader_id, ahead + [(p, ms) for p, ms in pins if p not in near]
                )
                while len(pending) < depth and (part := next(parts, None)) is not None:
                    pending.append((part, torrent.piece(part.piece)))
                # A seek to where nothing is requested yet must not queue behind what
                # was; nor must an index the player needs before anything else plays.
                if starting:
                    await torrent.make_way()
                    starting = False
                if not pending:
                    break
                part, future = pending.popleft()
                data = await self._wait(part.piece, future)
                chunk = data[part.start : part.start + part.length]
                del data
                if position == 0:
                    pins = self._tail_pins(chunk)
                    starting = bool(pins) and pins[0][1] == INDEX_TAIL_DEADLINE_MS
                await self._buffer.put(chunk)
                del chunk
                position += part.length
                delivered += 1
            self._buffer.close()
        except BufferAborted:
            pass
        except Exception as exc:
            log.error("stream of %s stopped: %s", torrent.infohash, exc)
            self._buffer.abort(exc)
        finally:
            for _, future in pending:
                future.cancel()
            torrent.withdraw(self._reader_id)

    def _guessed_tail(self) -> list[tuple[int, int]]:
        """The file's last piece as an index tail, for a player's stream before its head
        tells (`GUESSED_TAIL_MAX_PIECE`)."""
        layout = self._torrent.layout
        assert layout is not None
        span = self._torrent.spans[self._file_index]
        if layout.piece_length > GUESSED_TAIL_MAX_PIECE:
            return []
        piece = last_piece_of_a_player_start(layout, span, self._start, self._end, self._depth)
        return [] if piece is None else [(piece, INDEX_TAIL_DEADLINE_MS)]

    def _tail_pins(self, head: bytes) -> list[tuple[int, int]]:
        """(piece, deadline ms) for the end of the file a player will read before it
        plays, judged from the file's first bytes (`tailhint`).

        An index known to be at the end is needed before anything else plays: its pieces
        come right after the first pieces of the head. Where the head does not tell,
        `p2p.tail_pin_bytes` is kept coming behind the nearest pieces."""
        layout = self._torrent.layout
        assert layout is not None
        span = self._torrent.spans[self._file_index]
        hint = index_tail_bytes(head, span.size)
        if hint is None:
            size, deadline = self._config.tail_pin_bytes, UNKNOWN_TAIL_DEADLINE_MS
        else:
            size, deadline = min(hint, TAIL_PIN_CAP), INDEX_TAIL_DEADLINE_MS
        if size <= 0:
            return []
        start = max(0, span.size - size)
        return [(p, deadline) for p in pieces_for(layout, span, start, span.size - 1)]

    async def _wait(self, piece: int, future: asyncio.Future[bytes]) -> bytes:
        """The piece's bytes; asked for afresh each `piece_kick_after` it is late, and a
        `PieceStalled` after `stall_timeout`."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._config.stall_timeout
        while True:
            left = give_up - loop.time()
            try:
                return await asyncio.wait_for(
                    asyncio.shield(future), min(left, self._config.piece_kick_after)
                )
            except asyncio.CancelledError:
                future.cancel()
                raise
            except TimeoutError:
                if loop.time() >= give_up:
                    future.cancel()
                    raise PieceStalled(
                        f"piece {piece} of {self._torrent.infohash} did not arrive in "
                        f"{self._config.stall_timeout:g} s"
                    ) from None
                await self._torrent.kick(piece)

    def close(self) -> None:
        """Stop producing and withdraw this reader's deadlines (idempotent)."""
        if self._done:
            return
        self._done = True
        stats = self._buffer.statistics()
        self._buffer.abort(ConnectionAbortedError("the client went away"))
        if self._task is not None:
            self._task.cancel()
        self._torrent.withdraw(self._reader_id)
        self._torrent.reader_closed(stats if self._task is not None else None)
