"""What libtorrent has in flight, read from its download queue (pure helpers of active.py)."""

from __future__ import annotations

from typing import Any

from streme.torrent.active import piece_progress, stale_bytes

NONE, REQUESTED, WRITING, FINISHED = 0, 1, 2, 3


def entry(piece: int, *blocks: tuple[int, int]) -> Any:
    """A download-queue entry: (state, bytes received) per 16 KiB block."""
    return {
        "piece_index": piece,
        "blocks_in_piece": len(blocks),
        "blocks": [
            {"state": state, "bytes_progress": got, "block_size": 16384, "num_peers": 1}
            for state, got in blocks
        ],
    }


QUEUE = [
    entry(4, (FINISHED, 16384), (REQUESTED, 1000), (NONE, 0)),
    entry(9, (REQUESTED, 0), (REQUESTED, 16000), (WRITING, 16384)),
]


def test_progress_counts_received_bytes_of_one_piece() -> None:
    assert piece_progress(QUEUE, 4) == 16384 + 1000
    assert piece_progress(QUEUE, 9) == 16000 + 16384
    assert piece_progress(QUEUE, 5) == 0


def test_stale_bytes_are_requested_and_unreceived_for_pieces_nobody_needs() -> None:
    assert stale_bytes(QUEUE, {4}) == 16384 + 384  # piece 9's two requested blocks
    assert stale_bytes(QUEUE, {9}) == 16384 - 1000
    assert stale_bytes(QUEUE, {4, 9}) == 0
    assert stale_bytes(QUEUE, {None}) == (16384 - 1000) + 16384 + 384
    assert stale_bytes([], set()) == 0
