"""The cache directory's names: infohash -> the entries carrying it, kept fresh by inotify.

How this works: `start()` scans the cache directory once and records, for every
infohash found in an entry name (`infohashes_in_name`), the names carrying it and
whether each is a directory. Names starting with `.` are skipped (in-progress copies
live there). An inotify watch on the directory updates that map incrementally (create,
delete, rename); directories carrying a hash are watched recursively. Each change is
reported to `on_change(infohash)` (the index forgets what it cached for that title);
a rescan (at start, on a queue overflow) or the end of watching is reported to
`on_reset()`. Without inotify (or without a loop), `refresh()` compares the
directory's mtime with the last scan's and rescans when it moved.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from streme.cache import inotify
from streme.cache.infohash import infohashes_in_name

log = logging.getLogger("streme.cache")

MAX_DIR_DEPTH = 8
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


class CacheNames:
    def __init__(
        self, root: str, on_change: Callable[[str], None], on_reset: Callable[[], None]
    ) -> None:
        self.root = root
        self._on_change = on_change
        self._on_reset = on_reset
        self._entries: dict[str, dict[str, bool]] = {}  # hash -> {name: is_dir}
        self._root_mtime = -1
        self._watcher: inotify.Inotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._root_wd = -1
        self._tree_wds: dict[int, tuple[str, str]] = {}  # wd -> (hash, directory path)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
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
        self._on_reset()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def watching(self) -> bool:
        return self._watcher is not None

    def get(self, infohash: str) -> dict[str, bool] | None:
        """{name: is_dir} of the root entries carrying `infohash`, or None."""
        return self._entries.get(infohash)

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
        self._on_reset()
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
            self._on_change(h)
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
        self._on_change(infohash)
        if event.mask & inotify.IN_ISDIR and event.mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO):
            self._watch_tree(infohash, os.path.join(path, event.name), 1)

    def _close_watcher_and_fall_back(self) -> None:
        if self._loop is not None and self._watcher is not None:
            self._loop.remove_reader(self._watcher.fd)
        self._loop = None
        self._close_watcher()
        self._root_mtime = -1  # the next lookup rescans

    def refresh(self) -> None:
        """Without a watcher: rescan if the directory changed since the last scan."""
        try:
            mtime = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            os.makedirs(self.root, exist_ok=True)
            mtime = -2
        if mtime != self._root_mtime:
            self.rescan()
