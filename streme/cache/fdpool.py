"""Descriptors of cached files kept open between requests, least recently used closed first.

How this works: responses never use a file's position (`sendfile` and `pread` take
offsets), so one descriptor serves every response reading the same file: a `SharedFd`
counts its holders, the pool holding one reference and each response one, and closes it
when the last lets go. The `DescriptorPool` maps a path to its `SharedFd` in use order:
`get` marks a path used, `add` keeps a new one and retires the least recently used one
when `capacity` are open (a title being played keeps its descriptor however many others
are asked for once). `forget(infohash)` retires every descriptor of a title whose names
changed; `retire(path)` one; `clear()` all. A retired descriptor closes once the
responses still reading it are done. The index keeps descriptors only while inotify
tells it of changes (`index.py`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable

MAX_SHARED_FDS = 1024


class SharedFd:
    """One open descriptor and its holders: the pool (until retired) and the responses."""

    __slots__ = ("fd", "refs", "retired")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.refs = 1
        self.retired = False

    def acquire(self) -> Callable[[], None]:
        """One more holder; returns what it calls once when it is done."""
        self.refs += 1
        return self.release

    def release(self) -> None:
        self.refs -= 1
        if self.refs == 0:
            os.close(self.fd)

    def retire(self) -> None:
        """The pool lets go (idempotent)."""
        if not self.retired:
            self.retired = True
            self.release()


class DescriptorPool:
    def __init__(self, capacity: int = MAX_SHARED_FDS) -> None:
        self.capacity = capacity
        self._by_path: OrderedDict[str, SharedFd] = OrderedDict()  # least recently used first
        self._paths_of: dict[str, set[str]] = {}  # infohash -> its paths in the pool
        self._infohash_of: dict[str, str] = {}  # path -> infohash

    def __len__(self) -> int:
        return len(self._by_path)

    def get(self, path: str) -> SharedFd | None:
        shared = self._by_path.get(path)
        if shared is not None:
            self._by_path.move_to_end(path)
        return shared

    def add(self, infohash: str, path: str, fd: int) -> SharedFd:
        """Keep `fd` (now owned by the pool) for `path` of `infohash`."""
        self.retire(path)
        while len(self._by_path) >= self.capacity:
            self.retire(next(iter(self._by_path)))
        shared = self._by_path[path] = SharedFd(fd)
        self._paths_of.setdefault(infohash, set()).add(path)
        self._infohash_of[path] = infohash
        return shared

    def retire(self, path: str) -> None:
        shared = self._by_path.pop(path, None)
        if shared is None:
            return
        shared.retire()
        infohash = self._infohash_of.pop(path)
        paths = self._paths_of[infohash]
        paths.discard(path)
        if not paths:
            del self._paths_of[infohash]

    def forget(self, infohash: str) -> None:
        for path in list(self._paths_of.get(infohash, ())):
            self.retire(path)

    def clear(self) -> None:
        for shared in self._by_path.values():
            shared.retire()
        self._by_path.clear()
        self._paths_of.clear()
        self._infohash_of.clear()
