"""The cache index: an infohash (and `file=N`) -> the open, checked file answering it.

How this works:
- `names.CacheNames` keeps infohash -> the cache-directory entries carrying it, fresh by
  inotify; any change to a title's names (or under its directory) makes this index
  forget what it cached for it: parsed metadata, the chosen file, open descriptors.
  Without inotify (or without a loop) each lookup has the names rescanned if the
  directory changed, and nothing is cached.
- `lookup()` runs on the event loop for every request: a dict lookup, then the chosen
  file opened only if it lies inside the cache (`safeopen.open_inside`: the *opened*
  file's real path is checked, so no check-then-open race), and `fstat` (regular file;
  size and mtime for the response). While inotify watches, the descriptor stays open for
  the next request (`fdpool`: least recently used closed first) and any change to its
  name forgets it; an `fstat` per request still makes a deleted file a miss on the very
  next request; a replaced one is served with its new stat.
The choice among several matches follows `lookup.py`'s pure rules.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from streme.cache.fdpool import DescriptorPool
from streme.cache.lookup import (
    Candidate,
    default_torrent_files,
    is_video,
    largest,
    locations_in_hash_dir,
    pick_plain,
)
from streme.cache.mediatypes import content_type_for
from streme.cache.names import MAX_DIR_DEPTH, CacheNames
from streme.cache.safeopen import open_inside
from streme.cache.torrentmeta import InvalidTorrent, TorrentFile, TorrentMeta, parse_torrent

log = logging.getLogger("streme.cache")

MAX_DIR_ENTRIES = 10_000


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


class LookupStatus(enum.Enum):
    HIT = "hit"
    MISS = "miss"
    FILE_NOT_FOUND = "file_not_found"
    NEEDS_METADATA = "needs_metadata"


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
        self._dir_choice: dict[tuple[str, int | None], str] = {}  # (hash, N) -> path
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

    def __len__(self) -> int:
        return len(self._names)

    @property
    def watching(self) -> bool:
        return self._names.watching

    def rescan(self) -> None:
        self._names.rescan()

    def _forget_all(self) -> None:
        self._meta.clear()
        self._dir_choice.clear()
        self._fds.clear()

    def _forget_choices(self, infohash: str) -> None:
        self._fds.forget(infohash)
        self._meta.pop(infohash, None)
        for key in [k for k in self._dir_choice if k[0] == infohash]:
            del self._dir_choice[key]

    # -- lookups -------------------------------------------------------------------------
    def lookup(self, infohash: str, file_index: int | None = None) -> LookupResult:
        """Find, open and check the file answering `infohash` (and `file_index`)."""
        if not self._names.watching:
            self._names.refresh()
        names = self._names.get(infohash)
        if not names:
            return MISS
        meta = self.metadata(infohash)
        if file_index is not None:
            return self._lookup_index(infohash, names, meta, file_index)
        plain = [n for n, is_dir in names.items() if not is_dir and is_video(n, self._exts)]
        if plain:
            found = self._open_plain(infohash, plain, meta)
            if found is not None:
                return LookupResult(LookupStatus.HIT, found)
        for name in sorted(n for n, is_dir in names.items() if is_dir):
            found = self._open_dir_default(infohash, name, meta)
            if found is not None:
                return LookupResult(LookupStatus.HIT, found)
        return MISS

    def metadata(self, infohash: str) -> TorrentMeta | None:
        """The torrent's metadata from `<infohash>.torrent` in the cache root, if valid."""
        if self._names.watching and infohash in self._meta:
            return self._meta[infohash]
        meta: TorrentMeta | None = None
        names = self._names.get(infohash) or {}
        for name in sorted(names):
            if names[name] or not name.lower().endswith(".torrent"):
                continue
            try:
                with open(os.path.join(self.root, name), "rb") as f:
                    data = f.read(16 * 1024 * 1024)
                parsed = parse_torrent(data)
            except (OSError, InvalidTorrent) as exc:
                log.warning("ignoring %s: %s", name, exc)
                continue
            if parsed.infohash != infohash:
                log.warning("ignoring %s: it is the torrent of %s", name, parsed.infohash)
                continue
            meta = parsed
            break
        self._meta[infohash] = meta
        return meta

    def _lookup_index(
        self, infohash: str, names: dict[str, bool], meta: TorrentMeta | None, index: int
    ) -> LookupResult:
        if meta is None:
            return LookupResult(
                LookupStatus.NEEDS_METADATA,
                detail=f"file={index} needs {infohash}.torrent in the cache directory to map "
                "file indices to files",
            )
        if index >= len(meta.files):
            return LookupResult(
                LookupStatus.FILE_NOT_FOUND,
                detail=f"file={index} is out of range: the torrent has {len(meta.files)} file(s)",
            )
        target = meta.files[index]
        for path in self._paths_for(infohash, names, meta, target):
            found = self._open_checked(infohash, path, exact_size=target.length)
            if found is not None:
                return LookupResult(LookupStatus.HIT, found)
        return LookupResult(
            LookupStatus.MISS, detail=f"file={index} is not complete in the cache directory"
        )

    def _paths_for(
        self, infohash: str, names: dict[str, bool], meta: TorrentMeta, target: TorrentFile
    ) -> list[str]:
        paths: list[str] = []
        if not meta.multi_file:
            paths += [os.path.join(self.root, n) for n in sorted(names) if not names[n]]
            paths = [p for p in paths if not p.lower().endswith(".torrent")]
        for name in sorted(n for n in names if names[n]):
            for parts in locations_in_hash_dir(meta, target):
                paths.append(os.path.join(self.root, name, *parts))
        return paths

    def _open_plain(
        self, infohash: str, plain: list[str], meta: TorrentMeta | None
    ) -> CachedFile | None:
        if len(plain) == 1 and (meta is None or meta.multi_file):
            return self._open_checked(
                infohash, os.path.join(self.root, plain[0]), min_size=self._min_size
            )
        candidates = []
        for name in plain:
            path = os.path.join(self.root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                candidates.append(Candidate(path, st.st_size, name))
        chosen = pick_plain(candidates, meta, self._min_size)
        if chosen is None:
            return None
        if meta is not None and not meta.multi_file:
            return self._open_checked(infohash, chosen.path, exact_size=meta.files[0].length)
        return self._open_checked(infohash, chosen.path, min_size=self._min_size)

    def _open_dir_default(
        self, infohash: str, name: str, meta: TorrentMeta | None
    ) -> CachedFile | None:
        key = (infohash, None)
        cached = self._dir_choice.get(key) if self._names.watching else None
        if cached is not None:
            found = self._open_checked(infohash, cached, min_size=0 if meta else self._min_size)
            if found is not None:
                return found
            self._dir_choice.pop(key, None)
        directory = os.path.join(self.root, name)
        found = None
        if meta is not None:
            for file in default_torrent_files(meta, self._exts):
                for parts in locations_in_hash_dir(meta, file):
                    path = os.path.join(directory, *parts)
                    found = self._open_checked(infohash, path, exact_size=file.length)
                    if found is not None:
                        break
                if found is not None:
                    break
        else:
            best = largest(self._videos_under(directory))
            if best is not None:
                found = self._open_checked(infohash, best.path, min_size=self._min_size)
        if found is not None and self._names.watching:
            self._dir_choice[key] = found.path
        return found

    def _videos_under(self, directory: str) -> list[Candidate]:
        out: list[Candidate] = []
        seen = 0
        stack = [(directory, 0)]
        while stack:
            path, depth = stack.pop()
            try:
                with os.scandir(path) as it:
                    for entry in it:
                        seen += 1
                        if seen > MAX_DIR_ENTRIES or entry.name.startswith("."):
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            if depth < MAX_DIR_DEPTH:
                                stack.append((entry.path, depth + 1))
                        elif is_video(entry.name, self._exts):
                            try:
                                size = entry.stat().st_size
                            except OSError:
                                continue
                            rel = os.path.relpath(entry.path, directory)
                            out.append(Candidate(entry.path, size, rel))
            except OSError:
                continue
        return [c for c in out if c.size >= self._min_size]

    def _open_checked(
        self, infohash: str, path: str, *, min_size: int = 0, exact_size: int | None = None
    ) -> CachedFile | None:
        """Open `path` and keep it only if it is a regular file inside the cache root.

        While inotify watches the cache, the descriptor stays open for the next request
        (no path walk, no containment re-check: any change to the name forgets it). An
        `fstat` per request still catches a deleted file (no links left) at once.
        """
        shared = self._fds.get(path)
        if shared is not None:
            st = os.fstat(shared.fd)
            if st.st_nlink > 0:
                return self._checked(shared.fd, path, st, min_size, exact_size, shared.acquire)
            self._fds.retire(path)
        opened = open_inside(self._real_root, path)
        if opened is None:
            return None
        fd, st = opened
        if not self._names.watching or not stat.S_ISREG(st.st_mode):
            found = self._checked(fd, path, st, min_size, exact_size, lambda: partial(os.close, fd))
            if found is None:
                os.close(fd)
            return found
        shared = self._fds.add(infohash, path, fd)
        return self._checked(fd, path, st, min_size, exact_size, shared.acquire)

    @staticmethod
    def _checked(
        fd: int,
        path: str,
        st: os.stat_result,
        min_size: int,
        exact_size: int | None,
        acquire: Callable[[], Callable[[], None]],
    ) -> CachedFile | None:
        size = st.st_size
        if (
            not stat.S_ISREG(st.st_mode)
            or size < min_size
            or (exact_size is not None and size != exact_size)
        ):
            return None
        return CachedFile(fd, path, size, st.st_mtime_ns, content_type_for(path), acquire())
