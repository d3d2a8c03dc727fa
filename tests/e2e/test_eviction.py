"""Cache eviction end to end: a real server, real downloads from a loopback swarm, real sweeps.

- The size cap evicts the least recently served downloads, whole (published files, their
  `.torrent`, any download directory, the downloaded marker), and nothing more than
  needed; a title served recently, a pinned one (`streme pin`, the real CLI) and a
  hand-placed file stay. The usage records then agree with `du`, and an evicted title
  comes back from the swarm on the next request.
- Eviction only unlinks: a response in flight when its title is removed finishes
  byte-exact from its open descriptor, and a sweep never evicts a title being served.

Every streamed body is sha256-checked against its source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import libtorrent as lt
import pytest

from streme.cache import sweep
from streme.cache.records import Origin, TitleRecord
from streme.cache.usage import scan_titles
from tests.client import read_head
from tests.conftest import RunningServer, wait_until
from tests.torrent.peers import Tracker
from tests.torrent.swarm import (
    LOOPBACK_SETTINGS,
    make_torrent,
    p2p_settings,
    random_bytes,
    retire,
    sha256,
    wait_until_serving,
)
from tests.torrent.test_p2p_stream import fetch

T = TypeVar("T")

KiB = 1024
MiB = 1024 * KiB
REPO = Path(__file__).resolve().parents[2]
HAND_PLACED = "f00dfeed" * 5  # 40 hex digits: the infohash a hand-placed file's name carries
# Only the size cap acts: no free-space floor, and no sweep but the ones the tests ask for
# (after the one every server runs at start).
CACHE = {"min_free": 0, "cleanup_interval": 3600}
# p2p.idle_timeout: finished torrents leave the session soon (what the engine holds is "in
# use", never evicted). Not 0: with 0, a torrent whose metadata comes at once from the
# loopback peer leaves again before its request's reader opens (the engine then adds it
# anew, up to four times for one request here), and the last reader's departure races
# the publishing of the finished download.
IDLE = 0.2


def run(server: RunningServer, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    """Run `coro` on the server's loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, server.loop).result(timeout=timeout)


def records(server: RunningServer) -> dict[str, TitleRecord]:
    return run(server, server.app.recorder.run(lambda store: store.titles()))


