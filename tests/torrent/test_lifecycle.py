"""A torrent's life in the session: it leaves when nobody reads it, and comes back.

A torrent with no reader leaves the libtorrent session after `p2p.idle_timeout`; a
finished one (every wanted file published) has its `.incomplete/<infohash>` directory
deleted, an unfinished one saves `.incomplete/<infohash>.resume` and keeps its data.
`p2p.max_active_torrents` counts only torrents in use: an idle one leaves at once to make
room. A request for a torrent that is leaving waits, then adds it again.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streme.torrent.snapshot import TorrentSnapshot
from tests.conftest import RunningServer, wait_until
from tests.torrent.peers import ARIA2C, Processes, Torrent, Tracker, start_aria2_many
from tests.torrent.swarm import (
    Seeder,
    make_seeder,
    make_torrent,
    p2p_settings,
    random_bytes,
    sha256,
)
from tests.torrent.test_p2p_stream import fetch

MiB = 1024 * 1024
SLOTS = 2  # p2p.max_active_torrents: fewer than the titles streamed, which must take turns
IDLE = 1.0  # p2p.idle_timeout, seconds: every torrent leaves within the test
LEAVE_GRACE = 5.0  # how long after the idle timeout a torrent may take to be gone
REQUEST_BOUND = 5.0  # seconds for a short range request, re-adding the torrent included


def snapshots(server: RunningServer) -> list[TorrentSnapshot]:
    engine = server.app.engine
    assert engine is not None
    return server.call(engine.snapshot)


def in_session(server: RunningServer, infohash: str) -> TorrentSnapshot | None:
    engine = server.app.engine
    assert engine is not None
    return server.call(lambda: engine.torrent_snapshot(infohash))


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def departures(caplog: pytest.LogCaptureFixture, infohash: str) -> list[str]:
    """The engine's "<infohash> left the session (why)" lines: each is logged once the
    torrent is out of libtorrent and its resume data saved or its download deleted
    (the snapshot forgets it earlier, as soon as it starts leaving)."""
    return messages(caplog, f"{infohash} left the session")


@pytest.fixture
def p2p_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The engine's INFO records (it logs each add, resume and departure)."""
    caplog.set_level(logging.INFO, logger="streme.p2p")
    return caplog


# -- more torrents than slots, from an independent seeder found through a tracker --------


def write_titles(root: Path, count: int, tracker: Tracker) -> list[Torrent]:
    """`count` distinct single-file v1 torrents, their files side by side under `root`
    (one aria2c seeds them all), each naming `tracker`, which serves them."""
    torrents = []
    for i in range(count):
        name = f"title{i}.mp4"
        files = {name: random_bytes(2 * MiB + 1000 * i + 17, 40 + i)}  # not whole pieces
        blob, infohash = make_torrent(root, files, announce=tracker.announce)
        path = root.with_name(f"title{i}.torrent")
        path.write_bytes(blob)
        tracker.allow(infohash)
        torrents.append(Torrent(root, path, infohash, blob, files, tracker))
    return torrents


def test_more_torrents_than_slots_one_after_another(
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    processes: Processes,
    tmp_path: Path,
    cache_dir: Path,
    p2p_log: pytest.LogCaptureFixture,
) -> None:
    """SLOTS + 2 titles streamed in turn: each earlier one leaves (idle, or to make room),
    none is refused, and at the end every one is a cache hit with no P2P left behind."""
    if ARIA2C is None:
        pytest.skip("aria2 not installed (make system-deps installs it)")
    titles = write_titles(tmp_path / "seed", SLOTS + 2, tracker)
    start_aria2_many(processes, titles)  # returns once the tracker hands it out for each
    settings = p2p_settings(tracker, max_active_torrents=SLOTS, idle_timeout=IDLE)
    server = make_server(p2p=settings)
    for title in titles:
        data = next(iter(title.files.values()))
        status, headers, body = fetch(server, f"/stream/proxy/{title.infohash}")
        assert status != 503, f"{title.infohash} refused: {body[:200]!r}"
        assert status == 200, body[:200]
        assert int(headers["content-length"]) == len(data)
        assert sha256(body) == sha256(data)
        assert len(snapshots(server)) <= SLOTS  # never more torrents in the session
    assert wait_until(lambda: not snapshots(server), timeout=IDLE + LEAVE_GRACE), [
        (t.infohash, t.state, t.readers) for t in snapshots(server)
    ]
    hashes = [t.infohash for t in titles]
    assert wait_until(lambda: all(departures(p2p_log, ih) for ih in hashes))
    for ih in hashes:  # each left once, idle or to make room for a later one
        assert len(departures(p2p_log, ih)) == 1, departures(p2p_log, ih)
    incomplete = cache_dir / ".incomplete"
    for title in titles:
        name = next(iter(title.files))
        assert (cache_dir / title.infohash / name).is_file(), f"{title.infohash} not published"
        assert (cache_dir / f"{title.infohash}.torrent").is_file()
        # Finished: the download directory and any resume data are gone.
        assert not (incomplete / title.infohash).exists(), f"{title.infohash} left its data"
        assert not (incomplete / f"{title.infohash}.resume").exists()
    server.stop()
    offline = make_server()  # P2P off: only the cache can answer
    for title in titles:
        status, _, body = fetch(offline, f"/stream/proxy/{title.infohash}")
        assert status == 200
        assert sha256(body) == sha256(next(iter(title.files.values())))


