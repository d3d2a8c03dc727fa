"""A piece's bytes reach a reader only if they match the torrent's SHA-1 for that piece.

A real libtorrent session seeds a real torrent; the bytes handed to `on_read_piece` are
what a `read_piece_alert` would carry, once right and once wrong (as after a failed
write on a full disk)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import libtorrent as lt
import pytest

from streme.torrent.active import ActiveTorrent
from streme.torrent.errors import P2PError
from tests.torrent.swarm import LOOPBACK_SETTINGS, make_torrent, random_bytes


@pytest.fixture
def session() -> Iterator[lt.session]:
    ses = lt.session(LOOPBACK_SETTINGS)
    yield ses
    ses.pause()


def seeded(session: lt.session, root: Path, piece_length: int) -> ActiveTorrent:
    blob, infohash = make_torrent(
        root, {"movie.mp4": random_bytes(3 * piece_length, 7)}, piece_length
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(blob)
    params.save_path = str(root)
    params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    ti = params.ti
    hashes = [bytes(ti.hash_for_piece(p)) for p in range(ti.num_pieces())]
    return ActiveTorrent(infohash, handle, lambda _a: None, lambda _a: None, piece_hashes=hashes)


@pytest.mark.parametrize("piece_length", [64 * 1024, 4 * 1024 * 1024])
async def test_wrong_bytes_are_never_handed_out(
    session: lt.session, tmp_path: Path, piece_length: int
) -> None:
    active = seeded(session, tmp_path, piece_length)
    right = (tmp_path / "movie.mp4").read_bytes()[piece_length : 2 * piece_length]
    waiter = active.piece(1)
    active.on_read_piece(1, b"\0" * piece_length)  # a hole where a write failed
    assert not waiter.done()
    assert active.rechecking  # libtorrent is asked to check its files again
    active.on_read_piece(1, right)
    assert await asyncio.wait_for(waiter, 5) == right


async def test_a_failed_torrent_fails_a_piece_asked_for_later(
    session: lt.session, tmp_path: Path
) -> None:
    """A reader between two pieces when the torrent failed (a full disk: `fail_waiters`)
    asks for its next piece afterwards: that must fail at once, not wait out
    `stall_timeout` (seen once in test_disk_full: C's response ended after 15.1 s)."""
    active = seeded(session, tmp_path, 64 * 1024)
    waiting = active.piece(0)
    failure = P2PError("the disk is full")
    active.failed = failure
    active.fail_waiters(failure)
    with pytest.raises(P2PError):
        await waiting
    later = active.piece(1)
    assert later.done()
    with pytest.raises(P2PError):
        await later
