"""The right file of a season pack that holds a larger sample: the default, and
`?season=&episode=`, from the cache (its `.torrent`) and from the swarm (its metadata)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.api.apiclient import call
from tests.conftest import RunningServer
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, make_torrent, p2p_settings, random_bytes

KiB = 1024
PACK = {
    "Show.S01.720p/Show.S01E01.720p.mkv": random_bytes(700 * KiB, 1),
    "Show.S01.720p/Show.S01E02.720p.mkv": random_bytes(600 * KiB, 2),
    "Show.S01.720p/Sample/Show.S01E02.sample.mkv": random_bytes(900 * KiB, 3),
    "Show.S01.720p/Show.S01.nfo": b"about the show",
}
E01, E02 = PACK["Show.S01.720p/Show.S01E01.720p.mkv"], PACK["Show.S01.720p/Show.S01E02.720p.mkv"]


def get(server: RunningServer, query: str, ih: str) -> tuple[int, bytes | dict[str, str]]:
    status, _, body = call(server.port, "GET", f"/stream/proxy/{ih}{query}")
    return status, body


def test_from_the_cache(
    make_server: Callable[..., RunningServer], cache_dir: Path, tmp_path: Path
) -> None:
    blob, ih = make_torrent(tmp_path / "build", PACK)
    shutil.copytree(tmp_path / "build" / "Show.S01.720p", cache_dir / ih / "Show.S01.720p")
    (cache_dir / f"{ih}.torrent").write_bytes(blob)
    server = make_server()
    assert get(server, "", ih) == (200, E01)  # the largest that is not the sample
    assert get(server, "?season=1&episode=2", ih) == (200, E02)
    assert get(server, "?episode=2", ih) == (200, E02)
    assert get(server, "?season=1&episode=1", ih) == (200, E01)
    status, error = get(server, "?season=2&episode=1", ih)
    assert (status, error) == (
        404,
        {"error": "episode_not_found", "message": f"{ih} has no season 2 episode 1"},
    )
    status, error = get(server, "?season=1", ih)
    assert (status, error["error"]) == (400, "invalid_episode")  # type: ignore[index]
    status, error = get(server, "?season=1&episode=x", ih)
    assert (status, error["error"]) == (400, "invalid_episode")  # type: ignore[index]


def test_from_the_swarm(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    """No .torrent in the cache: the choice is made from the swarm's metadata."""
    other = {path.replace("Show.S01", "Other.S01", 1): data for path, data in PACK.items()}
    pack = make_seeder(tmp_path / "seed", PACK, 64 * KiB, tracker=tracker)
    second = make_seeder(tmp_path / "seed2", other, 64 * KiB, tracker=tracker)
    try:
        server = make_server(p2p=p2p_settings(tracker))
        assert get(server, "?season=1&episode=2", pack.infohash) == (200, E02)
        assert get(server, "", second.infohash) == (200, E01)  # not the larger sample
        status, error = get(server, "?episode=9", second.infohash)
        assert (status, error["error"]) == (404, "episode_not_found")  # type: ignore[index]
    finally:
        pack.stop()
        second.stop()
