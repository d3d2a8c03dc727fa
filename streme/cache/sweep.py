"""The cache's lifecycle: records kept in step with the disk, and eviction when it is full.

How this works: a sweep (every `cache.cleanup_interval`, at once when a download needs
room, and every few seconds when free space falls under `cache.min_free`) does, under
one lock:
1. flush the usage records batched by the request path, scan the cache directory
   (`usage.scan_titles`, in a thread) and the filesystem's free space;
2. reconcile the records with the disk: a title found without a record is added (origin
   "downloaded" if streme's marker says so or it is only a partial download, else
   "hand_placed"), sizes are updated, records of titles gone from disk are dropped
   (pinned ones stay: a pin may come before the download);
3. ask the pure policy (`evict.plan_evictions`) what to evict, given what is in use
   right now (being served from the cache, or held by the P2P engine), and delete each
   title whole (`usage.remove_title`: unlink only, so a response in flight finishes
   byte-exact), logging one line per eviction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from streme.cache.evict import Candidate, Limits, Plan, plan_evictions
from streme.cache.records import Origin, RecordStore, TitleRecord, UsageRecorder
from streme.cache.usage import TitleOnDisk, filesystem_space, remove_title, scan_titles
from streme.config import CacheConfig, min_free_bytes

log = logging.getLogger("streme.cache")

# Seconds between two free-space checks (one statvfs in a thread).
PRESSURE_CHECK_INTERVAL = 5.0
# Seconds without free-space sweeps after one that could free nothing.
PRESSURE_BACKOFF = 300.0


@dataclass(frozen=True, slots=True)
class SweepResult:
    freed: int
    evicted: tuple[str, ...]
    usage: int  # bytes of every title after the sweep
    free: int  # bytes free on the filesystem after the sweep
    satisfied: bool  # under the size cap and over min_free


class CacheSweeper:
    def __init__(
        self,
        root: str,
        config: CacheConfig,
        recorder: UsageRecorder,
        *,
        in_use: Callable[[], set[str]],
        release_idle: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.recorder = recorder
        self._in_use = in_use
        self._release_idle = release_idle
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.last: SweepResult | None = None
        self.evictions: dict[str, int] = {}  # by reason since start ("request": the API)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(
                self._every(self.config.cleanup_interval, "interval", first=0.0),
                name="service:cache-sweep",
            ),
            loop.create_task(self._watch_free_space(), name="service:free-space"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _every(self, interval: float, why: str, first: float) -> None:
        await asyncio.sleep(first)
        while True:
            try:
                await self.sweep(why)
            except Exception:
                log.exception("cache sweep failed")
            await asyncio.sleep(interval)

    async def _watch_free_space(self) -> None:
        """Sweep when free space falls under `min_free`. A sweep that could free nothing
        (the rest is pinned, in use or hand-placed) is not repeated for
        `PRESSURE_BACKOFF` seconds: no sweep and no warning every 5 s on a full library."""
        loop = asyncio.get_running_loop()
        quiet_until = 0.0
        while True:
            await asyncio.sleep(PRESSURE_CHECK_INTERVAL)
            if loop.time() < quiet_until:
                continue
            try:
                total, free = await asyncio.to_thread(filesystem_space, self.root)
                short = free < min_free_bytes(self.config, total)
                if short and not self._lock.locked() and await self.make_room() == 0:
                    backoff = min(PRESSURE_BACKOFF, self.config.cleanup_interval)
                    quiet_until = loop.time() + backoff
            except Exception:
                log.exception("free-space check failed")

    async def make_room(self, need: int = 0) -> int:
        """The disk is (nearly) full: let idle torrents go, then sweep until `need` more
        bytes than `min_free` are free (a download's remaining bytes); the bytes freed."""
        if self._release_idle is not None:
            await self._release_idle()
        return (await self.sweep("free space", need)).freed

    async def sweep(
        self, why: str = "requested", need: int = 0, *, dry_run: bool = False
    ) -> SweepResult:
        """One sweep; with `dry_run`, what it would evict, evicting nothing."""
        async with self._lock:
            try:
                await self.recorder.flush()
            except Exception as exc:  # a full disk refuses writes: evict all the same
                log.warning("sweep: usage records not flushed (%s); going on", exc)
            titles = await asyncio.to_thread(scan_titles, self.root)
            total, free = await asyncio.to_thread(filesystem_space, self.root)
            records = await self.recorder.run(lambda store: reconcile(store, titles))
            in_use = self._in_use()  # once per sweep, not once per title
            plan = plan_evictions(
                [candidate(t, records[ih], in_use) for ih, t in titles.items()],
                Limits(
                    max_size=self.config.max_size,
                    min_free=min_free_bytes(self.config, total) + need,
                    free=free,
                    incomplete_max_age=self.config.incomplete_max_age,
                    now=time.time(),
                    evict_hand_placed=self.config.evict_hand_placed,
                ),
            )
            if dry_run:
                planned = tuple(e.infohash for e in plan.evictions)
                freed = sum(e.bytes for e in plan.evictions)
                usage = sum(t.bytes for t in titles.values()) - freed
                return SweepResult(freed, planned, usage, free + freed, plan.satisfied)
            evicted = await self._evict(plan, titles, records)
            freed = sum(e.bytes for e in plan.evictions if e.infohash in evicted)
            usage = sum(t.bytes for t in titles.values()) - freed
            result = SweepResult(freed, evicted, usage, free + freed, plan.satisfied)
            self.last = result
            if not plan.satisfied:
                log.warning(
                    "the cache is still over its limits after the sweep (%d bytes used, cap %d;"
                    " %d free, min_free %d): what is left is pinned, in use or hand-placed",
                    usage,
                    self.config.max_size,
                    free + freed,
                    min_free_bytes(self.config, total),
                )
            if evicted or why != "interval":
                log.info(
                    "cache sweep (%s): %d title(s) evicted, %d bytes freed; %d bytes in the "
                    "cache, %d free",
                    why,
                    len(evicted),
                    freed,
                    usage,
                    free + freed,
                )
            return result

    async def _evict(
        self, plan: Plan, titles: dict[str, TitleOnDisk], records: dict[str, TitleRecord]
    ) -> tuple[str, ...]:
        done: list[str] = []
        for eviction in plan.evictions:
            infohash = eviction.infohash
            if infohash in self._in_use():  # came into use while we scanned
                continue
            await asyncio.to_thread(remove_title, titles[infohash], self.root)
            done.append(infohash)
            reason = eviction.reason.value
            self.evictions[reason] = self.evictions.get(reason, 0) + 1
            record = records[infohash]
            last = record.last_served
            log.warning(
                "evicted %s (%s, %d bytes): %s; last served %s",
                infohash,
                record.name or "unnamed",
                eviction.bytes,
                eviction.reason.value,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "never",
            )
        if done:
            try:
                await self.recorder.run(lambda store: store.remove(done))
            except sqlite3.OperationalError as exc:  # the next sweep drops them instead
                log.warning("sweep: evicted titles still in the records (%s)", exc)
        return tuple(done)

    async def remove(self, infohash: str) -> int | None:
        """Delete one title whole, whatever uses it (responses in flight finish from
        their open files); the bytes freed, or None when it is not on disk."""
        async with self._lock:
            titles = await asyncio.to_thread(scan_titles, self.root)
            title = titles.get(infohash)
            if title is None:
                return None
            await asyncio.to_thread(remove_title, title, self.root)
            await self.recorder.run(lambda store: store.remove([infohash]))
            self.evictions["request"] = self.evictions.get("request", 0) + 1
            log.warning("removed %s (%d bytes) on request", infohash, title.bytes)
            return title.bytes


def reconcile(store: RecordStore, titles: dict[str, TitleOnDisk]) -> dict[str, TitleRecord]:
    """Make the records match the disk (runs on the records' thread); the records now.

    When the database cannot be written (a full disk), the records are matched in
    memory only, so the sweep that is to free the disk can still decide."""
    records = store.titles()
    found = {ih: record_for(t) for ih, t in titles.items() if ih not in records}
    gone = [ih for ih, r in records.items() if ih not in titles and not r.pinned]
    try:
        for record in found.values():
            store.upsert_title(
                record.infohash,
                name=record.name,
                bytes=record.bytes,
                origin=record.origin,
                added=record.added,
            )
        store.set_bytes({ih: t.bytes for ih, t in titles.items()})
        if gone:
            store.remove(gone)
        return store.titles()
    except sqlite3.OperationalError as exc:
        log.warning("sweep: usage records not updated (%s); deciding from memory", exc)
    merged = {ih: replace(r, bytes=titles[ih].bytes) for ih, r in records.items() if ih in titles}
    return merged | found


def record_for(title: TitleOnDisk) -> TitleRecord:
    """The record of a title found on disk without one: streme's marker, or only a partial
    download, says streme downloaded it; anything else was placed by hand."""
    downloaded = title.downloaded_marker or not title.published
    return TitleRecord(
        infohash=title.infohash,
        name=title.name,
        bytes=title.bytes,
        origin=Origin.DOWNLOADED if downloaded else Origin.HAND_PLACED,
        added=title.last_modified,
        last_served=None,
        hits=0,
        bytes_served=0,
        pinned=False,
    )


def candidate(title: TitleOnDisk, record: TitleRecord, in_use: set[str]) -> Candidate:
    return Candidate(
        infohash=title.infohash,
        bytes=title.bytes,
        last_used=record.last_served if record.last_served is not None else record.added,
        downloaded=record.origin is Origin.DOWNLOADED,
        pinned=record.pinned,
        in_use=title.infohash in in_use,
        published=title.published,
    )
