"""Nothing may depend on the seeder being libtorrent: stream from aria2 and transmission.

The server finds each seeder through the session's tracker, on loopback (see peers.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streme.cache.torrentmeta import parse_torrent
from tests.conftest import RunningServer
from tests.torrent.peers import (
    TR_P2P,
    Torrent,
    Tracker,
    Transmission,
    write_torrent,
)
from tests.torrent.swarm import p2p_settings, random_bytes, sha256
from tests.torrent.test_p2p_stream import fetch

MiB = 1024 * 1024
SIZE = 2 * MiB + 5  # not a whole number of pieces
# Transmission works in 500 ms pulses: its ut_metadata reply waits for a 2-second batch,
# and the server's request queue (slow start) grows one round trip, one pulse, at a time
# (~1 MB/s after 2 s). Its tests stream less, to stay at a few seconds.
TR_SIZE = MiB + 5


def check_whole_and_middle(server: RunningServer, infohash: str, data: bytes) -> None:
    status, headers, body = fetch(server, f"/stream/proxy/{infohash}")
    assert status == 200
    assert int(headers["content-length"]) == len(data)
    assert sha256(body) == sha256(data)
    start, end = len(data) // 2 + 3, len(data) // 2 + 200_002
    status, headers, body = fetch(
        server, f"/stream/proxy/{infohash}", {"Range": f"bytes={start}-{end}"}
    )
    assert status == 206
    assert headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert sha256(body) == sha256(data[start : end + 1])


def test_stream_from_aria2_seeder(
    make_server: Callable[..., RunningServer],
    aria2_seeder: Callable[[Torrent], str],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    data = random_bytes(SIZE, 9)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    aria2_seeder(torrent)
    server = make_server(p2p=p2p_settings(tracker))
    check_whole_and_middle(server, torrent.infohash, data)


def test_stream_from_transmission_seeder(
    make_server: Callable[..., RunningServer],
    transmission_seeder: Callable[..., Transmission],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    data = random_bytes(TR_SIZE, 10)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    transmission_seeder(torrent)
    server = make_server(p2p=p2p_settings(tracker, **TR_P2P))
    check_whole_and_middle(server, torrent.infohash, data)


def test_seek_into_the_middle_from_transmission_seeder(
    make_server: Callable[..., RunningServer],
    transmission_seeder: Callable[..., Transmission],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    """A cold start in the middle of the file (a player's seek): only pieces from there."""
    data = random_bytes(TR_SIZE, 16)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    transmission_seeder(torrent)
    server = make_server(p2p=p2p_settings(tracker, **TR_P2P))
    start, end = TR_SIZE // 2 + 3, TR_SIZE // 2 + 200_002
    status, headers, body = fetch(
        server, f"/stream/proxy/{torrent.infohash}", {"Range": f"bytes={start}-{end}"}
    )
    assert status == 206
    assert headers["content-range"] == f"bytes {start}-{end}/{TR_SIZE}"
    assert sha256(body) == sha256(data[start : end + 1])


def test_second_file_of_a_multi_file_torrent_from_transmission(
    make_server: Callable[..., RunningServer],
    transmission_seeder: Callable[..., Transmission],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    # All videos, none a whole number of pieces: whichever the torrent lists second
    # shares a piece with its neighbours.
    files = {
        "Pack/S01E01.mkv": random_bytes(MiB // 2 + 11, 11),
        "Pack/S01E02.mkv": random_bytes(MiB // 2 + 70_013, 12),
        "Pack/S01E03.mkv": random_bytes(MiB // 2 + 17, 13),
    }
    torrent = write_torrent(tmp_path / "seed", files, tracker=tracker)
    order = ["/".join(("Pack", *f.path)) for f in parse_torrent(torrent.blob).files]
    assert sorted(order) == sorted(files)
    transmission_seeder(torrent)
    server = make_server(p2p=p2p_settings(tracker, **TR_P2P))
    status, headers, body = fetch(server, f"/stream/proxy/{torrent.infohash}?file=1")
    assert status == 200
    assert int(headers["content-length"]) == len(files[order[1]])
    assert sha256(body) == sha256(files[order[1]])


def test_a_longer_stream_from_transmission_needs_no_reconnect(
    make_server: Callable[..., RunningServer],
    transmission_seeder: Callable[..., Transmission],
    tracker: Tracker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """libtorrent cancels every request in flight when a deadline is set on a torrent
    that has none, and transmission 3.00 never answers those cancels: the stream stalls
    until the server reconnects (`piece_kick_after`, twice). The server's far deadlines
    (the planner's anchors) keep libtorrent's list from running empty between a reader's
    windows, so a stream on the defaults never gets there (it did twice in the first
    8 MiB, 37 s in all, when one anchor sat right after the window and came in with it)."""
    data = random_bytes(64 * MiB, 15)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, None, 256 * 1024, tracker)
    transmission_seeder(torrent)
    server = make_server(p2p=p2p_settings(tracker))
    caplog.set_level(logging.WARNING, logger="streme.p2p")
    path = f"/stream/proxy/{torrent.infohash}"
    status, _, body = fetch(server, path, {"Range": f"bytes=0-{8 * MiB - 1}"})
    assert status == 206
    assert sha256(body) == sha256(data[: 8 * MiB])
    kicks = [r.getMessage() for r in caplog.records if "made no progress" in r.getMessage()]
    assert kicks == []


@pytest.mark.slow
def test_transmission_on_its_own_choke_schedule(
    make_server: Callable[..., RunningServer],
    transmission_seeder: Callable[..., Transmission],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    """Transmission left alone unchokes the server on its 10-second round: the first byte
    comes late but the bytes are right."""
    data = random_bytes(TR_SIZE, 14)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    daemon = transmission_seeder(torrent, fast_unchoke=False)
    server = make_server(p2p=p2p_settings(tracker))
    started = time.monotonic()
    status, _, body = fetch(server, f"/stream/proxy/{torrent.infohash}")
    assert status == 200
    assert sha256(body) == sha256(data)
    assert time.monotonic() - started < 18  # one round (10 s) plus metadata and transfer
    assert daemon.rechokes == 0


@pytest.mark.slow
def test_transmission_seek_then_read_from_the_start(
    make_server: Callable[..., RunningServer],
    transmission_seeder: Callable[..., Transmission],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    """A player that seeks (the range in the middle) and then reads from byte 0: the
    second reader's deadlines cancel the requests for pieces 1-7 already in flight."""
    data = random_bytes(TR_SIZE, 17)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    transmission_seeder(torrent)
    server = make_server(p2p=p2p_settings(tracker, **TR_P2P))
    start = TR_SIZE // 2 + 3
    status, _, body = fetch(
        server, f"/stream/proxy/{torrent.infohash}", {"Range": f"bytes={start}-"}
    )
    assert status == 206
    assert sha256(body) == sha256(data[start:])
    status, _, body = fetch(server, f"/stream/proxy/{torrent.infohash}")
    assert status == 200
    assert sha256(body) == sha256(data)


@pytest.mark.slow
def test_transmission_unchoking_before_the_metadata_arrives(
    make_server: Callable[..., RunningServer],
    transmission_seeder: Callable[..., Transmission],
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    """Transmission's 10-second choke round may fall between the server connecting and
    the metadata arriving (about 3 s, transmission sends ut_metadata in its 2-second
    low-priority batch): about a third of stream starts. libtorrent then requests a piece
    before the reader sets its deadlines, and cancels it when they come. Forced here."""
    data = random_bytes(TR_SIZE, 15)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    daemon = transmission_seeder(torrent, fast_unchoke=False)
    # If the cancels do stall the piece, the server reconnects, and transmission left
    # alone unchokes the new connection on its next round: up to 10 s more, and this can
    # happen twice in one stream (libtorrent cancels again when its deadline list runs
    # empty and fills again). The server's default stall_timeout is 60 s.
    server = make_server(p2p=p2p_settings(tracker, **{**TR_P2P, "stall_timeout": 45}))
    deadline = time.monotonic() + 10

    def unchoke_on_connect() -> None:
        while not daemon.peers(torrent.infohash) and time.monotonic() < deadline:
            time.sleep(0.02)
        daemon.rechoke()

    thread = threading.Thread(target=unchoke_on_connect)
    thread.start()
    try:
        status, _, body = fetch(server, f"/stream/proxy/{torrent.infohash}")
    finally:
        thread.join(timeout=15)
    assert status == 200
    assert sha256(body) == sha256(data)
