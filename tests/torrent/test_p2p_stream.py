"""Streaming a cache miss from a real local swarm (a libtorrent seeder on 127.0.0.1)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.torrent.swarm import Seeder, make_seeder, p2p_settings, random_bytes, sha256

MiB = 1024 * 1024
SIZE = 8 * MiB + 12345  # not a whole number of pieces


@pytest.fixture
def seeder(tmp_path: Path) -> Iterator[Seeder]:
    seed = make_seeder(tmp_path / "seed", {"movie.mp4": random_bytes(SIZE, 1)})
    yield seed
    seed.stop()


def fetch(
    server: RunningServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_whole_file_from_bare_infohash(
    make_server: Callable[..., RunningServer], seeder: Seeder
) -> None:
    server = make_server(p2p=p2p_settings(seeder))
    status, headers, body = fetch(server, f"/stream/proxy/{seeder.infohash}")
    assert status == 200
    assert headers["content-type"] == "video/mp4"
    assert int(headers["content-length"]) == SIZE
    assert sha256(body) == sha256(seeder.files["movie.mp4"])


def test_ranges_head_middle_tail(make_server: Callable[..., RunningServer], seeder: Seeder) -> None:
    server = make_server(p2p=p2p_settings(seeder))
    data = seeder.files["movie.mp4"]
    for start, end in [(0, 65535), (SIZE // 2 - 1000, SIZE // 2 + 300_000), (SIZE - 777, SIZE - 1)]:
        status, headers, body = fetch(
            server, f"/stream/proxy/{seeder.infohash}", {"Range": f"bytes={start}-{end}"}
        )
        assert status == 206
        assert headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
        assert sha256(body) == sha256(data[start : end + 1])


def test_head_needs_only_metadata(
    make_server: Callable[..., RunningServer], seeder: Seeder
) -> None:
    server = make_server(p2p=p2p_settings(seeder))
    status, headers, body = fetch(server, f"/stream/proxy/{seeder.infohash}", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == SIZE
    assert headers["etag"] == f'"{seeder.infohash}-0"'
    engine = server.app.engine
    assert engine is not None
    torrent = server.call(lambda: engine._torrents[seeder.infohash])
    assert server.call(lambda: torrent.handle.status().total_wanted) == 0  # nothing wanted


def test_finished_download_is_served_from_cache_without_p2p(
    make_server: Callable[..., RunningServer], seeder: Seeder, cache_dir: Path
) -> None:
    server = make_server(p2p=p2p_settings(seeder))
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
    make_server: Callable[..., RunningServer], seeder: Seeder
) -> None:
    settings = p2p_settings(seeder, static_peers=[], metadata_timeout=1)
    server = make_server(p2p=settings)
    started = time.monotonic()
    status, _, body = fetch(server, f"/stream/proxy/{'ab' * 20}")
    assert status == 504
    assert json.loads(body)["error"] == "metadata_timeout"
    assert time.monotonic() - started < 10
