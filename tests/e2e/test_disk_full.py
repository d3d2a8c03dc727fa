"""A full disk, on a small filesystem the test mounts (a tmpfs): streme recovers or fails
cleanly, and never serves a truncated file.

- ENOSPC: with two published downloads on a 24 MiB filesystem, a title bigger than the
  whole filesystem is streamed. libtorrent's write fails with ENOSPC; the engine sweeps
  (the two downloads go) and stops the title: its response ends short (fewer bytes than
  Content-Length, every byte sent right), nothing of it is published, its partial data is
  deleted, and the server keeps serving. A later request (an evicted title, back from the
  swarm) succeeds.
- `cache.min_free`: once free space falls under it, the free-space watch (every
  `PRESSURE_CHECK_INTERVAL` seconds) evicts the least recently served download, and only
  as much as needed.

Throughout, every file published in the cache is checked whole as soon as it appears, and
at the end a server with P2P off serves every published title byte-exact.

Mounting needs root (CAP_SYS_ADMIN): without it these tests are skipped.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streme.cache.sweep import PRESSURE_CHECK_INTERVAL
from tests.conftest import RunningServer, wait_until
from tests.torrent.peers import Tracker
from tests.torrent.swarm import Seeder, make_seeder, p2p_settings, random_bytes, sha256
from tests.torrent.test_p2p_stream import fetch

MiB = 1024 * 1024
FS_SIZE = 24 * MiB  # the cache's whole filesystem
NAME = "movie.mp4"


# -- the small filesystem ------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path) -> Iterator[Path]:
    """The cache directory is a fresh tmpfs of FS_SIZE bytes (overrides conftest's, so
    `make_server` uses it; its servers are stopped before this unmounts)."""
    mount = tmp_path / "cache"
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        pytest.skip(
            f"needs root (CAP_SYS_ADMIN) to mount a {FS_SIZE // MiB} MiB tmpfs as the cache "
            f"directory: {detail.strip()}"
        )
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)  # still busy


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# -- the swarm -----------------------------------------------------------------------------


@pytest.fixture
def seed(tmp_path: Path, tracker: Tracker) -> Iterator[Callable[[str, int, int], Seeder]]:
    """`seed(label, size, rng_seed)`: a libtorrent seeder of one file on 127.0.0.1, its
    data under tmp_path, outside the small filesystem, announced to `tracker`."""
    started: list[Seeder] = []

    def make(label: str, size: int, rng: int) -> Seeder:
        data = {NAME: random_bytes(size, rng)}
        seeder = make_seeder(tmp_path / f"seed-{label}", data, tracker=tracker)
        started.append(seeder)
        return seeder

    yield make
    for seeder in started:
        seeder.stop()


def settings(tracker: Tracker, **extra: object) -> dict[str, object]:
    """The seeders found through `tracker`; p2p.idle_timeout 0: a torrent nobody reads
    leaves the session at once, so a finished download is only a title on disk."""
    return p2p_settings(tracker, idle_timeout=0, **extra)


def source(seeder: Seeder) -> bytes:
    return seeder.files[NAME]


def published(cache_dir: Path, seeder: Seeder) -> Path:
    return cache_dir / seeder.infohash / NAME


def stream_whole(server: RunningServer, seeder: Seeder) -> None:
    """GET the title's file from the swarm: 200, byte-exact, then published."""
    status, headers, body = fetch(server, f"/stream/proxy/{seeder.infohash}")
    assert status == 200, body[:300]
    assert int(headers["content-length"]) == len(source(seeder))
    assert sha256(body) == sha256(source(seeder))
    path = published(server.cache_dir, seeder)
    assert wait_until(path.exists, timeout=15), f"{seeder.infohash} was never published"


def stream_raw(server: RunningServer, seeder: Seeder) -> tuple[int, int, bytes]:
    """GET over a raw socket, read until the server closes: (status, Content-Length, body)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        sock.sendall(
            f"GET /stream/proxy/{seeder.infohash} HTTP/1.1\r\nHost: x\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
    finally:
        sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.split(": ", 1) for line in lines[1:])
    length = {k.lower(): v for k, v in fields.items()}.get("content-length", "-1")
    return status, int(length), body


class PublishedWatch:
    """Checks every file published in the cache, whole, as soon as it appears (each
    inode once): a truncated or wrong file in the cache is a failure even if it is gone
    by the end of the test."""

    def __init__(self, cache_dir: Path, seeders: list[Seeder]) -> None:
        self.cache_dir = cache_dir
        self.expected = {s.infohash: sha256(source(s)) for s in seeders}
        self.checked: set[tuple[str, int]] = set()
        self.bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="published-watch", daemon=True)

    def __enter__(self) -> PublishedWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.check_once()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.check_once()

    def check_once(self) -> None:
        for infohash, digest in self.expected.items():
            path = self.cache_dir / infohash / NAME
            try:
                with open(path, "rb") as f:
                    key = (infohash, os.fstat(f.fileno()).st_ino)
                    if key in self.checked:
                        continue
                    data = f.read()
            except FileNotFoundError:
                continue
            self.checked.add(key)
            if sha256(data) != digest:
                self.bad.append(f"{path}: {len(data)} bytes, not the source's")


def serve_all_from_cache(
    make_server: Callable[..., RunningServer], cache_dir: Path, seeders: list[Seeder]
) -> list[str]:
    """A server with P2P off: every published title byte-exact, every other one 404.
    Returns the infohashes served."""
    offline = make_server()
    served = []
    for seeder in seeders:
        status, _, body = fetch(offline, f"/stream/proxy/{seeder.infohash}")
        if published(cache_dir, seeder).exists():
            assert status == 200
            assert sha256(body) == sha256(source(seeder)), f"{seeder.infohash} in the cache"
            served.append(seeder.infohash)
        else:
            assert status == 404, f"{seeder.infohash}: {status} {body[:200]!r}"
    offline.stop()
    return served


@pytest.fixture
def streme_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="streme")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, *parts: str) -> list[str]:
    found = [r.getMessage() for r in caplog.records]
    return [m for m in found if all(p in m for p in parts)]


def evictions(caplog: pytest.LogCaptureFixture, infohash: str = "") -> list[str]:
    """The sweep's one line per evicted title: "evicted <infohash> (...): <reason>; ..."."""
    return [m for m in lines(caplog, infohash) if m.startswith(f"evicted {infohash}")]