# -- an unfinished torrent leaves with its resume data ------------------------------------

SIZE = 8 * MiB + 12345  # not a whole number of pieces


def test_idle_unfinished_torrent_leaves_with_resume_data_and_resumes(
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    tmp_path: Path,
    cache_dir: Path,
    p2p_log: pytest.LogCaptureFixture,
) -> None:
    """Read ~1 MiB of a torrent whose swarm has half of it, leave: after idle_timeout it
    is out of the session with its resume data and data kept; a HEAD brings it back and
    it leaves again, keeping them; a later server resumes from them with a full seeder."""
    data = random_bytes(SIZE, 31)
    # This swarm has only the first half of the file: the download cannot finish.
    half = make_seeder(tmp_path / "half", {"movie.mp4": data}, keep_fraction=0.5, tracker=tracker)
    full: Seeder | None = None
    try:
        first = make_server(p2p=p2p_settings(tracker, idle_timeout=IDLE))
        sock = socket.create_connection(("127.0.0.1", first.port), timeout=30)
        sock.sendall(f"GET /stream/proxy/{half.infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while len(got) < MiB:
            chunk = sock.recv(1 << 20)
            assert chunk, "the stream ended early"
            got += chunk
        sock.close()
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert data.startswith(body)  # every byte served so far is right
        closed = time.monotonic()
        assert wait_until(lambda: not snapshots(first), timeout=IDLE + LEAVE_GRACE)
        assert time.monotonic() - closed >= IDLE * 0.9  # not before its idle timeout
        incomplete = cache_dir / ".incomplete"
        resume = incomplete / f"{half.infohash}.resume"
        assert wait_until(lambda: bool(departures(p2p_log, half.infohash)), LEAVE_GRACE), (
            f"out of the snapshot, but its departure did not end within {LEAVE_GRACE:g} s "
            f"(resume data written: {resume.exists()})"
        )
        assert "resume data saved" in departures(p2p_log, half.infohash)[0]
        assert resume.is_file()
        kept = incomplete / half.infohash / "movie.mp4"
        assert kept.is_file()  # its data stays for next time
        assert sha256(kept.read_bytes()[:MiB]) == sha256(data[:MiB])  # the pieces read
        assert not (cache_dir / half.infohash).exists()  # not finished: nothing published
        # A HEAD brings it back from its resume data (no file wanted this time); when it
        # leaves again its data and resume data must stay: it is still unfinished.
        status, _, _ = fetch(first, f"/stream/proxy/{half.infohash}", method="HEAD")
        assert status == 200
        assert messages(p2p_log, f"Resuming {half.infohash} from saved resume data")
        assert wait_until(lambda: len(departures(p2p_log, half.infohash)) == 2, IDLE + LEAVE_GRACE)
        assert "resume data saved" in departures(p2p_log, half.infohash)[1]
        assert resume.is_file()
        assert kept.is_file()
        assert sha256(kept.read_bytes()[:MiB]) == sha256(data[:MiB])
        first.stop()
        # A full seeder now; a new server on the same cache resumes from the saved data.
        full = make_seeder(tmp_path / "full", {"movie.mp4": data}, tracker=tracker)
        second = make_server(p2p=p2p_settings(tracker))  # the tracker hands out both
        status, _, body = fetch(second, f"/stream/proxy/{full.infohash}")
        assert status == 200
        assert sha256(body) == sha256(data)
        resumed = in_session(second, full.infohash)
        assert resumed is not None
        assert resumed.downloaded < SIZE  # what the first server got was not fetched again
        assert messages(p2p_log, f"Resuming {full.infohash} from saved resume data")
    finally:
        half.stop()
        if full is not None:
            full.stop()


# -- requests racing the departure ------------------------------------------------------------


@pytest.fixture
def half_seeder(tmp_path: Path, tracker: Tracker) -> Iterator[Seeder]:
    """A seeder with the first half of the file only: the download never finishes (a
    finished one would be published, and later requests would be cache hits with no
    torrent left to race), and every departure saves resume data."""
    data = random_bytes(SIZE, 32)
    seed = make_seeder(tmp_path / "seed", {"movie.mp4": data}, keep_fraction=0.5, tracker=tracker)
    yield seed
    seed.stop()


def test_request_during_leave_re_adds(
    make_server: Callable[..., RunningServer],
    half_seeder: Seeder,
    tracker: Tracker,
    p2p_log: pytest.LogCaptureFixture,
) -> None:
    """idle_timeout 0: the torrent starts leaving as each response ends, and the next
    request (a new connection, a moment later) meets it on its way out, waits, and adds
    it again, from the resume data the departure saved."""
    ih = half_seeder.infohash
    data = half_seeder.files["movie.mp4"]
    # p2p.idle_timeout 0: each torrent starts leaving the moment its response ends.
    server = make_server(p2p=p2p_settings(tracker, idle_timeout=0))
    rng = random.Random(33)
    requests = 30
    have = SIZE // 2 - 64 * 1024  # the seeder's whole pieces
    for n in range(requests):
        start = rng.randrange(have - 1)
        end = min(have - 1, start + rng.randrange(1, 200_000))
        asked = time.monotonic()
        status, headers, body = fetch(
            server, f"/stream/proxy/{ih}", {"Range": f"bytes={start}-{end}"}
        )
        took = time.monotonic() - asked
        # Waiting out a departure costs a resume-data save and a removal (milliseconds),
        # and the re-added torrent's announce and peer connection (up to ~1 s); not much
        # more.
        assert took < REQUEST_BOUND, f"request {n} took {took:.1f} s"
        assert status == 206, body[:200]
        assert headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        assert sha256(body) == sha256(data[start : end + 1])
    assert wait_until(lambda: not snapshots(server), timeout=LEAVE_GRACE)
    adds = messages(p2p_log, f"Attempting P2P stream for hash: {ih}")
    assert wait_until(lambda: len(departures(p2p_log, ih)) == len(adds))
    left = departures(p2p_log, ih)
    resumed = messages(p2p_log, f"Resuming {ih} from saved resume data")
    # Most requests found the torrent gone or going and added it again, from its resume
    # data; none saw the torrent it added leave before it could read (one add at most
    # per request).
    assert len(resumed) >= requests * 2 // 3, resumed
    assert len(adds) <= requests, f"{len(adds)} adds for {requests} requests"
    # The download never finished, so every departure kept its data and resume data.
    assert not (server.cache_dir / ih).exists()
    assert all(line.endswith("resume data saved") for line in left), left
    assert (server.cache_dir / ".incomplete" / f"{ih}.resume").is_file()
    # (The make_server fixture checks at teardown that the loop's exception handler never fired.)


# -- a HEAD alone ------------------------------------------------------------------------------


def test_head_only_torrent_leaves_after_idle_timeout(
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    tmp_path: Path,
    cache_dir: Path,
    p2p_log: pytest.LogCaptureFixture,
) -> None:
    """A HEAD needs only the metadata and holds no reader: the torrent leaves after
    idle_timeout (measured from the HEAD), leaves nothing behind, and comes back."""
    data = random_bytes(2 * MiB + 9, 34)
    seed = make_seeder(tmp_path / "seed", {"movie.mp4": data}, tracker=tracker)
    try:
        server = make_server(p2p=p2p_settings(tracker, idle_timeout=IDLE))
        status, headers, body = fetch(server, f"/stream/proxy/{seed.infohash}", method="HEAD")
        answered = time.monotonic()
        assert (status, body) == (200, b"")
        assert int(headers["content-length"]) == len(data)
        now = in_session(server, seed.infohash)
        assert now is not None
        assert now.readers == 0  # a HEAD holds no reader
        assert wait_until(lambda: not snapshots(server), timeout=IDLE + LEAVE_GRACE)
        assert time.monotonic() - answered >= IDLE * 0.9  # not before its idle timeout
        left = wait_until(lambda: bool(departures(p2p_log, seed.infohash)))
        assert left, "it never finished leaving"
        incomplete = cache_dir / ".incomplete"
        assert not (incomplete / seed.infohash).exists()  # nothing was downloaded
        assert not (incomplete / f"{seed.infohash}.resume").exists()
        # And it comes back for the next request.
        start = len(data) // 3
        status, _, body = fetch(
            server, f"/stream/proxy/{seed.infohash}", {"Range": f"bytes={start}-"}
        )
        assert status == 206
        assert sha256(body) == sha256(data[start:])
    finally:
        seed.stop()
