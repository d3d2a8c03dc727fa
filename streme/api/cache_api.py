"""`/api/cache`: the titles in the cache, one title, deleting, pinning, pruning.

How this works: the list comes from the usage records (sqlite, on the records' thread),
sorted and paged here; each listed title is then looked up in the cache index (the same
lookup a stream does, off the loop) for its files and whether it is complete. Deleting
goes through the cache sweeper, as an eviction does (unlink only: a response reading the
file finishes from its open descriptor); a title in use is refused with 409 unless
`?force=1`, which first takes it out of the swarm (its swarm readers' responses end).
"""

from __future__ import annotations

import asyncio
import os
import time

from streme.api.parts import Parts
from streme.api.views import (
    SORTS,
    CacheEntry,
    CachePage,
    FileView,
    cache_entry,
    files_of,
    matching,
    page_after,
    sidecar_views,
    sort_records,
    stream_url,
)
from streme.cache.finder import read_metadata
from streme.cache.index import LookupStatus
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.cache.publish import download_pending
from streme.cache.records import Origin, TitleRecord
from streme.cache.torrentmeta import TorrentMeta
from streme.http.messages import Request, Response, error_response, json_response
from streme.subtitle_route import sidecars, subtitles_by_stem

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
TRUE_WORDS = ("1", "true", "yes", "on")
DESCRIBE_CHUNK = 256  # titles described at once


def infohash_param(params: dict[str, str]) -> str | Response:
    try:
        return parse_infohash(params["infohash"])
    except InvalidInfohash as exc:
        return error_response(400, "invalid_infohash", str(exc))


def _title_facts(
    root: str, titles: list[tuple[str, dict[str, bool]]]
) -> dict[str, tuple[TorrentMeta | None, bool]]:
    """Each title's `.torrent` (parsed) and whether a download of it is pending: the
    blocking part of describing a page of titles, in one go on one thread."""
    return {
        infohash: (read_metadata(root, infohash, names), download_pending(root, infohash))
        for infohash, names in titles
    }


def _sidecars_of(videos: list[str]) -> dict[str, list[tuple[str, int]]]:
    """The subtitles beside each video, with their sizes; each folder listed once (a
    cache of hand-placed files keeps them all in one folder)."""
    folders: dict[str, dict[str, list[str]]] = {}
    found: dict[str, list[tuple[str, int]]] = {}
    for video in videos:
        folder = os.path.dirname(video)
        if folder not in folders:
            try:
                folders[folder] = subtitles_by_stem(os.listdir(folder))
            except OSError:
                folders[folder] = {}
        sized = []
        for path in sidecars(video, folders[folder]):
            try:
                sized.append((path, os.path.getsize(path)))
            except OSError:
                continue
        found[video] = sized
    return found


def flag(request: Request, name: str) -> bool:
    return request.query.get(name, "").lower() in TRUE_WORDS