# -- ENOSPC --------------------------------------------------------------------------------


def test_disk_full_fails_cleanly_sweeps_and_recovers(
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
    seed: Callable[[str, int, int], Seeder],
    tracker: Tracker,
    streme_log: pytest.LogCaptureFixture,
) -> None:
    a = seed("a", 8 * MiB + 12345, 11)
    b = seed("b", 8 * MiB + 54321, 12)
    c = seed("c", 30 * MiB + 777, 13)  # bigger than the whole filesystem
    seeders = [a, b, c]
    # min_free 0: no free-space floor, so only a real ENOSPC from libtorrent's writes
    # makes streme sweep (the free-space watch never fires); no interval sweep but the
    # one at start. p2p.stall_timeout 15 s: a stall would end C's response no sooner;
    # the disk must end it sooner (checked below).
    server = make_server(
        cache={"min_free": 0, "cleanup_interval": 3600},
        p2p=settings(tracker, stall_timeout=15),
    )
    with PublishedWatch(cache_dir, seeders) as watch:
        stream_whole(server, a)
        stream_whole(server, b)
        assert wait_until(lambda: not (cache_dir / ".incomplete" / b.infohash).exists())

        # C cannot fit: ENOSPC, a sweep (A and B go), C stops (its pieces after a failed
        # write cannot be trusted), its partial data goes.
        started = time.monotonic()
        status, length, body = stream_raw(server, c)
        elapsed = time.monotonic() - started
        # The recovery (a task on the server's loop) must not have died of an exception.
        assert not server.errors, server.errors
        assert status == 200
        assert length == len(source(c))
        assert len(body) < length, "C's response must end short: it cannot fit"
        assert source(c).startswith(body), "every byte C's response sent must be right"
        assert lines(streme_log, "disk full while downloading", c.infohash)
        assert evictions(streme_log, a.infohash), "the sweep must evict A"
        assert evictions(streme_log, b.infohash), "the sweep must evict B"
        assert lines(streme_log, "disk full:", c.infohash, "stopped;", "freed")
        assert elapsed < 15, f"C failed by the disk, not a stall: {elapsed:.1f} s"
        assert not published(cache_dir, a).exists()
        assert not published(cache_dir, b).exists()

        # Nothing of C published; its partial data deleted; the space is back.
        assert not published(cache_dir, c).exists()
        assert wait_until(lambda: not (cache_dir / ".incomplete" / c.infohash).exists())
        assert wait_until(lambda: free_bytes(cache_dir) > FS_SIZE - 2 * MiB), free_bytes(cache_dir)
        assert fetch(server, "/health")[0] == 200

        # A later request succeeds: A was evicted, it comes from the swarm again.
        stream_whole(server, a)
        assert not published(cache_dir, c).exists()
        server.stop()
    assert not watch.bad, watch.bad
    assert {ih for ih, _ in watch.checked} == {a.infohash, b.infohash}
    assert serve_all_from_cache(make_server, cache_dir, seeders) == [a.infohash]


# -- cache.min_free ------------------------------------------------------------------------


def test_min_free_watch_evicts_least_recently_served(
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
    seed: Callable[[str, int, int], Seeder],
    tracker: Tracker,
    streme_log: pytest.LogCaptureFixture,
) -> None:
    min_free = 12 * MiB
    a = seed("a", 4 * MiB + 512 * 1024 + 11, 21)
    b = seed("b", 4 * MiB + 512 * 1024 + 22, 22)
    c = seed("c", 6 * MiB + 33, 23)
    seeders = [a, b, c]
    # Sizes: A and B leave ~15 MiB free (over min_free); C takes it to ~9 MiB (under);
    # evicting A alone brings it back to ~13.5 MiB, so B must stay.
    server = make_server(
        cache={"min_free": min_free, "cleanup_interval": 3600}, p2p=settings(tracker)
    )
    with PublishedWatch(cache_dir, seeders) as watch:
        stream_whole(server, a)
        stream_whole(server, b)
        assert wait_until(lambda: not (cache_dir / ".incomplete" / b.infohash).exists())
        assert free_bytes(cache_dir) > min_free
        assert not evictions(streme_log)

        stream_whole(server, c)
        under_at = time.monotonic()
        assert free_bytes(cache_dir) < min_free or evictions(streme_log, a.infohash)
        assert wait_until(
            lambda: bool(evictions(streme_log, a.infohash)),
            timeout=PRESSURE_CHECK_INTERVAL + 3,
        ), f"no eviction {time.monotonic() - under_at:.1f} s after free space fell under min_free"
        (evicted,) = evictions(streme_log)
        assert "free space" in evicted, evicted
        assert not published(cache_dir, a).exists()
        assert published(cache_dir, b).exists()  # only as much as needed
        assert published(cache_dir, c).exists()
        assert free_bytes(cache_dir) >= min_free
        server.stop()
    assert not watch.bad, watch.bad
    assert serve_all_from_cache(make_server, cache_dir, seeders) == [b.infohash, c.infohash]
