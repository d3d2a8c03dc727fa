"""The cache index: infohash -> the cache-directory entries carrying it, kept fresh by inotify.

How this works:
- `start()` scans the cache directory once and records, for every infohash found in an
  entry name (`infohashes_in_name`), the names carrying it and whether each is a
  directory. Names starting with `.` are skipped (in-progress copies live there).
- An inotify watch on the directory updates that map incrementally (create, delete,
  rename); directories carrying a hash are watched recursively, and any change under
  one forgets the cached choice of file inside it. A queue overflow rescans. Without
  inotify (or without a loop), each lookup compares the directory's mtime with the last
  scan's and rescans when it moved; nothing is cached then.
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

from streme.cache import inotify
from streme.cache.fdpool import DescriptorPool
from streme.cache.infohash import infohashes_in_name
from streme.cache.lookup import (
    Candidate,
    default_torrent_files,
    is_video,
    largest,
    locations_in_hash_dir,
    pick_plain,
)
from streme.cache.mediatypes import content_type_for
from streme.cache.safeopen import open_inside
from streme.cache.torrentmeta import InvalidTorrent, TorrentFile, TorrentMeta, parse_torrent

log = logging.getLogger("streme.cache")

MAX_DIR_DEPTH = 8
MAX_DIR_ENTRIES = 10_000
ROOT_MASK = (
    inotify.IN_CREATE
    | inotify.IN_DELETE
    | inotify.IN_MOVED_FROM
    | inotify.IN_MOVED_TO
    | inotify.IN_CLOSE_WRITE
    | inotify.IN_ATTRIB
    | inotify.IN_DELETE_SELF
    | inotify.IN_MOVE_SELF
    | inotify.IN_ONLYDIR
)
TREE_MASK = (
    inotify.IN_CREATE
    | inotify.IN_DELETE
    | inotify.IN_MOVED_FROM
    | inotify.IN_MOVED_TO
    | inotify.IN_CLOSE_WRITE
    | inotify.IN_ONLYDIR
)


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
        self._entries: dict[str, dict[str, bool]] = {}  # hash -> {name: is_dir}
        self._meta: dict[str, TorrentMeta | None] = {}  # parsed <hash>.torrent, by hash
        self._dir_choice: dict[tuple[str, int | None], str] = {}  # (hash, N) -> path
        self._root_mtime = -1
        self._watcher: inotify.Inotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._root_wd = -1
        self._tree_wds: dict[int, tuple[str, str]] = {}  # wd -> (hash, directory path)
        # Open descriptors kept between requests, only while inotify tells us of changes.
        self._fds = DescriptorPool()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        os.makedirs(self.root, exist_ok=True)
        self._real_root = os.path.realpath(self.root)
        if loop is not None:
            try:
                self._watcher = inotify.Inotify()
                self._root_wd = self._watcher.add_watch(self.root, ROOT_MASK)
            except OSError as exc:
                log.warning(
                    "inotify unavailable (%s): checking the cache directory per request", exc
                )
                self._close_watcher()
            else:
                self._loop = loop
                loop.add_reader(self._watcher.fd, self._on_inotify)
        self.rescan()
        log.info("cache index: %d infohash(es) in %s", len(self._entries), self.root)

    def close(self) -> None:
        if self._loop is not None and self._watcher is not None:
            self._loop.remove_reader(self._watcher.fd)
        self._loop = None
        self._close_watcher()

    def _close_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        self._watcher = None
        self._tree_wds.clear()
        self._fds.clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def watching(self) -> bool:
        return self._watcher is not None

    # -- scanning ------------------------------------------------------------------------
    def rescan(self) -> None:
        entries: dict[str, dict[str, bool]] = {}
        try:
            self._root_mtime = os.stat(self.root).st_mtime_ns
            with os.scandir(self.root) as it:
                for entry in it:
                    name = entry.name
                    if name.startswith("."):
                        continue
                    hashes = infohashes_in_name(name)
                    if not hashes:
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                    for h in hashes:
                        entries.setdefault(h, {})[name] = is_dir
        except OSError as exc:
            log.error("cannot scan the cache directory %s: %s", self.root, exc)
        self._entries = entries
        self._meta.clear()
        self._dir_choice.clear()
        self._fds.clear()
        if self._watcher is not None:
            for wd in list(self._tree_wds):
                self._watcher.remove_watch(wd)
            self._tree_wds.clear()
            for h, names in entries.items():
                for name, is_dir in names.items():
                    if is_dir:
                        self._watch_tree(h, os.path.join(self.root, name), 0)

    def _watch_tree(self, infohash: str, path: str, depth: int) -> None:
        assert self._watcher is not None
        try:
            wd = self._watcher.add_watch(path, TREE_MASK)
        except OSError as exc:
            log.warning("cannot watch %s (%s); its changes are seen on restart", path, exc)
            return
        self._tree_wds[wd] = (infohash, path)
        if depth >= MAX_DIR_DEPTH:
            return
        try:
            with os.scandir(path) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        self._watch_tree(infohash, entry.path, depth + 1)
        except OSError:
            pass

    def _on_inotify(self) -> None:
        assert self._watcher is not None
        for event in self._watcher.read_events():
            if event.mask & inotify.IN_Q_OVERFLOW:
                log.warning("inotify queue overflowed: rescanning %s", self.root)
                self.rescan()
                return
            if event.wd == self._root_wd:
                self._on_root_event(event)
            elif event.wd in self._tree_wds:
                self._on_tree_event(event)

    def _on_root_event(self, event: inotify.Event) -> None:
        if event.mask & (inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_IGNORED):
            log.error("the cache directory %s was removed or moved; re-creating it", self.root)
            self._close_watcher_and_fall_back()
            return
        name = event.name
        if not name or name.startswith("."):
            return
        hashes = infohashes_in_name(name)
        for h in hashes:
            self._forget_choices(h)
            names = self._entries.get(h)
            if event.mask & (inotify.IN_DELETE | inotify.IN_MOVED_FROM):
                if names is not None:
                    names.pop(name, None)
                    if not names:
                        del self._entries[h]
            elif event.mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO):
                is_dir = bool(event.mask & inotify.IN_ISDIR)
                self._entries.setdefault(h, {})[name] = is_dir
                if is_dir:
                    self._watch_tree(h, os.path.join(self.root, name), 0)

    def _on_tree_event(self, event: inotify.Event) -> None:
        infohash, path = self._tree_wds[event.wd]
        if event.mask & inotify.IN_IGNORED:
            del self._tree_wds[event.wd]
        self._forget_choices(infohash)
        if event.mask & inotify.IN_ISDIR and event.mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO):
            self._watch_tree(infohash, os.path.join(path, event.name), 1)

    def _close_watcher_and_fall_back(self) -> None:
        if self._loop is not None and self._watcher is not None:
            self._loop.remove_reader(self._watcher.fd)
        self._loop = None
        self._close_watcher()
        self._root_mtime = -1  # the next lookup rescans

    def _forget_choices(self, infohash: str) -> None:
        self._fds.forget(infohash)
        self._meta.pop(infohash, None)
        for key in [k for k in self._dir_choice if k[0] == infohash]:
            del self._dir_choice[key]

    def _refresh_without_watcher(self) -> None:
        try:
            mtime = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            os.makedirs(self.root, exist_ok=True)
            mtime = -2
        if mtime != self._root_mtime:
            self.rescan()

    # -- lookups -------------------------------------------------------------------------
    def lookup(self, infohash: str, file_index: int | None = None) -> LookupResult:
        """Find, open and check the file answering `infohash` (and `file_index`)."""
        if self._watcher is None:
            self._refresh_without_watcher()
        names = self._entries.get(infohash)
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
        if self._watcher is not None and infohash in self._meta:
            return self._meta[infohash]
        meta: TorrentMeta | None = None
        names = self._entries.get(infohash, {})
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
        cached = self._dir_choice.get(key) if self._watcher is not None else None
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
        if found is not None and self._watcher is not None:
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
        if self._watcher is None or not stat.S_ISREG(st.st_mode):
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
