"""Streaming a cache miss from a real local swarm: a libtorrent seeder on 127.0.0.1, which
the server finds through the session's tracker."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streme.cache.mediatypes import content_type_for
from streme.cache.torrentmeta import parse_torrent
from streme.torrent.pieces import prefetch_depth
from streme.torrent.snapshot import TorrentSnapshot
from tests.conftest import RunningServer, wait_until
from tests.torrent.peers import Tracker
from tests.torrent.swarm import Seeder, make_seeder, p2p_settings, random_bytes, sha256

MiB = 1024 * 1024
SIZE = 8 * MiB + 12345  # not a whole number of pieces


@pytest.fixture
def seeder(tmp_path: Path, tracker: Tracker) -> Iterator[Seeder]:
    seed = make_seeder(tmp_path / "seed", {"movie.mp4": random_bytes(SIZE, 1)}, tracker=tracker)
    yield seed
    seed.stop()


def fetch(
    server: RunningServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_whole_file_from_bare_infohash(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    server = make_server(p2p=p2p_settings(tracker))
    status, headers, body = fetch(server, f"/stream/proxy/{seeder.infohash}")
    assert status == 200
    assert headers["content-type"] == "video/mp4"
    assert int(headers["content-length"]) == SIZE
    assert sha256(body) == sha256(seeder.files["movie.mp4"])


def test_static_peer_without_a_tracker(
    make_server: Callable[..., RunningServer], seeder: Seeder
) -> None:
    """p2p.static_peers: a seed box the server is told of, and no tracker at all."""
    server = make_server(p2p=p2p_settings(None, static_peers=[seeder.peer]))
    status, _, body = fetch(server, f"/stream/proxy/{seeder.infohash}")
    assert status == 200
    assert sha256(body) == sha256(seeder.files["movie.mp4"])


def test_ranges_head_middle_tail(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    server = make_server(p2p=p2p_settings(tracker))
    data = seeder.files["movie.mp4"]
    for start, end in [(0, 65535), (SIZE // 2 - 1000, SIZE // 2 + 300_000), (SIZE - 777, SIZE - 1)]:
        status, headers, body = fetch(
            server, f"/stream/proxy/{seeder.infohash}", {"Range": f"bytes={start}-{end}"}
        )
        assert status == 206
        assert headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
        assert sha256(body) == sha256(data[start : end + 1])


def test_head_needs_only_metadata(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    server = make_server(p2p=p2p_settings(tracker))
    status, headers, body = fetch(server, f"/stream/proxy/{seeder.infohash}", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == SIZE
    assert headers["etag"] == f'"{seeder.infohash}-0"'
    time.sleep(0.5)  # the seeder is on loopback: a download would be well under way
    torrent = snapshot(server, seeder.infohash)
    assert torrent.total_done == 0  # not a byte downloaded
    assert torrent.peers >= 1  # and still connected, for the GET that follows
    start = SIZE // 3
    status, _, body = fetch(
        server, f"/stream/proxy/{seeder.infohash}", {"Range": f"bytes={start}-{start + 99_999}"}
    )
    assert status == 206
    assert sha256(body) == sha256(seeder.files["movie.mp4"][start : start + 100_000])


def test_finished_download_is_served_from_cache_without_p2p(
    make_server: Callable[..., RunningServer],
    seeder: Seeder,
    tracker: Tracker,
    cache_dir: Path,
) -> None:
    server = make_server(p2p=p2p_settings(tracker))
    status, _, body = fetch(server, f"/stream/proxy/{seeder.infohash}")
    assert status == 200
    assert sha256(body) == sha256(seeder.files["movie.mp4"])
    published = cache_dir / seeder.infohash / "movie.mp4"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        published.exists() and (cache_dir / f"{seeder.infohash}.torrent").exists()
    ):
        time.sleep(0.05)
    assert published.exists()
    server.stop()
    offline = make_server()  # P2P off: the cache alone must answer
    status, _, body = fetch(offline, f"/stream/proxy/{seeder.infohash}")
    assert status == 200
    assert sha256(body) == sha256(seeder.files["movie.mp4"])


def test_no_peers_times_out_with_504(
    make_server: Callable[..., RunningServer], tracker: Tracker
) -> None:
    nobody = "ab" * 20
    tracker.allow(nobody)  # the tracker knows the torrent, and no peer of it
    # p2p.metadata_timeout 1 s: the 504 below comes after it.
    server = make_server(p2p=p2p_settings(tracker, metadata_timeout=1))
    started = time.monotonic()
    status, _, body = fetch(server, f"/stream/proxy/{nobody}")
    assert status == 504
    assert json.loads(body)["error"] == "metadata_timeout"
    assert time.monotonic() - started < 10


def snapshot(server: RunningServer, infohash: str) -> TorrentSnapshot:
    """The engine's public view of `infohash` (which must be in the session)."""
    engine = server.app.engine
    assert engine is not None
    found = server.call(lambda: engine.torrent_snapshot(infohash))
    assert found is not None, f"{infohash} is not in the session"
    return found