class CacheAPI:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    async def metadata(self, infohash: str) -> TorrentMeta | None:
        """The title's `.torrent` in the cache, parsed (off the loop)."""
        return await self.parts.index.metadata_async(infohash)

    async def describe(self, record: TitleRecord, *, each_file: bool = False) -> CacheEntry:
        """The record with its files (from its .torrent, or the file the index serves)
        and whether its default file is served from the cache with nothing pending."""
        (entry,) = await self.describe_many([record], each_file=each_file)
        return entry

    async def describe_many(
        self, records: list[TitleRecord], *, each_file: bool = False
    ) -> list[CacheEntry]:
        """`describe` for a page of titles: their `.torrent`s and pending downloads read
        in one thread hop, the lookups together, the subtitles beside hand-placed videos
        in one more (one hop per title made a 2,000-title playlist take 10 s). In chunks:
        each found file holds a descriptor until its entry is built."""
        entries = []
        for start in range(0, len(records), DESCRIBE_CHUNK):
            chunk = records[start : start + DESCRIBE_CHUNK]
            entries += await self._describe_chunk(chunk, each_file=each_file)
        return entries

    async def _describe_chunk(
        self, records: list[TitleRecord], *, each_file: bool
    ) -> list[CacheEntry]:
        index, root = self.parts.index, self.parts.cache_root
        titles = [(r.infohash, index.names_of(r.infohash)) for r in records]
        facts = await asyncio.to_thread(_title_facts, root, titles)
        results = await asyncio.gather(*(index.lookup_async(r.infohash) for r in records))
        bare = [
            result.file.path
            for record, result in zip(records, results, strict=True)
            if result.file is not None and facts[record.infohash][0] is None
        ]
        beside = await asyncio.to_thread(_sidecars_of, bare) if bare else {}
        exts = self.parts.config.cache.video_extensions
        entries = []
        for record, result in zip(records, results, strict=True):
            infohash = record.infohash
            meta, pending = facts[infohash]
            name = meta.name if meta is not None else ""
            files = files_of(meta, exts) if meta is not None else []
            if result.file is not None:
                cached = result.file
                if not files:  # hand-placed, no .torrent: the file the index serves
                    basename = os.path.basename(cached.path)
                    url = stream_url(infohash, None)
                    files = [
                        FileView(
                            None, basename, cached.size, cached.content_type, url, default=True
                        )
                    ]
                    files += sidecar_views(infohash, beside.get(cached.path, []))
                    name = name or basename
                cached.release()
            if each_file and meta is not None:
                for view in files:
                    found = await index.lookup_async(infohash, view.index)
                    view.cached = found.status is LookupStatus.HIT
                    if found.file is not None:
                        found.file.release()
            complete = result.status is LookupStatus.HIT and not pending
            entries.append(cache_entry(record, files, complete, name))
        return entries

    async def _records(self) -> dict[str, TitleRecord]:
        return await self.parts.recorder.run(lambda store: store.titles())

    async def record(self, infohash: str) -> TitleRecord | None:
        """The title's record; one made up from the disk for a title the sweep has not
        recorded yet (placed by hand since), None if it is not in the cache."""
        await self.parts.recorder.flush()
        record = await self.parts.recorder.run(lambda store: store.get(infohash))
        if record is not None:
            return record
        if not self.parts.index.names_of(infohash):
            return None
        return TitleRecord(infohash, "", 0, Origin.HAND_PLACED, time.time(), None, 0, 0, False)

    async def list(self, request: Request, params: dict[str, str]) -> Response:
        query = request.query
        sort = query.get("sort", "last_served")
        if sort not in SORTS:
            return error_response(400, "invalid_sort", f"sort must be one of {', '.join(SORTS)}")
        raw_limit = query.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            return error_response(
                400, "invalid_limit", f"limit must be a number from 1 to {MAX_LIMIT}"
            )
        await self.parts.recorder.flush()
        found = matching(list((await self._records()).values()), query.get("q", ""))
        ordered = sort_records(found, sort)
        start, end = page_after(ordered, query.get("after"), int(raw_limit))
        entries = await self.describe_many(ordered[start:end])
        following = ordered[end - 1].infohash if end < len(ordered) and end > start else None
        return json_response(200, CachePage(entries, len(ordered), following))

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        infohash = infohash_param(params)
        if isinstance(infohash, Response):
            return infohash
        record = await self.record(infohash)
        if record is None:
            return error_response(404, "not_cached", f"{infohash} is not in the cache")
        return json_response(200, await self.describe(record, each_file=True))

    def _users(self, infohash: str) -> str:
        """What holds the title now, in words ("" when nothing)."""
        serving = self.parts.handlers.serving.get(infohash, 0)
        engine = self.parts.engine
        held = engine is not None and infohash in engine.in_use()
        why = []
        if serving:
            why.append(f"{serving} response(s) are being served from the cache")
        if held:
            why.append("the swarm engine holds it (downloading or streaming)")
        return "; ".join(why)

    async def delete(self, request: Request, params: dict[str, str]) -> Response:
        infohash = infohash_param(params)
        if isinstance(infohash, Response):
            return infohash
        users = self._users(infohash)
        if users and not flag(request, "force"):
            return error_response(
                409, "in_use", f"{infohash} is in use: {users}; add ?force=1 to delete it anyway"
            )
        engine = self.parts.engine
        leaving = engine.remove(infohash, "deleted through the API") if engine else None
        if leaving is not None:
            await leaving
        removed = await self.parts.sweeper.remove(infohash)
        await self.parts.recorder.run(lambda store: store.end_prefetch(infohash))
        if removed is None and leaving is None:
            return error_response(404, "not_cached", f"{infohash} is not in the cache")
        body = {"removed": infohash, "bytes": removed or 0, "forced": bool(users)}
        return json_response(200, body)

    async def pin(self, request: Request, params: dict[str, str]) -> Response:
        infohash = infohash_param(params)
        if isinstance(infohash, Response):
            return infohash
        pinned = request.method == "PUT"
        await self.parts.recorder.run(lambda store: store.set_pinned(infohash, pinned))
        return json_response(200, {"infohash": infohash, "pinned": pinned})

    async def prune(self, request: Request, params: dict[str, str]) -> Response:
        """Sweep now (or, with `?dry_run=1`, say what a sweep would evict)."""
        dry_run = flag(request, "dry_run")
        result = await self.parts.sweeper.sweep("requested", dry_run=dry_run)
        return json_response(
            200,
            {
                "dry_run": dry_run,
                "evicted": list(result.evicted),
                "freed": result.freed,
                "usage": result.usage,
                "free": result.free,
                "satisfied": result.satisfied,
            },
        )