def du(path: Path) -> int:
    """`du -s -B1`: allocated bytes under `path`, each inode once."""
    out = subprocess.run(
        ["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0])


def place_by_hand(cache_dir: Path, name: str, data: bytes) -> Path:
    """As the operator should: copy under a hidden name, then rename into place."""
    tmp = cache_dir / f".{name}.part"
    tmp.write_bytes(data)
    final = cache_dir / name
    os.rename(tmp, final)
    return final


# -- one seeder session seeding several single-file torrents ------------------------------


@dataclass
class Title:
    infohash: str
    data: bytes


@dataclass
class Swarm:
    session: lt.session
    titles: list[Title]
    tracker: Tracker

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.session.listen_port()}"


@pytest.fixture
def swarm(tmp_path: Path, tracker: Tracker) -> Iterator[Swarm]:
    """Four titles of distinct, growing sizes (not whole pieces), each a `movie.mp4`,
    seeded by one libtorrent session on loopback, each announced to `tracker`."""
    session = lt.session(LOOPBACK_SETTINGS)
    titles = []
    for i in range(4):
        root = tmp_path / f"seed{i}"
        data = random_bytes(MiB + 200 * KiB * i + 17 * (i + 1), 70 + i)
        blob, infohash = make_torrent(root, {"movie.mp4": data}, announce=tracker.announce)
        tracker.allow(infohash)
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(blob)
        params.save_path = str(root)
        params.flags |= lt.torrent_flags.seed_mode
        wait_until_serving(session.add_torrent(params))
        titles.append(Title(infohash, data))
    swarm = Swarm(session, titles, tracker)
    for title in titles:
        tracker.wait_peer(title.infohash, swarm.peer)
    yield swarm
    retire(session)


# -- the size cap evicts the least recently served ----------------------------------------


def settled(cache_dir: Path, infohash: str) -> bool:
    """Published (file and metadata in the cache), and out of the P2P session for good."""
    return (
        (cache_dir / infohash / "movie.mp4").is_file()
        and (cache_dir / f"{infohash}.torrent").is_file()
        and not (cache_dir / ".incomplete" / infohash).exists()
        and not (cache_dir / ".incomplete" / f"{infohash}.resume").exists()
    )


def gone_entirely(cache_dir: Path, infohash: str) -> list[str]:
    """What is left on disk of title `infohash` (nothing, once evicted)."""
    paths = [
        cache_dir / infohash,
        cache_dir / f"{infohash}.torrent",
        cache_dir / ".incomplete" / infohash,
        cache_dir / ".incomplete" / f"{infohash}.resume",
        cache_dir / ".streme" / "downloaded" / infohash,
    ]
    return [str(p) for p in paths if os.path.lexists(p)]


def test_sweep_evicts_least_recently_served_downloads_and_keeps_the_rest(
    make_server: Callable[..., RunningServer],
    swarm: Swarm,
    cache_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="streme.cache")
    # No cap while the titles download: the app sweeps after each finished download when
    # a cap is set, and with one in place from the start those sweeps would already evict
    # A while D lands, before A is served again. Setting it on the live config later
    # (the sweeper reads `config.max_size` at every sweep) makes the one sweep that
    # counts the test's own.
    # p2p.idle_timeout: see IDLE; p2p.metadata_timeout 10 s: a title whose metadata does
    # not come fails its fetch in 10 s.
    server = make_server(
        cache=CACHE, p2p=p2p_settings(swarm.tracker, idle_timeout=IDLE, metadata_timeout=10)
    )
    engine = server.app.engine
    assert engine is not None
    a, b, c, d = swarm.titles
    for title in (a, b, c, d):  # served in this order: A is the least recent, D the most
        status, _, body = fetch(server, f"/stream/proxy/{title.infohash}")
        assert status == 200
        assert sha256(body) == sha256(title.data)
    for title in (a, b, c, d):
        assert wait_until(partial(settled, cache_dir, title.infohash), timeout=15), (
            f"{title.infohash} not published: {sorted(os.listdir(cache_dir))} "
            f"{sorted(os.listdir(cache_dir / '.incomplete'))}"
        )
    assert wait_until(lambda: server.call(engine.snapshot) == [] and not server.call(engine.in_use))
    for title in (a, b, c, d):
        assert (cache_dir / ".streme" / "downloaded" / title.infohash).is_file()

    hand = place_by_hand(cache_dir, f"{HAND_PLACED}-film.mp4", random_bytes(MiB + 4096, 79))
    pinned = subprocess.run(
        [sys.executable, "-m", "streme", "pin", b.infohash, "--cache-dir", str(cache_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert pinned.returncode == 0, pinned.stderr
    assert f"{b.infohash} pinned" in pinned.stdout

    time.sleep(0.01)  # A's new last_served is strictly later than D's
    status, _, body = fetch(server, f"/stream/proxy/{a.infohash}")  # now the most recent
    assert status == 200
    assert sha256(body) == sha256(a.data)
    assert server.call(engine.snapshot) == []  # a cache hit: no P2P at all
    run(server, server.app.recorder.flush())

    before = scan_titles(str(cache_dir))
    assert set(before) == {a.infohash, b.infohash, c.infohash, d.infohash, HAND_PLACED}
    usage = sum(t.bytes for t in before.values())
    # Evicting C (the least recently served unpinned download) is one byte short: D must
    # go too; then the cap holds and A, served since, stays.
    cap = usage - before[c.infohash].bytes - 1
    config = server.app.sweeper.config
    assert config is server.app.config.cache
    server.call(lambda: setattr(config, "max_size", cap))

    result = run(server, server.app.sweeper.sweep("test"))
    assert result.evicted == (c.infohash, d.infohash)  # least recently served first
    assert result.satisfied
    assert result.usage <= cap
    assert result.freed == before[c.infohash].bytes + before[d.infohash].bytes
    for title in (c, d):
        assert gone_entirely(cache_dir, title.infohash) == []
    for title in (a, b):
        assert (cache_dir / title.infohash / "movie.mp4").is_file()
        assert (cache_dir / f"{title.infohash}.torrent").is_file()
    assert hand.is_file()
    after = scan_titles(str(cache_dir))
    assert set(after) == {a.infohash, b.infohash, HAND_PLACED}
    assert sum(t.bytes for t in after.values()) <= cap
    kept = records(server)
    assert set(kept) == set(after)
    assert kept[b.infohash].pinned
    assert kept[HAND_PLACED].origin is Origin.HAND_PLACED
    assert kept[a.infohash].origin is Origin.DOWNLOADED
    assert kept[a.infohash].name == "movie.mp4"  # recorded when the download was published
    assert kept[a.infohash].hits == 2  # streamed once, served once from the cache

    for title in (c, d):
        lines = [
            r.getMessage()
            for r in caplog.records
            if r.name == "streme.cache" and r.getMessage().startswith(f"evicted {title.infohash}")
        ]
        assert len(lines) == 1, lines
        assert f"evicted {title.infohash} (movie.mp4, " in lines[0]
        assert "size cap" in lines[0]
        assert "; last served " in lines[0]
        assert not lines[0].endswith("never")  # it was served: the time is given
    evictions = [r.getMessage() for r in caplog.records if r.getMessage().startswith("evicted ")]
    assert len(evictions) == 2, evictions  # A, B and the hand-placed file: none

    # The records agree with du once a sweep has refreshed their sizes: every byte under
    # the cache is a title's, streme's own state, or the root's and .incomplete's inodes.
    again = run(server, server.app.sweeper.sweep("test"))
    assert again.evicted == ()
    assert again.satisfied
    fresh = records(server)
    assert {ih: r.bytes for ih, r in fresh.items()} == {ih: t.bytes for ih, t in after.items()}
    dirs = sum(os.lstat(p).st_blocks * 512 for p in (cache_dir, cache_dir / ".incomplete"))
    state = du(cache_dir / ".streme")
    assert sum(r.bytes for r in fresh.values()) + state + dirs == du(cache_dir)

    # Nothing was lost that cannot come back: the evicted titles stream from the swarm.
    server.call(lambda: setattr(config, "max_size", 0))  # no sweep after these downloads
    for title in (c, d):
        status, _, body = fetch(server, f"/stream/proxy/{title.infohash}")
        assert status == 200
        assert sha256(body) == sha256(title.data)
    for title in (c, d):
        assert wait_until(partial(settled, cache_dir, title.infohash), timeout=15)


# -- eviction under a response in flight --------------------------------------------------

BIG = 16 * MiB
FIRST = 256 * KiB  # read before the removal


def open_on(path: Path) -> int:
    """Descriptors of this process (the server runs in it) open on `path`, even unlinked."""
    wanted = {str(path), f"{path} (deleted)"}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}") in wanted
    return count


def read_body(sock: socket.socket, body: bytearray, until: int) -> None:
    while len(body) < until:
        chunk = sock.recv(min(64 * KiB, until - len(body)))
        assert chunk, f"closed after {len(body)} body bytes"
        body += chunk


def test_eviction_mid_response_completes_byte_exact(
    make_server: Callable[..., RunningServer], cache_dir: Path, zero_copy: bool
) -> None:
    server = make_server(cache=CACHE, zero_copy=zero_copy)
    sweeper = server.app.sweeper
    # The sweep every server runs at start is done: the file below meets only ours.
    assert wait_until(lambda: server.call(lambda: sweeper.last) is not None)
    infohash = HAND_PLACED
    data = random_bytes(BIG, 91)
    path = place_by_hand(cache_dir, f"{infohash}-film.mp4", data)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * KiB)  # before connect: window
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    try:
        sock.sendall(f"GET /stream/proxy/{infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head, body = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert f"content-length: {BIG}".encode() in head.lower()
        read_body(sock, body, FIRST)
        time.sleep(0.2)  # the client stalls; the server's socket buffers fill
        assert server.call(lambda: dict(server.app.handlers.serving)) == {infohash: 1}

        # Everything allows evicting it (hand-placed titles may go, a one-byte cap), yet a
        # sweep leaves a title being served alone.
        config = sweeper.config

        def tighten() -> None:
            config.evict_hand_placed = True
            config.max_size = 1

        server.call(tighten)
        result = run(server, sweeper.sweep("test"))
        assert result.evicted == ()
        assert not result.satisfied  # over the cap, with nothing it may evict
        assert path.is_file()

        # The operator's removal (the same unlink-only deletion eviction uses) does not wait.
        assert run(server, sweeper.remove(infohash)) is not None
        assert not os.path.lexists(path)
        assert [n for n in os.listdir(cache_dir) if infohash in n] == []
        # Still in flight, reading the unlinked file: the server cannot have handed the
        # kernel more than its send buffer (at most tcp_wmem's maximum, 4 MiB by default)
        # plus our small receive buffer, so most of the body comes from it from now on.
        assert infohash in server.call(lambda: dict(server.app.handlers.serving))
        assert open_on(path) >= 1

        read_body(sock, body, BIG)
        assert len(body) == BIG
        assert sha256(bytes(body)) == sha256(data)
    finally:
        sock.close()
    assert wait_until(lambda: not server.call(lambda: dict(server.app.handlers.serving)))
    assert wait_until(lambda: open_on(path) == 0)  # its bytes are freed once the response ends
    status, _, _ = fetch(server, f"/stream/proxy/{infohash}")
    assert status == 404
    assert infohash not in records(server)


def test_a_full_library_is_not_swept_every_few_seconds(
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """min_free can never be met (100 % of the disk) and nothing may be evicted (a
    hand-placed file): the free-space watch sweeps once, then backs off."""
    monkeypatch.setattr(sweep, "PRESSURE_CHECK_INTERVAL", 0.05)
    caplog.set_level(logging.INFO, logger="streme.cache")
    place_by_hand(cache_dir, f"{HAND_PLACED}-film.mp4", os.urandom(1 << 20))
    make_server(cache={"min_free": "100%", "cleanup_interval": 3600})

    def pressure_sweeps() -> int:
        return sum(
            1 for r in caplog.records if r.getMessage().startswith("cache sweep (free space)")
        )

    assert wait_until(lambda: pressure_sweeps() >= 1)
    time.sleep(1.0)  # twenty checks' worth
    assert pressure_sweeps() == 1
    assert (cache_dir / f"{HAND_PLACED}-film.mp4").is_file()
