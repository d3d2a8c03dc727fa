"""`GET /stream/magnet?xt=urn:btih:...`: the stream route for a magnet's infohash, from the
cache and from the swarm; the magnet's own trackers (`tr=`, and Stremio's `?tr=tracker:`)
are used only with `p2p.allow_client_trackers`."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from tests.api.apiclient import call
from tests.conftest import RunningServer, write_video
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, p2p_settings, random_bytes

KiB = 1024
MOVIE = {"Movie/Movie.mp4": random_bytes(1500 * KiB, 5)}


def test_from_the_cache(make_server: Callable[..., RunningServer], cache_dir: Path) -> None:
    ih = "d" * 40
    data = write_video(cache_dir, f"{ih}.mp4", 2 * 1024 * KiB)
    server = make_server()
    status, headers, body = call(server.port, "GET", f"/stream/magnet?xt=urn:btih:{ih}&dn=Film")
    assert (status, body) == (200, data)
    assert headers["transfermode.dlna.org"] == "Streaming"
    base32 = base64.b32encode(bytes.fromhex(ih)).decode()
    status, _, body = call(
        server.port,
        "GET",
        f"/stream/magnet?dn=x&xt=urn:btih:{base32}",
        headers={"Range": "bytes=0-9"},
    )
    assert (status, body) == (206, data[:10])
    for query, code in [
        ("dn=no-xt", "invalid_magnet"),
        ("xt=urn:btih:1234", "invalid_magnet"),
        ("xt=urn:sha1:abc", "invalid_magnet"),
        (f"xt=urn:btih:{ih}&file=x", "invalid_file_index"),
    ]:
        status, _, error = call(server.port, "GET", f"/stream/magnet?{query}")
        assert (status, error["error"]) == (400, code), query


def test_client_trackers_only_when_allowed(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    """The server knows no tracker; the magnet names the one the seeder announces to."""
    seeder = make_seeder(tmp_path / "seed", MOVIE, 64 * KiB, tracker=tracker)
    ih, source = seeder.infohash, MOVIE["Movie/Movie.mp4"]
    magnet = f"/stream/magnet?xt=urn:btih:{ih}&dn=Movie&tr={quote(tracker.announce, safe='')}"
    try:
        # Changed for this test: a 4-s wait for metadata (default 60 s) bounds the refusal.
        ignored = make_server(p2p=p2p_settings(None, metadata_timeout=4))
        status, _, error = call(ignored.port, "GET", magnet)
        assert (status, error["error"]) == (504, "metadata_timeout")

        allowed = make_server(p2p=p2p_settings(None, allow_client_trackers=True))
        status, _, body = call(allowed.port, "GET", magnet)
        assert status == 200
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(source).hexdigest()
    finally:
        seeder.stop()


def test_stremio_tr_parameter(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    seeder = make_seeder(tmp_path / "seed", MOVIE, 64 * KiB, tracker=tracker)
    try:
        server = make_server(p2p=p2p_settings(None, allow_client_trackers=True))
        tr = quote(f"tracker:{tracker.announce}", safe="")
        path = f"/{seeder.infohash}/-1?tr={tr}&tr=dht:{seeder.infohash}"
        status, _, body = call(server.port, "GET", path)
        assert (status, body) == (200, MOVIE["Movie/Movie.mp4"])
    finally:
        seeder.stop()
