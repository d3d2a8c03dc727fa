"""The JSON shapes of the API (msgspec Structs), and the pure functions that fill them.

Times are Unix seconds (float); sizes are bytes; `url` is the path a player opens on
this server (the same host and port as the API).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from streme.cache.lookup import default_torrent_files
from streme.cache.mediatypes import content_type_for
from streme.cache.records import TitleRecord
from streme.cache.torrentmeta import TorrentMeta
from streme.stats import StreamOutcomes
from streme.subtitles import is_subtitle, subtitle_url

if TYPE_CHECKING:  # not at run time: it would load libtorrent into a cache-only server
    from streme.torrent.snapshot import TorrentSnapshot


def stream_url(infohash: str, index: int | None) -> str:
    base = f"/stream/proxy/{infohash}"
    return base if index is None else f"{base}?file={index}"


class FileView(msgspec.Struct):
    index: int | None  # what `?file=N` takes; None for a hand-placed file without a .torrent
    path: str  # inside the torrent, '/'-separated
    size: int
    content_type: str
    url: str
    cached: bool | None = None  # on disk and served from the cache (detail view only)
    vtt: str | None = None  # a subtitle file's URL as WebVTT (for a <track>)
    default: bool = False  # the file the stream URL without `?file=` serves (by the torrent)


def files_of(meta: TorrentMeta, video_extensions: list[str]) -> list[FileView]:
    videos = default_torrent_files(meta, video_extensions)
    default = videos[0].index if videos else None
    views = []
    for f in meta.files:
        name = f.path[-1] if f.path else meta.name
        views.append(
            FileView(
                f.index,
                "/".join(f.path) if f.path else meta.name,
                f.length,
                content_type_for(name),
                stream_url(meta.infohash, f.index),
                vtt=subtitle_url(meta.infohash, f.index) if is_subtitle(name) else None,
                default=f.index == default,
            )
        )
    return views


def sidecar_views(infohash: str, paths: list[tuple[str, int]]) -> list[FileView]:
    """The subtitle files beside a hand-placed video: (path, size) in their order."""
    return [
        FileView(
            None,
            os.path.basename(path),
            size,
            content_type_for(path),
            subtitle_url(infohash, n),
            vtt=subtitle_url(infohash, n),
        )
        for n, (path, size) in enumerate(paths)
    ]


class CacheEntry(msgspec.Struct):
    infohash: str
    name: str
    bytes: int  # as recorded: the files' sizes when downloaded, the blocks on disk after a sweep
    origin: str  # "downloaded" or "hand_placed"
    added: float
    last_served: float | None
    hits: int
    bytes_served: int
    pinned: bool
    complete: bool  # the default file is served from the cache; no download pending
    url: str
    files: list[FileView]


def cache_entry(
    record: TitleRecord, files: list[FileView], complete: bool, name: str = ""
) -> CacheEntry:
    return CacheEntry(
        infohash=record.infohash,
        name=record.name or name,
        bytes=record.bytes,
        origin=record.origin.value,
        added=record.added,
        last_served=record.last_served,
        hits=record.hits,
        bytes_served=record.bytes_served,
        pinned=record.pinned,
        complete=complete,
        url=stream_url(record.infohash, None),
        files=files,
    )


class CachePage(msgspec.Struct):
    titles: list[CacheEntry]
    total: int  # titles in the records
    next: str | None  # `?after=` for the next page; None on the last


SORTS = ("last_served", "size", "hits", "added", "name")


def sort_records(records: list[TitleRecord], sort: str) -> list[TitleRecord]:
    """Newest / largest / most first (name: A to Z); ties by infohash."""
    if sort == "name":
        return sorted(records, key=lambda r: (r.name.lower(), r.infohash))
    key = {
        "last_served": lambda r: r.last_served or 0.0,
        "size": lambda r: float(r.bytes),
        "hits": lambda r: float(r.hits),
        "added": lambda r: r.added,
    }[sort]
    ordered = sorted(records, key=lambda r: r.infohash)
    return sorted(ordered, key=key, reverse=True)  # stable: ties stay by infohash


def matching(records: list[TitleRecord], words: str) -> list[TitleRecord]:
    """The records whose name holds every word of `words` (any case), or whose infohash
    starts with it; all of them when `words` is blank."""
    wanted = words.lower().split()
    if not wanted:
        return records
    return [
        r
        for r in records
        if all(w in r.name.lower() for w in wanted) or r.infohash.startswith(wanted[0])
    ]


def page_after(ordered: list[TitleRecord], after: str | None, limit: int) -> tuple[int, int]:
    """(start, end) of the page following the title `after` (from the start if None or
    gone)."""
    start = 0
    if after:
        for i, record in enumerate(ordered):
            if record.infohash == after:
                start = i + 1
                break
    return start, min(len(ordered), start + limit)


class FileProgressView(msgspec.Struct):
    index: int
    path: str
    size: int
    done: int
    progress: float


class TorrentView(msgspec.Struct):
    infohash: str
    name: str
    state: str  # adding, metadata, downloading, complete, failed
    progress: float  # of the wanted files, 0..1
    files: list[FileProgressView]
    download_rate: int  # bytes/s
    upload_rate: int
    downloaded: int  # payload bytes since it joined the session
    uploaded: int
    peers: int
    readers: int  # responses streaming from it now
    prefetch: bool
    active_seconds: float
    error: str | None = None
    url: str = ""


def torrent_view(snapshot: TorrentSnapshot) -> TorrentView:
    return TorrentView(
        infohash=snapshot.infohash,
        name=snapshot.name,
        state=snapshot.state,
        progress=round(snapshot.progress, 4),
        files=[
            FileProgressView(
                f.index, f.path, f.size, f.done, round(f.done / f.size, 4) if f.size else 1.0
            )
            for f in snapshot.files
        ],
        download_rate=snapshot.download_rate,
        upload_rate=snapshot.upload_rate,
        downloaded=snapshot.downloaded,
        uploaded=snapshot.uploaded,
        peers=snapshot.peers,
        readers=snapshot.readers,
        prefetch=snapshot.prefetch,
        active_seconds=round(snapshot.active_seconds, 3),
        url=stream_url(snapshot.infohash, None),
    )


def _fraction(done: int, size: int) -> float:
    return round(done / size, 4) if size else 1.0


def pending_view(infohash: str, state: str, error: str | None = None) -> TorrentView:
    """A torrent not (or no longer) in the session: being added, or its prefetch failed."""
    return TorrentView(
        infohash=infohash,
        name="",
        state=state,
        progress=0.0,
        files=[],
        download_rate=0,
        upload_rate=0,
        downloaded=0,
        uploaded=0,
        peers=0,
        readers=0,
        prefetch=True,
        active_seconds=0.0,
        error=error,
        url=stream_url(infohash, None),
    )


class CacheUsage(msgspec.Struct):
    bytes: int  # every title's bytes, as recorded (a sweep counts the blocks on disk)
    free: int  # bytes free on the cache's filesystem now
    cap: int  # cache.max_size (0: none)
    min_free: int  # bytes cache.min_free keeps free
    titles: int  # titles recorded (a hand-placed one: from the next sweep on)
    evictions: dict[str, int]  # by reason, since start ("request": DELETE /api/cache)


class StatsView(msgspec.Struct):
    version: str
    uptime: float  # seconds
    processes: int  # serving the port (--workers)
    requests: StreamOutcomes
    other_requests: dict[str, int]  # "<route> <outcome>" of the other routes
    bytes_served: dict[str, int]  # by source: cache, swarm
    downloaded: int  # payload bytes from the swarm, since start
    uploaded: int
    download_rate: int  # bytes/s, now
    upload_rate: int
    active_streams: int  # responses being sent from the cache and from the swarm
    active_torrents: int
    cache: CacheUsage
