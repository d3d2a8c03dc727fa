"""`/api/cache`, `/api/stats` and `/api/files` against a real server (P2P off), over
loopback sockets: listing and paging, one title, pinning, deleting (refused while in use
unless forced, and a response in flight still byte-exact), pruning, a .torrent upload."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from tests.api.apiclient import call
from tests.conftest import RunningServer, wait_until, write_video

MiB = 1024 * 1024
A = "a" * 40
B = "b" * 40


def hits(server: RunningServer, infohash: str, n: int) -> None:
    for _ in range(n):
        status, _, _ = call(server.port, "GET", f"/stream/proxy/{infohash}")
        assert status == 200


def test_list_page_and_one_title(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    write_video(cache_dir, f"{A}.mp4", 2 * MiB)
    write_video(cache_dir, f"Movie [{B}].mkv", 3 * MiB, seed=3)
    server = make_server()
    wait_until(lambda: server.app.sweeper.last is not None)
    hits(server, A, 3)
    hits(server, B, 1)

    status, _, page = call(server.port, "GET", "/api/cache?sort=hits&limit=1")
    assert status == 200
    assert page["total"] == 2
    (first,) = page["titles"]
    assert first["infohash"] == A
    assert first["hits"] == 3
    assert first["bytes_served"] == 6 * MiB
    assert first["complete"] is True
    assert first["origin"] == "hand_placed"
    assert first["files"][0]["size"] == 2 * MiB
    assert first["files"][0]["content_type"] == "video/mp4"
    assert page["next"] == A
    status, _, page = call(server.port, "GET", f"/api/cache?sort=hits&limit=1&after={A}")
    assert [t["infohash"] for t in page["titles"]] == [B]
    assert page["next"] is None

    status, _, entry = call(server.port, "GET", f"/api/cache/{B}")
    assert status == 200
    assert entry["name"] == f"Movie [{B}].mkv"
    assert entry["files"][0]["url"] == f"/stream/proxy/{B}"
    status, _, error = call(server.port, "GET", f"/api/cache/{'c' * 40}")
    assert (status, error["error"]) == (404, "not_cached")
    status, _, error = call(server.port, "GET", "/api/cache/xyz")
    assert (status, error["error"]) == (400, "invalid_infohash")
    status, _, error = call(server.port, "GET", "/api/cache?limit=0")
    assert (status, error["error"]) == (400, "invalid_limit")
    status, _, error = call(server.port, "GET", "/api/cache?sort=color")
    assert (status, error["error"]) == (400, "invalid_sort")

    status, _, stats = call(server.port, "GET", "/api/stats")
    assert stats["requests"]["hit"] == 4
    assert stats["bytes_served"]["cache"] == 9 * MiB
    assert stats["cache"]["titles"] == 2
    assert stats["other_requests"]["api ok"] == 3  # this one counts once answered
    assert stats["other_requests"]["api invalid_limit"] == 1

    # A search: every word in the name (any case), or the start of the infohash.
    for q, expected in [
        ("movie", [B]),
        ("MOVIE mkv", [B]),
        ("aaaa", [A]),
        ("film", []),
        ("", [A, B]),
    ]:
        status, _, page = call(server.port, "GET", f"/api/cache?sort=hits&q={quote(q)}")
        assert status == 200
        assert [t["infohash"] for t in page["titles"]] == expected, q
        assert page["total"] == len(expected)


def test_pin_and_unpin(make_server: Callable[..., RunningServer], cache_dir: Path) -> None:
    write_video(cache_dir, f"{A}.mp4", 2 * MiB)
    server = make_server()
    status, _, body = call(server.port, "PUT", f"/api/cache/{A}/pin")
    assert (status, body) == (200, {"infohash": A, "pinned": True})
    assert call(server.port, "GET", f"/api/cache/{A}")[2]["pinned"] is True
    status, _, body = call(server.port, "DELETE", f"/api/cache/{A}/pin")
    assert body["pinned"] is False
    assert call(server.port, "GET", f"/api/cache/{A}")[2]["pinned"] is False


def test_delete_refused_in_use_then_forced(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    data = write_video(cache_dir, f"{A}.mp4", 32 * MiB)
    server = make_server()
    # A client that reads nothing: its response stays in flight, the title in use.
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(f"GET /stream/proxy/{A} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert wait_until(lambda: A in server.call(lambda: dict(server.app.handlers.serving)))

    status, _, error = call(server.port, "DELETE", f"/api/cache/{A}")
    assert status == 409
    assert error["error"] == "in_use"
    assert "force=1" in error["message"]
    assert (cache_dir / f"{A}.mp4").exists()

    status, _, body = call(server.port, "DELETE", f"/api/cache/{A}?force=1")
    assert status == 200
    assert body["removed"] == A
    assert body["forced"] is True
    assert not (cache_dir / f"{A}.mp4").exists()
    # The response in flight finishes from its open file, whole and byte-exact.
    slow.settimeout(10)
    reader = slow.makefile("rb")
    while reader.readline() not in (b"\r\n", b""):  # the head
        pass
    body_bytes = reader.read(len(data))
    reader.close()
    slow.close()
    assert hashlib.sha256(body_bytes).digest() == hashlib.sha256(data).digest()
    status, _, error = call(server.port, "GET", f"/stream/proxy/{A}")
    assert (status, error["error"]) == (404, "not_cached")
    status, _, error = call(server.port, "DELETE", f"/api/cache/{A}")
    assert status == 404
    stats = call(server.port, "GET", "/api/stats")[2]
    assert stats["cache"]["evictions"] == {"request": 1}


def test_prune_dry_run_then_for_real(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    write_video(cache_dir, f"{A}.mp4", 4 * MiB)
    server = make_server(cache={"max_size": 6 * MiB, "evict_hand_placed": True})
    write_video(cache_dir, f"{B}.mp4", 4 * MiB)  # after the startup sweep: over the cap now
    time.sleep(0.05)
    hits(server, B, 1)  # B is the more recently used: A goes first
    status, _, plan = call(server.port, "POST", "/api/cache/prune?dry_run=1")
    assert status == 200
    assert plan["dry_run"] is True
    assert plan["evicted"] == [A]
    assert (cache_dir / f"{A}.mp4").exists()
    status, _, done = call(server.port, "POST", "/api/cache/prune")
    assert done["evicted"] == [A]
    assert not (cache_dir / f"{A}.mp4").exists()
    assert (cache_dir / f"{B}.mp4").exists()


def test_torrent_upload_is_kept_and_lists_files(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    server = make_server()
    pieces = b"x" * 40
    torrent = (
        b"d4:infod5:filesld6:lengthi100e4:pathl5:a.mkveed6:lengthi200e4:pathl5:b.srteee"
        b"4:name4:show12:piece lengthi16384e6:pieces40:" + pieces + b"ee"
    )
    status, _, error = call(
        server.port,
        "POST",
        "/api/prefetch",
        torrent,
        headers={"Content-Type": "application/x-bittorrent"},
    )
    assert (status, error["error"]) == (409, "p2p_disabled")  # P2P is off here
    kept = list(cache_dir.glob("*.torrent"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == torrent
    infohash = kept[0].stem
    status, _, files = call(server.port, "GET", f"/api/files/{infohash}")
    assert status == 200
    assert [(f["index"], f["path"], f["size"]) for f in files] == [
        (0, "a.mkv", 100),
        (1, "b.srt", 200),
    ]
    assert files[0]["url"] == f"/stream/proxy/{infohash}?file=0"
    status, _, error = call(
        server.port,
        "POST",
        "/api/prefetch",
        b"d4:infoi1ee",
        headers={"Content-Type": "application/x-bittorrent"},
    )
    assert (status, error["error"]) == (400, "invalid_prefetch")
