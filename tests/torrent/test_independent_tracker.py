"""Peers found through a tracker only: opentracker on 127.0.0.1, no static peers.

The server is given nothing but the infohash and `trackers=[announce URL]` (no DHT, LSD,
PEX or static peers), so every byte it streams comes from a seeder it learnt of from
the tracker. Seeders: libtorrent, aria2 and transmission, each announcing to the tracker
named in its .torrent. (Every P2P test finds its seeders so; these check the tracker's
side too: the server announced itself.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import RunningServer
from tests.torrent.peers import (
    TR_P2P,
    Torrent,
    Tracker,
    Transmission,
    write_torrent,
)
from tests.torrent.swarm import make_seeder, p2p_settings, random_bytes, sha256
from tests.torrent.test_p2p_stream import fetch

MiB = 1024 * 1024
SIZE = MiB + 7  # transmission is slow to start (see test_independent_seeder.py)


def stream_via_tracker(
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    infohash: str,
    data: bytes,
    **p2p: object,
) -> None:
    """Stream the seeder's file (the tracker hands the seeder out already) through the
    tracker, whole and from the middle; `p2p` are settings the caller changes."""
    server = make_server(p2p=p2p_settings(tracker, **p2p))
    status, headers, body = fetch(server, f"/stream/proxy/{infohash}")
    assert status == 200
    assert int(headers["content-length"]) == len(data)
    assert sha256(body) == sha256(data)
    start = len(data) // 2 + 1
    status, _, body = fetch(server, f"/stream/proxy/{infohash}", {"Range": f"bytes={start}-"})
    assert status == 206
    assert sha256(body) == sha256(data[start:])
    counts = tracker.scrape(infohash)
    assert counts["complete"] + counts["incomplete"] >= 2  # the server announced too


def test_libtorrent_seeder_found_through_opentracker(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    data = random_bytes(SIZE, 21)
    seeder = make_seeder(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    try:
        stream_via_tracker(make_server, tracker, seeder.infohash, data)
    finally:
        seeder.stop()


def test_aria2_seeder_found_through_opentracker(
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    aria2_seeder: Callable[[Torrent], str],
    tmp_path: Path,
) -> None:
    """Neither the tracker nor the seeder is libtorrent."""
    data = random_bytes(SIZE, 22)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    aria2_seeder(torrent)
    stream_via_tracker(make_server, tracker, torrent.infohash, data)


def test_transmission_seeder_found_through_opentracker(
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    transmission_seeder: Callable[..., Transmission],
    tmp_path: Path,
) -> None:
    """Neither the tracker nor the seeder is libtorrent."""
    data = random_bytes(SIZE, 23)
    torrent = write_torrent(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    transmission_seeder(torrent)
    stream_via_tracker(make_server, tracker, torrent.infohash, data, **TR_P2P)
