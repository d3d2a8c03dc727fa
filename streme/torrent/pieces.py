"""Piece maths: which pieces hold a byte range of a file, and what to ask for first. Pure.

A torrent is one byte stream cut into pieces of `piece_length` bytes (the last may be
shorter); file `f` occupies [offset, offset + size) of that stream. A read of file bytes
[start, end] needs the pieces covering the stream bytes [offset + start, offset + end].

The read-ahead window: from the piece being read, the next pieces covering `window_bytes`,
nearest first, with deadlines growing with distance (torrest's +10 ms per piece), so the
scheduler fetches what the player needs next before what it needs later.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Layout:
    piece_length: int
    total_size: int  # of the whole torrent

    @property
    def num_pieces(self) -> int:
        return (self.total_size + self.piece_length - 1) // self.piece_length

    def piece_size(self, piece: int) -> int:
        if piece == self.num_pieces - 1:
            return self.total_size - piece * self.piece_length
        return self.piece_length


@dataclass(frozen=True, slots=True)
class FileSpan:
    offset: int  # of the file's first byte in the torrent's stream
    size: int


@dataclass(frozen=True, slots=True)
class PieceSlice:
    """`length` bytes of `piece`, starting `start` bytes into it."""

    piece: int
    start: int
    length: int


def slices(layout: Layout, span: FileSpan, start: int, end: int) -> list[PieceSlice]:
    """The piece slices holding file bytes [start, end] (inclusive), in order."""
    if not 0 <= start <= end < span.size:
        raise ValueError(f"range {start}-{end} is outside a file of {span.size} bytes")
    out: list[PieceSlice] = []
    pos = span.offset + start
    stop = span.offset + end + 1
    plen = layout.piece_length
    while pos < stop:
        piece = pos // plen
        within = pos - piece * plen
        length = min(plen - within, stop - pos)
        out.append(PieceSlice(piece, within, length))
        pos += length
    return out


def pieces_for(layout: Layout, span: FileSpan, start: int, end: int) -> range:
    """The pieces covering file bytes [start, end] (inclusive)."""
    first = (span.offset + start) // layout.piece_length
    last = (span.offset + end) // layout.piece_length
    return range(first, last + 1)


def file_pieces(layout: Layout, span: FileSpan) -> range:
    if span.size == 0:
        return range(0)
    return pieces_for(layout, span, 0, span.size - 1)


def window(
    layout: Layout, span: FileSpan, position: int, window_bytes: int, step_ms: int = 10
) -> list[tuple[int, int]]:
    """(piece, deadline ms) for the read-ahead window starting at file byte `position`."""
    if span.size == 0 or position >= span.size:
        return []
    end = min(span.size - 1, position + max(window_bytes, 1) - 1)
    return [(p, i * step_ms) for i, p in enumerate(pieces_for(layout, span, position, end))]


def last_piece_of_a_player_start(
    layout: Layout, span: FileSpan, start: int, end: int, ahead: int
) -> int | None:
    """The file's last piece when [start, end] is the whole file (what a player asks for
    first), unless the first `ahead` + 1 pieces, asked for anyway, reach it."""
    if span.size == 0 or start != 0 or end != span.size - 1:
        return None
    first = pieces_for(layout, span, 0, 0).start
    last = pieces_for(layout, span, span.size - 1, span.size - 1).start
    return last if last - first > ahead else None


def prefetch_depth(buffer_bytes: int, piece_length: int, most: int = 4) -> int:
    """How many pieces a reader asks for ahead of the one it is sending.

    Reading a piece is a round trip through libtorrent's disk thread; asking for the next
    ones meanwhile keeps the socket busy. They count against the stream's memory, so at
    most half the buffer is spent on them, and always at least one piece is asked for.
    """
    return max(1, min(most, buffer_bytes // 2 // max(piece_length, 1)))


def ramped_window_bytes(readahead_bytes: int, piece_length: int, delivered: int) -> int:
    """The read-ahead window after `delivered` pieces of a stream: two pieces, doubling
    with each piece delivered, up to `readahead_bytes`.

    Every piece with a deadline gets libtorrent's top priority, and its picker takes
    top-priority pieces in random order: a full 16 MiB window at the start put the
    first piece behind up to 12 MiB of others (half a second behind a 20 MB/s seeder).
    """
    grown = 2 * piece_length << min(delivered, 32)
    return max(piece_length, min(readahead_bytes, grown))
