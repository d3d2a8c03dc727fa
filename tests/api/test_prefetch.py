"""`POST /api/prefetch` end to end against a libtorrent seeder behind the session's
opentracker, with streme's P2P defaults but for loopback (tests/torrent/swarm.py):
202 and a Location, progress to completion, then the stream is a cache hit with no P2P,
sha256-exact, listed in `/api/cache` and counted in `/api/stats`. A magnet's own
trackers are ignored by default, and a prefetch that fails says why."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.apiclient import call
from tests.conftest import RunningServer, wait_until
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, p2p_settings, random_bytes

MiB = 1024 * 1024


def poll(server: RunningServer, location: str, until: set[str], timeout: float = 30) -> list[Any]:
    """Every view of `location` until its state is one of `until`."""
    views = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, view = call(server.port, "GET", location)
        assert status == 200, view
        views.append(view)
        if view["state"] in until:
            return views
        time.sleep(0.05)
    raise AssertionError(f"{location} never reached {until}: {views[-3:]}")


def test_prefetch_lands_in_the_cache(
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streme.stream")
    data = random_bytes(12 * MiB + 4321, 91)
    # 8 MiB/s: the download takes about 1.5 s, long enough to watch it progress.
    seeder = make_seeder(
        tmp_path / "seed", {"film.mkv": data}, 256 * 1024, upload_limit=8 * MiB, tracker=tracker
    )
    try:
        server = make_server(p2p=p2p_settings(tracker))
        ih = seeder.infohash
        status, headers, body = call(server.port, "POST", "/api/prefetch", {"infohash": ih})
        assert status == 202, body
        assert headers["location"] == f"/api/torrents/{ih}"
        assert body["status_url"] == headers["location"]

        views = poll(server, headers["location"], {"complete", "cached"})
        progress = [v["progress"] for v in views if v["state"] == "downloading"]
        assert progress == sorted(progress)  # never goes back
        assert any(0 < p < 1 for p in progress), progress  # seen on its way
        final = views[-1]
        assert final["progress"] == 1.0
        if final["state"] == "complete":
            assert final["prefetch"] is False
            assert final["files"][0]["done"] == len(data)

        status, _, got = call(server.port, "GET", f"/stream/proxy/{ih}")
        assert status == 200
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
        assert any(
            r.getMessage() == f"Using cached file for {ih} - no P2P needed" for r in caplog.records
        )

        status, _, page = call(server.port, "GET", "/api/cache")
        (entry,) = [t for t in page["titles"] if t["infohash"] == ih]
        assert entry["origin"] == "downloaded"
        assert entry["complete"] is True
        assert entry["files"][0]["size"] == len(data)
        assert entry["bytes"] == len(data)  # recorded as it landed (a sweep counts blocks)

        status, _, stats = call(server.port, "GET", "/api/stats")
        assert stats["requests"]["hit"] == 1
        assert stats["requests"]["miss_streamed"] == 0
        assert stats["bytes_served"] == {"cache": len(data), "swarm": 0}
        assert stats["downloaded"] >= len(data)
        assert (stats["cache"]["titles"], stats["cache"]["bytes"]) == (1, len(data))

        # Asked again: it is in the cache already, 200 with its entry.
        status, _, again = call(server.port, "POST", "/api/prefetch", {"infohash": ih})
        assert status == 200
        assert again["infohash"] == ih
        assert again["complete"] is True
    finally:
        seeder.stop()


def test_magnet_trackers_ignored_and_failure_reported(
    make_server: Callable[..., RunningServer], tracker: Tracker
) -> None:
    server = make_server(p2p=p2p_settings(tracker, metadata_timeout=1))
    ih = "9" * 40  # nobody has it
    magnet = f"magnet:?xt=urn:btih:{ih}&tr=http%3A%2F%2F127.0.0.1%3A9%2Fannounce"
    status, headers, body = call(server.port, "POST", "/api/prefetch", {"magnet": magnet})
    assert status == 202
    assert body["client_trackers_ignored"] == 1
    engine = server.app.engine
    assert engine is not None

    def trackers() -> list[str]:
        active = engine._torrents.get(ih)
        return [] if active is None else [t["url"] for t in active.handle.trackers()]

    assert wait_until(lambda: bool(server.call(trackers)), timeout=5)
    assert server.call(trackers) == [tracker.announce]  # the configured one only
    views = poll(server, headers["location"], {"failed"}, timeout=10)
    assert "metadata" in views[-1]["error"]
    status, _, error = call(server.port, "POST", "/api/prefetch", {"infohash": "nope"})
    assert (status, error["error"]) == (400, "invalid_prefetch")


def test_stalled_prefetch_leaves_with_its_data(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path, cache_dir: Path
) -> None:
    data = random_bytes(4 * MiB, 92)
    # The seeder has the first half only: the prefetch gets that far, then nothing.
    seeder = make_seeder(
        tmp_path / "seed", {"half.mkv": data}, 256 * 1024, keep_fraction=0.5, tracker=tracker
    )
    try:
        # stall_timeout 1 s (default 60 s): how long a prefetch may gain no byte.
        server = make_server(p2p=p2p_settings(tracker, stall_timeout=1))
        ih = seeder.infohash
        status, headers, _ = call(server.port, "POST", "/api/prefetch", {"infohash": ih})
        assert status == 202
        views = poll(server, headers["location"], {"failed"}, timeout=20)
        assert "gained no byte" in views[-1]["error"]
        assert any(v["state"] == "downloading" and v["progress"] > 0.4 for v in views)
        engine = server.app.engine
        assert engine is not None
        assert wait_until(lambda: server.call(lambda: engine.torrent_snapshot(ih)) is None)
        resume = cache_dir / ".incomplete" / f"{ih}.resume"
        assert wait_until(resume.exists, timeout=5)  # asked again, it resumes
    finally:
        seeder.stop()


def test_a_stream_takes_a_prefetchs_slot(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    wanted = random_bytes(4 * MiB, 93)
    film = random_bytes(3 * MiB + 1, 94)
    # The season's seeder has half of it: the prefetch stays in the session, downloading.
    season_seed = make_seeder(
        tmp_path / "a", {"season.mkv": wanted}, 256 * 1024, keep_fraction=0.5, tracker=tracker
    )
    film_seed = make_seeder(tmp_path / "b", {"film.mp4": film}, 256 * 1024, tracker=tracker)
    try:
        # One torrent at a time (default 20): the stream must find the slot taken.
        server = make_server(p2p=p2p_settings(tracker, max_active_torrents=1))
        ih = season_seed.infohash
        status, headers, _ = call(server.port, "POST", "/api/prefetch", {"infohash": ih})
        assert status == 202
        poll(server, headers["location"], {"downloading"})
        # Another prefetch does not take the slot.
        status, _, _ = call(server.port, "POST", "/api/prefetch", {"infohash": "7" * 40})
        assert status == 202
        views = poll(server, f"/api/torrents/{'7' * 40}", {"failed"})
        assert "max_active_torrents" in views[-1]["error"]
        # A stream does: the prefetch leaves, keeping its data.
        status, _, body = call(server.port, "GET", f"/stream/proxy/{film_seed.infohash}")
        assert (status, hashlib.sha256(body).digest()) == (200, hashlib.sha256(film).digest())
        views = poll(server, headers["location"], {"failed"})
        assert "made room for a stream" in views[-1]["error"]
    finally:
        season_seed.stop()
        film_seed.stop()


def test_a_prefetch_carries_on_after_a_restart(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    """The server stops halfway through a prefetch; started again on the same cache, it
    carries on by itself (nobody asks again) from its resume data, to a byte-exact file;
    then nothing is left to resume."""
    data = random_bytes(12 * MiB + 77, 92)
    # 3 MiB/s: about 4 s for the whole file, so the first server stops partway.
    seeder = make_seeder(
        tmp_path / "seed", {"film.mkv": data}, 256 * 1024, upload_limit=3 * MiB, tracker=tracker
    )
    try:
        first = make_server(p2p=p2p_settings(tracker))
        ih = seeder.infohash
        status, headers, _ = call(first.port, "POST", "/api/prefetch", {"infohash": ih})
        assert status == 202
        views = poll(first, headers["location"], {"downloading"})
        wait_until(lambda: call(first.port, "GET", headers["location"])[2]["progress"] > 0.2)
        first.stop()

        second = make_server(p2p=p2p_settings(tracker))

        def carrying_on() -> bool:  # 404 not_in_session until it is started again
            status, _, view = call(second.port, "GET", headers["location"])
            if status != 200:
                return False
            return bool(view["prefetch"]) or view["state"] in ("complete", "cached")

        wait_until(carrying_on)  # nobody asked this server
        views = poll(second, headers["location"], {"complete", "cached"}, timeout=60)
        status, _, got = call(second.port, "GET", f"/stream/proxy/{ih}")
        assert status == 200
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
        downloaded = [v["downloaded"] for v in views if v["state"] != "cached"]
        assert downloaded, views[-3:]
        assert max(downloaded) < len(data)  # the part done before the restart was kept

        def recorded() -> list[object]:
            run = second.app.recorder.run(lambda store: store.prefetches())
            return asyncio.run_coroutine_threadsafe(run, second.loop).result(timeout=10)

        wait_until(lambda: recorded() == [])  # finished: not resumed a third time
    finally:
        seeder.stop()
