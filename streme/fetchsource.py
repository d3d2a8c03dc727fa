"""What `streme fetch` is asked for, and what the cache holds of it (no P2P here).

- `parse_source`: a magnet link (its infohash and trackers), a .torrent file (read and
  checked), or a bare infohash.
- `keep_torrent`: a .torrent source into the cache, where the engine looks for it.
- `cached_paths`: the cache index's own lookups (the ones a stream makes) say whether
  the files asked for are served from the cache already: then there is nothing to fetch.
- `record_download`: the title into the usage records, as a server records a download,
  so a running server's `GET /api/cache` lists it before its next sweep.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass

from streme.api.prefetch_input import BadPrefetch, parse_magnet
from streme.api.torrent_api import write_torrent
from streme.cache.finder import MAX_TORRENT_BYTES
from streme.cache.index import CacheIndex, LookupStatus
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.cache.lookup import default_torrent_files
from streme.cache.publish import download_pending
from streme.cache.records import Origin, RecordStore
from streme.cache.torrentmeta import InvalidTorrent, TorrentMeta, parse_torrent
from streme.config import Config

log = logging.getLogger("streme.fetch")


class UsageError(Exception):
    """The command line asks for nothing fetchable; the message says why."""


@dataclass(frozen=True, slots=True)
class Source:
    infohash: str
    trackers: tuple[str, ...] = ()  # a magnet's own (tr=)
    torrent: bytes = b""  # a .torrent file's content
    meta: TorrentMeta | None = None  # parsed from `torrent`


def parse_source(text: str) -> Source:
    """A magnet link, a .torrent file, or an infohash; raises UsageError."""
    if text.lower().startswith("magnet:"):
        try:
            infohash, trackers = parse_magnet(text)
        except BadPrefetch as exc:
            raise UsageError(str(exc)) from None
        return Source(infohash, trackers)
    if os.path.isfile(text) or text.lower().endswith(".torrent"):
        try:
            with open(text, "rb") as f:
                data = f.read(MAX_TORRENT_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {text}: {exc.strerror}") from None
        if len(data) > MAX_TORRENT_BYTES:
            raise UsageError(f"{text} is larger than a .torrent may be ({MAX_TORRENT_BYTES} bytes)")
        try:
            meta = parse_torrent(data)
        except InvalidTorrent as exc:
            raise UsageError(f"{text} is not a valid .torrent: {exc}") from None
        return Source(meta.infohash, torrent=data, meta=meta)
    try:
        return Source(parse_infohash(text))
    except InvalidInfohash as exc:
        raise UsageError(
            f"expected a magnet link, a .torrent file or an infohash, got {text[:80]!r} ({exc})"
        ) from None


def wanted_files(meta: TorrentMeta | None, file: int | None, exts: list[str]) -> list[int | None]:
    """The file indices a fetch wants, as the engine's prefetch chooses them: `file`, else
    the torrent's videos, else all its files; [None] (the title's default file, whatever
    the index serves) when the metadata is unknown. Raises UsageError for a bad `file`."""
    if file is not None:
        if meta is not None and not 0 <= file < len(meta.files):
            raise UsageError(
                f"--file {file} is out of range: the torrent has {len(meta.files)} file(s)"
            )
        return [file]
    if meta is None:
        return [None]
    chosen = [f.index for f in default_torrent_files(meta, exts)]
    return list(chosen or [f.index for f in meta.files])


def keep_torrent(config: Config, source: Source) -> None:
    """Create the cache directory, and keep a .torrent source there as
    `<infohash>.torrent` (the engine then adds the torrent from it, with no metadata
    to fetch). Raises OSError."""
    root = os.path.abspath(config.cache.dir)
    os.makedirs(root, exist_ok=True)
    if source.torrent:
        write_torrent(root, source.infohash, source.torrent)


def cached_paths(config: Config, source: Source, file: int | None) -> list[str] | None:
    """The paths of the wanted files if the cache serves every one with no download
    pending, else None. Raises UsageError for a `file` the torrent does not have."""
    root = os.path.abspath(config.cache.dir)
    index = CacheIndex(
        root, video_extensions=config.cache.video_extensions, min_size=config.cache.min_size
    )
    index.start()  # no loop: no inotify, the directory is scanned once
    try:
        meta = source.meta or index.metadata(source.infohash)
        paths: list[str] = []
        for wanted in wanted_files(meta, file, config.cache.video_extensions):
            found = index.lookup(source.infohash, wanted)
            if found.file is not None:
                paths.append(found.file.path)
                found.file.release()
            if found.status is not LookupStatus.HIT:
                return None
    finally:
        index.close()
    # Without metadata, the default file of an unfinished download is not done.
    if meta is None and download_pending(root, source.infohash):
        return None
    return paths


def record_download(cache_root: str, infohash: str, name: str) -> None:
    """Add the title to the usage records as downloaded (a failure is only logged: the
    next sweep of a server records it from the disk)."""
    store = RecordStore(cache_root)
    try:
        store.open()
        store.upsert_title(
            infohash, name=name, bytes=0, origin=Origin.DOWNLOADED, added=time.time()
        )
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        log.warning("could not add %s to the usage records: %s", infohash, exc)
    finally:
        store.close()
