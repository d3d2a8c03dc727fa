"""Usage records across restarts, SIGKILL and a damaged or missing state db (acceptance 5).

Every test runs the real `streme serve` as a subprocess (P2P off, the periodic sweep far
away so only the startup sweep runs), talks to it with http.client over loopback, and
reads `<cache>/.streme/state.db` itself with a read-only sqlite3 connection. Every
process is stopped by its PID in a `finally`.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.torrent.swarm import sha256

INFOHASH = "0123456789abcdef0123456789abcdef01234567"
NAME = f"{INFOHASH}-movie.mp4"
SIZE = 2 * 1024 * 1024
PATH = f"/stream/proxy/{INFOHASH}"
FLUSH_INTERVAL = 2.0  # UsageRecorder's default, which the server uses
STARTUP_TIMEOUT = 15.0


def _env() -> dict[str, str]:
    # Hermetic: nothing from the caller's environment configures these servers.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STREME_")
        and k not in ("TORRENT_DOWNLOAD_PATH", "CACHE_CLEANUP_INTERVAL")
    }
    return {
        **inherited,
        "STREME_P2P_ENABLED": "0",
        "STREME_CACHE_CLEANUP_INTERVAL": "3600",
    }


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", PATH, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            length = resp.getheader("Content-Length")
            assert length is not None
            assert int(length) == len(body)
            return resp.status, body
        finally:
            conn.close()

    def stop(self) -> None:
        """SIGTERM, then the clean exit status 0."""
        os.kill(self.proc.pid, signal.SIGTERM)
        assert self.proc.wait(timeout=20) == 0, self.log

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL


@contextmanager
def running(cache: Path, log_path: Path) -> Iterator[Server]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streme", "serve", "--port", "0", "--cache-dir", str(cache)],
            env=_env(),
            cwd=cache.parent,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    server = Server(proc, log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", server.log)
            if match:
                server.port = int(match.group(1))
                break
            assert proc.poll() is None, f"streme exited with {proc.returncode}:\n{server.log}"
            assert time.monotonic() < deadline, f"streme did not start:\n{server.log}"
            time.sleep(0.02)
        yield server
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def db_path(cache: Path) -> Path:
    return cache / ".streme" / "state.db"


@dataclass(frozen=True)
class Row:
    """One row of the titles table, as sqlite holds it."""

    infohash: str
    name: str
    bytes: int
    origin: str
    added: float
    last_served: float | None
    hits: int
    bytes_served: int
    pinned: int


def read_db(cache: Path) -> tuple[dict[str, Row], list[str]]:
    """(rows by infohash, PRAGMA quick_check), through a read-only connection."""
    db = sqlite3.connect(f"file:{db_path(cache)}?mode=ro", uri=True, timeout=5)
    try:
        check = [row[0] for row in db.execute("PRAGMA quick_check")]
        columns = ", ".join(Row.__dataclass_fields__)
        rows = {r[0]: Row(*r) for r in db.execute(f"SELECT {columns} FROM titles")}
        return rows, check
    finally:
        db.close()


def record(cache: Path) -> Row:
    rows, check = read_db(cache)
    assert check == ["ok"]
    assert INFOHASH in rows, rows
    return rows[INFOHASH]


def hits(cache: Path) -> int | None:
    """The title's hits in the db right now (None: no record yet)."""
    row = read_db(cache)[0].get(INFOHASH)
    return None if row is None else row.hits


def poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def cache(cache_dir: Path) -> Path:
    return cache_dir


@pytest.fixture
def video(cache: Path) -> bytes:
    """A hand-placed video: random bytes, so any wrong offset shows in the hash."""
    data = os.urandom(SIZE)
    (cache / NAME).write_bytes(data)
    return data


def assert_hand_placed(rec: Row, cache: Path) -> None:
    st = os.stat(cache / NAME)
    assert rec.origin == "hand_placed"
    assert rec.name == NAME
    assert rec.bytes > 0
    assert rec.bytes == st.st_blocks * 512  # allocated size, as du counts it
    assert rec.added == pytest.approx(st.st_mtime)
    assert rec.pinned == 0


def get_full(server: Server, video: bytes) -> int:
    status, body = server.get()
    assert status == 200
    assert sha256(body) == sha256(video)
    return len(body)


def get_range(server: Server, video: bytes, first: int, last: int) -> int:
    status, body = server.get({"Range": f"bytes={first}-{last}"})
    assert status == 206
    assert body == video[first : last + 1]
    return len(body)


def test_records_survive_a_restart(cache: Path, video: bytes, tmp_path: Path) -> None:
    t0 = time.time()
    with running(cache, tmp_path / "run1.log") as server:
        # The startup sweep records the hand-placed title before anything is served.
        assert poll(lambda: hits(cache) is not None, 5), server.log
        assert record(cache).hits == 0
        sent = get_full(server, video)
        sent += get_range(server, video, 123_456, 1_123_455)
        sent += get_full(server, video)
        t1 = time.time()
        server.stop()
    assert sent == 2 * SIZE + 1_000_000
    rec = record(cache)
    assert rec.hits == 3
    assert rec.bytes_served == sent
    assert rec.last_served is not None
    assert t0 <= rec.last_served <= t1
    assert_hand_placed(rec, cache)

    t2 = time.time()
    with running(cache, tmp_path / "run2.log") as server:
        sent += get_range(server, video, SIZE - 777, SIZE - 1)
        t3 = time.time()
        server.stop()
    rec = record(cache)
    assert rec.hits == 4
    assert rec.bytes_served == sent
    assert rec.last_served is not None
    assert t2 <= rec.last_served <= t3
    assert_hand_placed(rec, cache)
    assert not list((cache / ".streme").glob("state.db.corrupt-*"))


