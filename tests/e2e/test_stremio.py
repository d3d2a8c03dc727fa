"""Stremio-style routes: `/{ih}/{fileIdx}` serves what `/stream/proxy/{ih}?file=N` does;
`-1`, a file's name, `?season=&episode=` and `POST /{ih}/create`'s `guessFileIdx` pick the
right file of a season pack holding a larger sample; stats.json and remove; from the
cache (its `.torrent`) and from a libtorrent seeder behind a real tracker."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.api.apiclient import call
from tests.conftest import RunningServer, write_video
from tests.e2e.test_episodes import E01, E02, PACK
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, make_torrent, p2p_settings

KiB = 1024
SAMPLE = PACK["Show.S01.720p/Sample/Show.S01E02.sample.mkv"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body(server: RunningServer, path: str) -> bytes:
    status, _, got = call(server.port, "GET", path)
    assert status == 200, (path, got)
    assert isinstance(got, bytes)
    return got


def file_index(ih_files: list[dict[str, object]], name: str) -> int:
    return next(i for i, f in enumerate(ih_files) if f["name"] == name)


def check_routes(server: RunningServer, ih: str) -> None:
    """What must hold from the cache and from the swarm alike."""
    status, _, created = call(
        server.port, "POST", f"/{ih}/create", {"guessFileIdx": {"season": 1, "episode": 2}}
    )
    assert status == 200, created
    files = created["files"]
    assert sorted(f["path"] for f in files) == sorted(PACK)
    e02 = file_index(files, "Show.S01E02.720p.mkv")
    assert created["guessedFileIdx"] == e02
    assert created["infoHash"] == ih
    assert created["name"] == "Show.S01.720p"
    # Every file by index: the same bytes as the stream route's ?file=N.
    for index, file in enumerate(files):
        data = PACK[file["path"]]
        assert file["length"] == len(data)
        got = body(server, f"/{ih}/{index}")
        assert sha(got) == sha(body(server, f"/stream/proxy/{ih}?file={index}")) == sha(data)
    # The guess: the largest video that is not the sample, or the episode asked for.
    assert sha(body(server, f"/{ih}/-1")) == sha(E01) != sha(SAMPLE)
    assert sha(body(server, f"/{ih}/-1?season=1&episode=2")) == sha(E02)
    assert sha(body(server, f"/{ih}/Show.S01E02.720p.mkv")) == sha(E02)
    _, _, guessed = call(server.port, "POST", f"/{ih}/create", {"guessFileIdx": {}})
    assert guessed["guessedFileIdx"] == file_index(files, "Show.S01E01.720p.mkv")
    _, _, api_files = call(server.port, "GET", f"/api/files/{ih}")  # what the page picks
    assert [f["path"] for f in api_files if f["default"]] == ["Show.S01E01.720p.mkv"]
    _, _, plain = call(server.port, "GET", f"/{ih}/create")
    assert "guessedFileIdx" not in plain
    # Per-file statistics: enginefs' names.
    status, _, stats = call(server.port, "GET", f"/{ih}/{e02}/stats.json")
    assert status == 200
    assert stats["streamName"] == "Show.S01E02.720p.mkv"
    assert stats["streamLen"] == len(E02)
    assert stats["streamProgress"] == 1.0
    # Errors in words.
    status, _, error = call(server.port, "GET", f"/{ih}/no-such-file.mkv")
    assert (status, error["error"]) == (404, "file_not_found")
    status, _, error = call(server.port, "GET", f"/{ih}/99")
    assert (status, error["error"]) == (404, "file_not_found")
    status, _, error = call(server.port, "POST", f"/{ih}/create", b"{not json")
    assert (status, error["error"]) == (400, "invalid_body")


def test_from_the_cache(
    make_server: Callable[..., RunningServer], cache_dir: Path, tmp_path: Path
) -> None:
    blob, ih = make_torrent(tmp_path / "build", PACK)
    shutil.copytree(tmp_path / "build" / "Show.S01.720p", cache_dir / ih / "Show.S01.720p")
    (cache_dir / f"{ih}.torrent").write_bytes(blob)
    server = make_server()
    check_routes(server, ih)
    status, _, stats = call(server.port, "GET", f"/{ih}/stats.json")
    assert (status, stats["peers"], "streamLen" in stats) == (200, 0, False)
    # Not an infohash: not these routes.
    status, _, error = call(server.port, "GET", "/favicon.ico/x")
    assert (status, error["error"]) == (404, "not_found")
    # P2P off and nothing cached: the stream route's answer.
    status, _, error = call(server.port, "GET", f"/{'e' * 40}/0")
    assert (status, error["error"]) == (404, "not_cached")
    assert call(server.port, "GET", f"/{'e' * 40}/stats.json")[2] is None


def test_from_the_swarm(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    """No .torrent in the cache: files, guesses and bytes from the swarm; then it is
    listed in /stats.json, and /remove takes it out of the session."""
    seeder = make_seeder(tmp_path / "seed", PACK, 64 * KiB, tracker=tracker)
    try:
        server = make_server(p2p=p2p_settings(tracker))
        ih = seeder.infohash
        check_routes(server, ih)
        status, _, every = call(server.port, "GET", "/stats.json")
        assert status == 200
        assert list(every) == [ih]
        assert every[ih]["downloaded"] > 0
        status, _, removed = call(server.port, "GET", f"/{ih}/remove")
        assert (status, removed) == (200, {})
        status, _, torrents = call(server.port, "GET", "/api/torrents")
        assert ih not in [t["infohash"] for t in torrents]
        # Asked again, it comes back.
        assert sha(body(server, f"/{ih}/-1?episode=2")) == sha(E02)
    finally:
        seeder.stop()


def test_cors_for_web_apps_on_other_origins(
    make_server: Callable[..., RunningServer], cache_dir: Path, tmp_path: Path
) -> None:
    """With api.cors_origin, Stremio's routes and the subtitles carry it, and the JSON
    POST of create is preflighted; without it, nothing says another origin may read."""
    blob, ih = make_torrent(tmp_path / "build", PACK)
    shutil.copytree(tmp_path / "build" / "Show.S01.720p", cache_dir / ih / "Show.S01.720p")
    (cache_dir / f"{ih}.torrent").write_bytes(blob)
    hand = "b" * 40
    write_video(cache_dir, f"{hand}.mp4", 2 * 1024 * KiB)
    (cache_dir / f"{hand}.srt").write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nx\n")
    origin = "https://web.stremio.example"
    server = make_server(api={"cors_origin": origin})
    status, headers, _ = call(
        server.port,
        "OPTIONS",
        f"/{ih}/create",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert (status, headers["access-control-allow-origin"]) == (204, origin)
    assert "POST" in headers["access-control-allow-methods"]
    for method, path in [
        ("POST", f"/{ih}/create"),
        ("GET", f"/{ih}/stats.json"),
        ("GET", f"/{ih}/0"),
    ]:
        status, headers, _ = call(server.port, method, path, headers={"Origin": origin})
        assert (status, headers.get("access-control-allow-origin")) == (200, origin), path
    plain = make_server()
    status, headers, _ = call(plain.port, "GET", f"/{ih}/stats.json", headers={"Origin": origin})
    assert status == 200
    assert "access-control-allow-origin" not in headers


def test_a_title_placed_by_hand(make_server: Callable[..., RunningServer], cache_dir: Path) -> None:
    """No .torrent: its one video is file 0, answered from the cache at once (P2P is on
    with no tracker: asking the swarm would have waited for metadata that never comes)."""
    ih = "9" * 40
    data = write_video(cache_dir, f"{ih}-Film.mp4", 2 * 1024 * KiB)
    server = make_server(p2p=p2p_settings(None))
    status, _, created = call(server.port, "POST", f"/{ih}/create", {"guessFileIdx": {}})
    assert status == 200, created
    assert created["files"] == [
        {"path": f"{ih}-Film.mp4", "name": f"{ih}-Film.mp4", "length": len(data), "offset": 0}
    ]
    assert created["guessedFileIdx"] == 0
    for path in [f"/{ih}/0", f"/{ih}/-1", f"/{ih}/{ih}-Film.mp4"]:
        assert sha(body(server, path)) == sha(data), path
    status, _, stats = call(server.port, "GET", f"/{ih}/0/stats.json")
    assert (status, stats["streamProgress"], stats["streamLen"]) == (200, 1.0, len(data))
