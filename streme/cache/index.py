"""The cache index: an infohash (and `file=N`) -> the open, checked file answering it.

How this works:
- `names.CacheNames` keeps infohash -> the cache-directory entries carrying it, fresh by
  inotify; any change to a title's names (or under its directory) makes this index
  forget what it cached for it: parsed metadata, the answers, open descriptors.
  Without inotify (or without a loop) each lookup has the names rescanned if the
  directory changed, and nothing is cached.
- `lookup_now()` runs on the event loop for every request and does no filesystem work
  but an `fstat` of a descriptor already open: a title with no name is a miss; a file
  answered before is served from its kept-open descriptor (`fdpool`: least recently used
  closed first). The `fstat` makes a deleted file a miss on the very next request; a
  replaced one is served with its new stat.
- Anything else (the first open of a file, a directory walk, a `.torrent` read, the
  no-watcher rescan) runs on the index's threads (`lookup_async`): `finder.Finder`
  touches no shared state, and its result is applied on the loop only if the title did
  not change meanwhile (a per-title generation); otherwise it is served once and not
  kept. A slow or hung filesystem then delays the requests that need it, not the loop.
- Opening checks that the *opened* file lies inside the cache (`safeopen.open_inside`),
  so there is no check-then-open race.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from streme.cache.fdpool import DescriptorPool
from streme.cache.finder import (
    UNREAD,
    Answer,
    Finder,
    Found,
    LookupStatus,
    Unread,
    read_metadata,
)
from streme.cache.names import CacheNames
from streme.cache.torrentmeta import TorrentMeta

__all__ = ["CacheIndex", "CachedFile", "LookupResult", "LookupStatus"]

log = logging.getLogger("streme.cache")

FS_THREADS = 4  # lookups waiting on the filesystem at once


@dataclass(frozen=True, slots=True)
class CachedFile:
    fd: int  # open file descriptor, valid until `release()`
    path: str
    size: int
    mtime_ns: int
    content_type: str
    release: Callable[[], None]  # call exactly once when done with `fd`

    def close(self) -> None:
        self.release()


@dataclass(frozen=True, slots=True)
class LookupResult:
    status: LookupStatus
    file: CachedFile | None = None
    detail: str = ""


MISS = LookupResult(LookupStatus.MISS)


class CacheIndex:
    def __init__(
        self, root: str | os.PathLike[str], *, video_extensions: Sequence[str], min_size: int
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self._exts = tuple(e.lower() for e in video_extensions)
        self._min_size = min_size
        self._real_root = ""
        self._names = CacheNames(self.root, self._forget_choices, self._forget_all)
        self._meta: dict[str, TorrentMeta | None] = {}  # parsed <hash>.torrent, by hash
        self._answers: dict[str, dict[int | None, Answer]] = {}  # hash -> N -> answer
        # Bumped when the index forgets a title (per title) or everything (epoch).
        self._generation: dict[str, int] = {}
        self._epoch = 0
        self._executor = ThreadPoolExecutor(FS_THREADS, thread_name_prefix="streme-cache")
        self._refresh_lock = threading.Lock()  # the no-watcher rescan, from any thread
        # Open descriptors kept between requests, only while inotify tells us of changes.
        self._fds = DescriptorPool()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        os.makedirs(self.root, exist_ok=True)
        self._real_root = os.path.realpath(self.root)
        self._names.start(loop)
        log.info("cache index: %d infohash(es) in %s", len(self._names), self.root)

    def close(self) -> None:
        self._names.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def watching(self) -> bool:
        return self._names.watching

    def rescan(self) -> None:
        self._names.rescan()

    def _forget_all(self) -> None:
        self._epoch += 1
        self._generation.clear()
        self._meta.clear()
        self._answers.clear()
        self._fds.clear()

    def _forget_choices(self, infohash: str) -> None:
        self._generation[infohash] = self._generation.get(infohash, 0) + 1
        self._fds.forget(infohash)
        self._meta.pop(infohash, None)
        self._answers.pop(infohash, None)

    # -- lookups -------------------------------------------------------------------------
    def lookup_now(self, infohash: str, file_index: int | None = None) -> LookupResult | None:
        """The answer from memory, on the event loop; None when it needs the filesystem
        (then `lookup_async`). A title with no name in the cache is a miss; a file
        answered before is its kept-open descriptor, `fstat`ed again."""
        if not self._names.watching:
            return None
        if not self._names.get(infohash):
            return MISS
        answers = self._answers.get(infohash)
        answer = answers.get(file_index) if answers is not None else None
        if answer is None:
            return None
        shared = self._fds.get(answer.path)
        if shared is None:
            return None
        st = os.fstat(shared.fd)
        if st.st_nlink == 0 or not answer.accepts(st):
            self._fds.retire(answer.path)  # deleted, or changed size: decide again
            return None
        return self._hit(shared.fd, answer, st, shared.acquire())

    async def lookup_async(self, infohash: str, file_index: int | None = None) -> LookupResult:
        """`lookup_now`, else the filesystem work on the index's threads: the event loop
        never waits for an open, a directory walk or a `.torrent` read."""
        found = self.lookup_now(infohash, file_index)
        if found is not None:
            return found
        ticket = self._ticket(infohash)
        resolve = self._prepare(infohash, file_index)
        resolved = await asyncio.get_running_loop().run_in_executor(self._executor, resolve)
        return self._adopt(infohash, file_index, resolved, ticket)

    def lookup(self, infohash: str, file_index: int | None = None) -> LookupResult:
        """The same answer as `lookup_async`, all on the calling thread (blocking)."""
        found = self.lookup_now(infohash, file_index)
        if found is not None:
            return found
        ticket = self._ticket(infohash)
        return self._adopt(infohash, file_index, self._prepare(infohash, file_index)(), ticket)

    def metadata(self, infohash: str) -> TorrentMeta | None:
        """The torrent's metadata from `<infohash>.torrent` in the cache root, if valid."""
        if self._names.watching and infohash in self._meta:
            return self._meta[infohash]
        meta = read_metadata(self.root, infohash, self._names.get(infohash) or {})
        self._meta[infohash] = meta
        return meta

    async def metadata_async(self, infohash: str) -> TorrentMeta | None:
        """`metadata` without blocking the loop: from memory when known, else the
        `.torrent` read on a thread (kept unless the title changed meanwhile)."""
        if self._names.watching and infohash in self._meta:
            return self._meta[infohash]
        ticket = self._ticket(infohash)
        names = self.names_of(infohash)
        meta = await asyncio.to_thread(read_metadata, self.root, infohash, names)
        if self._names.watching and ticket == self._ticket(infohash):
            self._meta[infohash] = meta
        return meta

    def names_of(self, infohash: str) -> dict[str, bool]:
        """The cache root's entries carrying `infohash` (name -> is a directory), a copy."""
        return dict(self._names.get(infohash) or {})

    def _ticket(self, infohash: str) -> tuple[int, int]:
        """Changes when the index forgets `infohash`: an answer found across a change is
        served, not kept."""
        return self._epoch, self._generation.get(infohash, 0)

    def _prepare(self, infohash: str, file_index: int | None) -> Callable[[], Found]:
        """The blocking part of a lookup, bound to what the index knows now (read on the
        loop): it touches none of the index's state, so it may run on another thread."""
        watching = self._names.watching
        known: TorrentMeta | Unread | None = UNREAD
        names: dict[str, bool] | None = None
        hint: Answer | None = None
        if watching:
            names = dict(self._names.get(infohash) or {})
            known = self._meta.get(infohash, UNREAD)
            answers = self._answers.get(infohash)
            hint = answers.get(file_index) if answers is not None else None
        finder = Finder(self.root, self._real_root, self._exts, self._min_size)

        def resolve() -> Found:
            found_names = names
            if found_names is None:  # no watcher: rescan if the directory changed
                with self._refresh_lock:
                    self._names.refresh()
                    found_names = dict(self._names.get(infohash) or {})
            return finder.find(infohash, file_index, found_names, known, hint)

        return resolve

    def _adopt(
        self, infohash: str, file_index: int | None, found: Found, ticket: tuple[int, int]
    ) -> LookupResult:
        """Back on the loop: keep what the lookup learned, unless the title changed."""
        keep = self._names.watching and ticket == self._ticket(infohash)
        if keep and not isinstance(found.meta, Unread):
            self._meta[infohash] = found.meta
        opened = found.opened
        if opened is None:
            return LookupResult(found.status, detail=found.detail)
        answer = opened.answer
        if not keep:
            return self._hit(opened.fd, answer, opened.st, partial(os.close, opened.fd))
        shared = self._fds.add(infohash, answer.path, opened.fd)
        self._answers.setdefault(infohash, {})[file_index] = answer
        return self._hit(opened.fd, answer, opened.st, shared.acquire())

    @staticmethod
    def _hit(
        fd: int, answer: Answer, st: os.stat_result, release: Callable[[], None]
    ) -> LookupResult:
        size, mtime = st.st_size, st.st_mtime_ns
        found = CachedFile(fd, answer.path, size, mtime, answer.content_type, release)
        return LookupResult(LookupStatus.HIT, found)