def test_slow_reader_memory_is_bounded(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    buffer_bytes = 256 * 1024  # p2p.buffer_bytes: the bound the stats are checked against
    server = make_server(p2p=p2p_settings(tracker, buffer_bytes=buffer_bytes))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.sendall(f"GET /stream/proxy/{seeder.infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = bytearray()
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    _head, _, body = bytes(received).partition(b"\r\n\r\n")
    got = bytearray(body)
    slow_until = time.monotonic() + 1.5
    while len(got) < SIZE:
        chunk = sock.recv(16 * 1024 if time.monotonic() < slow_until else 1 << 20)
        if not chunk:
            break
        got += chunk
        if time.monotonic() < slow_until:
            time.sleep(0.01)  # about 1.6 MB/s for 1.5 s: far slower than the swarm
    sock.close()
    assert sha256(bytes(got)) == sha256(seeder.files["movie.mp4"])
    assert wait_until(lambda: len(snapshot(server, seeder.infohash).reader_stats) == 1)
    stats = snapshot(server, seeder.infohash).reader_stats[-1]
    piece = 64 * 1024
    prefetched = prefetch_depth(buffer_bytes, piece) * piece
    # Pieces asked for ahead and the one in hand share the bound with the buffer.
    assert stats.max_bytes == max(buffer_bytes // 2, buffer_bytes - prefetched - piece)
    assert stats.peak_bytes + prefetched <= buffer_bytes


def test_disconnect_mid_stream_leaks_nothing(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    # p2p.buffer_bytes 128 KiB: each stream soon fills its buffer and blocks on the socket.
    server = make_server(p2p=p2p_settings(tracker, buffer_bytes=128 * 1024))
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024)
        sock.sendall(f"GET /stream/proxy/{seeder.infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")
        sock.close()
    assert wait_until(lambda: server.connection_count() == 0)
    assert wait_until(lambda: snapshot(server, seeder.infohash).readers == 0)
    assert snapshot(server, seeder.infohash).pending_deadlines == 0
    assert wait_until(lambda: server.task_count() == 0)


def test_two_concurrent_readers(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    server = make_server(p2p=p2p_settings(tracker))
    results: list[bytes] = []

    def read(spec: str) -> None:
        results.append(fetch(server, f"/stream/proxy/{seeder.infohash}", {"Range": spec})[2])

    threads = [
        threading.Thread(target=read, args=("bytes=0-",)),
        threading.Thread(target=read, args=(f"bytes={SIZE // 3}-",)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    data = seeder.files["movie.mp4"]
    assert sorted(map(sha256, results)) == sorted([sha256(data), sha256(data[SIZE // 3 :])])


def test_seek_during_stream(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    # p2p.buffer_bytes 128 KiB: the first stream is still reading when the player seeks.
    server = make_server(p2p=p2p_settings(tracker, buffer_bytes=128 * 1024))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(f"GET /stream/proxy/{seeder.infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")
    sock.close()  # the player seeks: drops this connection, asks for the middle
    start = SIZE // 2 + 4321
    status, _, body = fetch(
        server, f"/stream/proxy/{seeder.infohash}", {"Range": f"bytes={start}-"}
    )
    assert status == 206
    assert sha256(body) == sha256(seeder.files["movie.mp4"][start:])


def test_two_files_of_a_multi_file_torrent(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    files = {
        "Pack/E01.mkv": random_bytes(3 * MiB + 5, 2),
        "Pack/E02.mkv": random_bytes(2 * MiB + 7, 3),
        "Pack/notes.txt": b"hello",
    }
    seed = make_seeder(tmp_path / "pack", files, tracker=tracker)
    try:
        server = make_server(p2p=p2p_settings(tracker))
        order = ["/".join(("Pack", *f.path)) for f in parse_torrent(seed.torrent).files]
        assert sorted(order) == sorted(files)
        for name in ("Pack/E02.mkv", "Pack/E01.mkv", "Pack/notes.txt"):
            index = order.index(name)
            status, headers, body = fetch(server, f"/stream/proxy/{seed.infohash}?file={index}")
            assert status == 200
            assert headers["content-type"] == content_type_for(name)
            assert sha256(body) == sha256(files[name])
        status, _, body = fetch(server, f"/stream/proxy/{seed.infohash}")
        assert sha256(body) == sha256(files["Pack/E01.mkv"])  # default: the largest video
        status, _, body = fetch(server, f"/stream/proxy/{seed.infohash}?file=3")
        assert status == 404
        assert json.loads(body)["error"] == "file_not_found"
    finally:
        seed.stop()


def test_seeder_vanishing_mid_stream_ends_the_response(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    seed = make_seeder(
        tmp_path / "slow",
        {"movie.mp4": random_bytes(SIZE, 4)},
        upload_limit=2 * MiB,
        tracker=tracker,
    )
    # p2p.stall_timeout 2 s: the response ends soon after the seeder goes (checked below);
    # p2p.readahead_bytes 256 KiB: the server has not fetched the whole file by then.
    server = make_server(p2p=p2p_settings(tracker, stall_timeout=2, readahead_bytes=256 * 1024))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(f"GET /stream/proxy/{seed.infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 200 OK")
    seed.stop()
    started = time.monotonic()
    while chunk := sock.recv(1 << 20):
        received += chunk
    sock.close()
    body = received.partition(b"\r\n\r\n")[2]
    assert len(body) < SIZE  # cut short: never presented as complete
    assert seed.files["movie.mp4"].startswith(body)  # and every byte served was right
    assert time.monotonic() - started < 15
    assert fetch(server, "/health")[0] == 200  # the server keeps serving


def test_no_peers_then_cooldown(
    make_server: Callable[..., RunningServer], tracker: Tracker
) -> None:
    lonely = "cd" * 20
    tracker.allow(lonely)  # the tracker knows the torrent, and no peer of it
    # p2p.no_peers_timeout 1 s: the 504 comes after it; p2p.failure_cooldown 60 s: the
    # Retry-After of the 503 that follows.
    settings = p2p_settings(tracker, no_peers_timeout=1, failure_cooldown=60)
    server = make_server(p2p=settings)
    started = time.monotonic()
    status, _, body = fetch(server, f"/stream/proxy/{lonely}")
    assert (status, json.loads(body)["error"]) == (504, "no_peers")
    assert time.monotonic() - started < 10
    status, headers, body = fetch(server, f"/stream/proxy/{lonely}")
    assert (status, json.loads(body)["error"]) == (503, "cooldown")
    assert 0 < int(headers["retry-after"]) <= 60


def test_capacity_counts_torrents_in_use(
    make_server: Callable[..., RunningServer], seeder: Seeder, tracker: Tracker
) -> None:
    """`max_active_torrents` counts torrents with a reader: one nobody reads makes room."""
    newcomer = "ef" * 20
    tracker.allow(newcomer)  # the tracker knows it, and no peer of it
    # p2p.max_active_torrents 1: the second torrent finds no room; p2p.metadata_timeout
    # 1 s: the newcomer, with no peers, fails after it.
    settings = p2p_settings(tracker, max_active_torrents=1, metadata_timeout=1)
    server = make_server(p2p=settings)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024)
    sock.sendall(f"GET /stream/proxy/{seeder.infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")  # a reader holds the only slot
    status, _, body = fetch(server, f"/stream/proxy/{newcomer}")
    assert (status, json.loads(body)["error"]) == (503, "capacity")
    sock.close()
    assert wait_until(lambda: snapshot(server, seeder.infohash).readers == 0)
    # Now idle: it leaves for the newcomer (which has no peers: metadata times out).
    status, _, body = fetch(server, f"/stream/proxy/{newcomer}")
    assert (status, json.loads(body)["error"]) == (504, "metadata_timeout")
    engine = server.app.engine
    assert engine is not None
    assert seeder.infohash not in {t.infohash for t in server.call(engine.snapshot)}


def test_restart_mid_download_resumes(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path, cache_dir: Path
) -> None:
    data = random_bytes(SIZE, 5)
    # The first swarm has only the first half of the file: the download cannot finish.
    half = make_seeder(tmp_path / "half", {"movie.mp4": data}, keep_fraction=0.5, tracker=tracker)
    full: Seeder | None = None
    try:
        # http.shutdown_timeout 1 s: the open stream does not hold up the restart.
        first = make_server(p2p=p2p_settings(tracker), shutdown_timeout=1)
        sock = socket.create_connection(("127.0.0.1", first.port), timeout=30)
        sock.sendall(f"GET /stream/proxy/{half.infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while len(got) < MiB:
            got += sock.recv(1 << 20)
        sock.close()
        assert wait_until(lambda: snapshot(first, half.infohash).total_done > MiB)
        first.stop()  # mid-download: saves resume data
        assert (cache_dir / ".incomplete" / f"{half.infohash}.resume").exists()
        assert not (cache_dir / half.infohash).exists()  # not finished: nothing published
        full = make_seeder(tmp_path / "full", {"movie.mp4": data}, tracker=tracker)
        # The tracker hands out both seeders now, the half one too.
        second = make_server(p2p=p2p_settings(tracker))
        status, _, body = fetch(second, f"/stream/proxy/{full.infohash}")
        assert status == 200
        assert sha256(body) == sha256(data)
        assert snapshot(second, full.infohash).downloaded < SIZE
    finally:
        half.stop()
        if full is not None:
            full.stop()
