"""Usage records of the cache: one sqlite row per title, in `<root>/.streme/state.db`.

How this works:
- `RecordStore` is plain synchronous sqlite3 (stdlib). Its connection belongs to the thread
  that called `open()` (sqlite3's `check_same_thread` enforces it); every write is one
  explicit transaction (`BEGIN IMMEDIATE` ... `COMMIT`).
- Schema: `PRAGMA user_version` counts the `MIGRATIONS` applied; each entry runs once, in
  order, in its own transaction together with the version bump. Adding a schema change is
  appending one entry. A db newer than this code raises `RecordsTooNew` and is left alone.
- Durability: WAL with `synchronous=NORMAL`. A commit is in the WAL file (the OS page cache)
  when `COMMIT` returns, so it survives the process being killed (SIGKILL, OOM); the last
  commits before a power loss or kernel crash may be lost (never the db's consistency).
- Damage: a file that is not a database, fails `PRAGMA quick_check`, or reports corruption
  while opening or migrating is moved aside (with its -wal/-shm) to `state.db.corrupt-<ns>`
  and replaced by an empty db; `rebuilt` says so, `created` says there was no schema yet.
  Either way the caller refills the records from the cache directory. Other errors (locked,
  unwritable, full) are raised: they say nothing about the data, which must not be thrown out.
- `UsageRecorder` is the asyncio side. `served()` runs on the event loop for every response
  and only adds into a dict; `flush()` (every `flush_interval` seconds, and at `stop()`)
  swaps that dict out and applies it in one transaction on a single worker thread, which is
  the store's owner; `run()` sends any other store call there. A failed flush puts its batch
  back into the pending dict, so it is retried rather than lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger("streme.cache")

T = TypeVar("T")

STATE_DIR = ".streme"
STATE_DB = "state.db"
BUSY_TIMEOUT = 5.0

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the titles table.
    (
        """CREATE TABLE titles (
            infohash     TEXT PRIMARY KEY NOT NULL,
            name         TEXT NOT NULL,
            bytes        INTEGER NOT NULL,
            origin       TEXT NOT NULL CHECK (origin IN ('downloaded', 'hand_placed')),
            added        REAL NOT NULL,
            last_served  REAL,
            hits         INTEGER NOT NULL DEFAULT 0,
            bytes_served INTEGER NOT NULL DEFAULT 0,
            pinned       INTEGER NOT NULL DEFAULT 0
        )""",
    ),
    # 2: prefetches asked for and not finished, started again after a restart.
    (
        """CREATE TABLE prefetches (
            infohash TEXT PRIMARY KEY NOT NULL,
            file     INTEGER,
            trackers TEXT NOT NULL DEFAULT '',
            asked    REAL NOT NULL
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = "infohash, name, bytes, origin, added, last_served, hits, bytes_served, pinned"
_CORRUPTION_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class Origin(enum.Enum):
    DOWNLOADED = "downloaded"
    HAND_PLACED = "hand_placed"


@dataclass(frozen=True, slots=True)
class TitleRecord:
    infohash: str
    name: str
    bytes: int
    origin: Origin
    added: float
    last_served: float | None
    hits: int
    bytes_served: int
    pinned: bool


@dataclass(frozen=True, slots=True)
class PrefetchRecord:
    """A prefetch asked for and not finished (nor failed): started again after a restart."""

    infohash: str
    file: int | None  # None: the torrent's videos
    trackers: tuple[str, ...]  # a magnet's own, kept only when they were allowed
    asked: float


@dataclass(slots=True)
class UsageDelta:
    """What the request path accumulated for one title since the last flush."""

    hits: int = 0
    bytes_served: int = 0
    last_served: float = 0.0


class RecordsTooNew(RuntimeError):
    """The state db was written by a newer streme (a higher schema version than we know)."""


class _Damaged(sqlite3.DatabaseError):
    """`PRAGMA quick_check` found problems."""


def state_db_path(cache_root: str) -> str:
    return os.path.join(cache_root, STATE_DIR, STATE_DB)


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    if isinstance(exc, _Damaged):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _CORRUPTION_CODES


def _record(row: tuple[str, str, int, str, float, float | None, int, int, int]) -> TitleRecord:
    infohash, name, size, origin, added, last_served, hits, bytes_served, pinned = row
    return TitleRecord(
        infohash, name, size, Origin(origin), added, last_served, hits, bytes_served, bool(pinned)
    )


class RecordStore:
    """Synchronous sqlite access. Every method must be called from one thread (the owner)."""

    def __init__(self, cache_root: str) -> None:
        self.cache_root = cache_root
        self.path = state_db_path(cache_root)
        self.rebuilt = False  # open() replaced a corrupt/unreadable db with an empty one
        self.created = False  # open() found no db (or one without a schema) and created it
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.close()
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.rebuilt = False
        self.created = not os.path.exists(self.path)
        if self.created:  # a -wal without its db would be replayed into the new one
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            aside = f"{self.path}.corrupt-{time.time_ns()}"
            msg = "usage records %s unreadable (%s): moved to %s, will be rebuilt from the cache"
            log.warning(msg + " directory", self.path, exc, aside)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(self.path + suffix, aside + suffix)
            self._db = self._connect()
            self.rebuilt, self.created = True, False

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise _Damaged("; ".join(problems[:3]))
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RecordsTooNew(
                f"{self.path} has schema version {version}, this streme knows up to "
                f"{SCHEMA_VERSION}; upgrade streme or move the file away"
            )
        self.created = self.created or version == 0
        while version < SCHEMA_VERSION:
            with _transaction(db):
                # Re-read under the write lock: another process may have migrated meanwhile.
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version >= SCHEMA_VERSION:
                    break
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("RecordStore is not open")
        return self._db

    def titles(self) -> dict[str, TitleRecord]:
        rows = self._conn().execute(f"SELECT {_COLUMNS} FROM titles")
        return {row[0]: _record(row) for row in rows}

    def totals(self) -> tuple[int, int]:
        """(titles, bytes) of every record."""
        row = self._conn().execute("SELECT count(*), coalesce(sum(bytes), 0) FROM titles")
        count, size = row.fetchone()
        return int(count), int(size)

    def get(self, infohash: str) -> TitleRecord | None:
        sql = f"SELECT {_COLUMNS} FROM titles WHERE infohash = ?"
        row = self._conn().execute(sql, (infohash,)).fetchone()
        return None if row is None else _record(row)

    def upsert_title(
        self, infohash: str, *, name: str, bytes: int, origin: Origin, added: float
    ) -> None:
        """Insert; an existing row gets the new name and bytes, and becomes `downloaded` if
        the new origin is; its added time, counters and pin stay."""
        with _transaction(self._conn()) as db:
            db.execute(
                "INSERT INTO titles (infohash, name, bytes, origin, added) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (infohash) DO UPDATE SET name = excluded.name,"
                " bytes = excluded.bytes, origin = CASE excluded.origin"
                " WHEN 'downloaded' THEN 'downloaded' ELSE origin END",
                (infohash, name, bytes, origin.value, added),
            )

    def set_bytes(self, sizes: Mapping[str, int]) -> None:
        """Update the sizes of known titles (unknown ones are ignored), in one transaction."""
        with _transaction(self._conn()) as db:
            sql = "UPDATE titles SET bytes = ? WHERE infohash = ?"
            db.executemany(sql, ((size, infohash) for infohash, size in sizes.items()))

    def apply_usage(self, batch: Mapping[str, UsageDelta]) -> None:
        """Add the counters and keep the latest last_served, in one transaction. A title
        without a row gets one (downloaded, no name, 0 bytes, added when last served)."""
        with _transaction(self._conn()) as db:
            db.executemany(
                f"INSERT INTO titles ({_COLUMNS}) VALUES (?, '', 0, 'downloaded', ?, ?, ?, ?, 0)"
                " ON CONFLICT (infohash) DO UPDATE SET hits = hits + excluded.hits,"
                " bytes_served = bytes_served + excluded.bytes_served,"
                " last_served = max(coalesce(last_served, excluded.last_served),"
                " excluded.last_served)",
                (
                    (h, d.last_served, d.last_served, d.hits, d.bytes_served)
                    for h, d in batch.items()
                ),
            )

    def set_pinned(self, infohash: str, pinned: bool) -> None:
        """Pin or unpin; an unknown title gets a row (downloaded, no name, 0 bytes, added now)."""
        with _transaction(self._conn()) as db:
            db.execute(
                "INSERT INTO titles (infohash, name, bytes, origin, added, pinned)"
                " VALUES (?, '', 0, 'downloaded', ?, ?)"
                " ON CONFLICT (infohash) DO UPDATE SET pinned = excluded.pinned",
                (infohash, time.time(), int(pinned)),
            )

    def remove(self, infohashes: Iterable[str]) -> None:
        with _transaction(self._conn()) as db:
            db.executemany("DELETE FROM titles WHERE infohash = ?", ((h,) for h in infohashes))

    def prefetches(self) -> list[PrefetchRecord]:
        rows = self._conn().execute("SELECT infohash, file, trackers, asked FROM prefetches")
        return [
            PrefetchRecord(ih, file, tuple(t for t in trackers.split("\n") if t), asked)
            for ih, file, trackers, asked in rows
        ]

    def add_prefetch(self, record: PrefetchRecord) -> None:
        with _transaction(self._conn()) as db:
            db.execute(
                "INSERT OR REPLACE INTO prefetches (infohash, file, trackers, asked)"
                " VALUES (?, ?, ?, ?)",
                (record.infohash, record.file, "\n".join(record.trackers), record.asked),
            )

    def end_prefetch(self, infohash: str) -> None:
        """Finished, failed or deleted: not started again."""
        with _transaction(self._conn()) as db:
            db.execute("DELETE FROM prefetches WHERE infohash = ?", (infohash,))


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # sqlite may have rolled back already (e.g. disk full)
            db.execute("ROLLBACK")
        raise


class UsageRecorder:
    """Counts responses on the event loop; writes them to the store on its own thread."""

    def __init__(self, store: RecordStore, *, flush_interval: float = 2.0) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self._pending: dict[str, UsageDelta] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._failing = False

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streme-records")
        try:
            await self.run(RecordStore.open)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._flush_periodically(), name="service:records-flush")

    @property
    def store_rebuilt(self) -> bool:
        return self.store.rebuilt or self.store.created

    def served(self, infohash: str, nbytes: int, now: float | None = None) -> None:
        delta = self._pending.get(infohash)
        if delta is None:
            delta = self._pending[infohash] = UsageDelta()
        delta.hits += 1
        delta.bytes_served += nbytes
        if now is None:
            now = time.time()
        if now > delta.last_served:
            delta.last_served = now

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        if self._executor is None:
            self._restore(batch)
            raise RuntimeError("UsageRecorder is not started")
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, self.store.apply_usage, batch)
        try:
            await asyncio.shield(job)  # a cancelled flush must not hide whether it landed
        except asyncio.CancelledError:
            job.add_done_callback(
                lambda j: self._restore(batch) if j.cancelled() or j.exception() else None
            )
            raise
        except BaseException:
            self._restore(batch)
            raise

    def _restore(self, batch: dict[str, UsageDelta]) -> None:
        for infohash, old in batch.items():
            new = self._pending.get(infohash)
            if new is None:
                self._pending[infohash] = old
            else:
                new.hits += old.hits
                new.bytes_served += old.bytes_served
                new.last_served = max(new.last_served, old.last_served)

    async def run(self, fn: Callable[[RecordStore], T]) -> T:
        if self._executor is None:
            raise RuntimeError("UsageRecorder is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self.store)

    async def _flush_periodically(self) -> None:
        stopping = self._stopping
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):  # no extra task, unlike wait_for
                    await stopping.wait()
            if stopping.is_set():
                return  # stop() flushes; leaving here never interrupts a flush midway
            try:
                await self.flush()
            except Exception as exc:
                log.warning(
                    "flushing usage records failed (%s); %d titles kept for the next try",
                    exc,
                    len(self._pending),
                    exc_info=not self._failing,
                )
                self._failing = True
            else:
                self._failing = False

    async def stop(self) -> None:
        if self._executor is None:
            return
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.exception("final flush of usage records failed; %d titles lost", len(self._pending))
        finally:
            try:
                await self.run(RecordStore.close)
            finally:
                self._executor.shutdown(wait=True)
                self._executor = None