def test_records_survive_sigkill(cache: Path, video: bytes, tmp_path: Path) -> None:
    with running(cache, tmp_path / "run1.log") as server:
        sent = get_full(server, video)
        sent += get_range(server, video, 0, 99_999)
        sent += get_full(server, video)
        # Every response above is counted in memory; the next periodic flush commits them.
        assert poll(lambda: hits(cache) == 3, 3 * FLUSH_INTERVAL), read_db(cache)
        flushed = record(cache)
        assert flushed.bytes_served == sent
        get_full(server, video)
        get_full(server, video)
        server.kill()  # at once: the last two hits are most likely still only in memory
    rec = record(cache)  # opens, quick_check ok
    assert 3 <= rec.hits <= 5
    # Whole batches only: each later hit is one full body.
    assert rec.bytes_served == sent + (rec.hits - 3) * SIZE
    assert rec.last_served is not None
    assert flushed.last_served is not None
    assert rec.last_served >= flushed.last_served
    assert_hand_placed(rec, cache)

    # The next server takes the db as it is: no rebuild, and the counts go on from there.
    with running(cache, tmp_path / "run2.log") as server:
        get_full(server, video)
        server.stop()
        log = server.log
    assert "unreadable" not in log
    assert not list((cache / ".streme").glob("state.db.corrupt-*"))
    after = record(cache)
    assert after.hits == rec.hits + 1
    assert after.bytes_served == rec.bytes_served + SIZE


def _garbage(path: Path) -> bytes:
    data = b"this is not an sqlite database\n" + os.urandom(8192)
    path.write_bytes(data)
    return data


def _damaged_page(path: Path) -> bytes:
    """A valid header, but the titles table's page overwritten (quick_check fails)."""
    raw = bytearray(path.read_bytes())
    page_size = int.from_bytes(raw[16:18], "big")
    assert len(raw) >= 2 * page_size
    raw[page_size : 2 * page_size] = os.urandom(page_size)
    path.write_bytes(bytes(raw))
    return bytes(raw)


@pytest.mark.parametrize("damage", [_garbage, _damaged_page], ids=["garbage", "damaged-page"])
def test_corrupt_db_is_moved_aside_and_rebuilt(
    cache: Path, video: bytes, tmp_path: Path, damage: Callable[[Path], bytes]
) -> None:
    with running(cache, tmp_path / "run1.log") as server:
        get_full(server, video)
        server.stop()
    assert record(cache).hits == 1
    state = cache / ".streme"
    for suffix in ("-wal", "-shm"):
        (state / f"state.db{suffix}").unlink(missing_ok=True)
    damaged = damage(db_path(cache))

    with running(cache, tmp_path / "run2.log") as server:
        status, body = server.get()
        assert status == 200
        assert sha256(body) == sha256(video)
        server.stop()
        log = server.log
    warnings = [line for line in log.splitlines() if "unreadable" in line]
    assert len(warnings) == 1, log
    assert " WARNING " in warnings[0]
    assert "rebuilt" in warnings[0]
    assert "state.db.corrupt-" in warnings[0]
    aside = [
        p
        for p in state.glob("state.db.corrupt-*")
        if re.fullmatch(r"state\.db\.corrupt-\d+", p.name)
    ]
    assert len(aside) == 1, list(state.iterdir())
    assert aside[0].name in warnings[0]
    assert aside[0].read_bytes() == damaged  # kept for the operator, not deleted

    rec = record(cache)  # the new db: rebuilt from the directory by the startup sweep
    assert rec.hits == 1  # the one GET since the rebuild; the old counts are gone
    assert rec.bytes_served == SIZE
    assert_hand_placed(rec, cache)


def test_missing_db_is_recreated(cache: Path, video: bytes, tmp_path: Path) -> None:
    with running(cache, tmp_path / "run1.log") as server:
        get_full(server, video)
        server.stop()
    assert record(cache).hits == 1
    shutil.rmtree(cache / ".streme")

    with running(cache, tmp_path / "run2.log") as server:
        # Re-created at start, and the title recorded from the directory, before any GET.
        assert poll(lambda: db_path(cache).exists() and INFOHASH in read_db(cache)[0], 5)
        rec = record(cache)
        assert rec.hits == 0
        assert_hand_placed(rec, cache)
        get_full(server, video)
        server.stop()
        log = server.log
    assert "unreadable" not in log
    rec = record(cache)
    assert rec.hits == 1
    assert rec.bytes_served == SIZE
    assert_hand_placed(rec, cache)
