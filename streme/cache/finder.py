"""The filesystem side of a cache lookup: which file answers an infohash (and `file=N`),
opened and checked. Blocking, and it touches no shared state: it reads only what it is
given (the title's names, its metadata if already parsed, the last answer as a hint), so
the index runs it on a thread and applies the result on the event loop (index.py).

The choice among several matches follows `lookup.py`'s pure rules; the opened file must
lie inside the cache root (`safeopen.open_inside`).
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import stat
from dataclasses import dataclass
from typing import Final

from streme.cache.lookup import (
    Candidate,
    default_torrent_files,
    is_video,
    largest,
    locations_in_hash_dir,
    pick_plain,
)
from streme.cache.mediatypes import content_type_for
from streme.cache.names import MAX_DIR_DEPTH
from streme.cache.safeopen import open_inside
from streme.cache.torrentmeta import InvalidTorrent, TorrentFile, TorrentMeta, parse_torrent

log = logging.getLogger("streme.cache")

MAX_DIR_ENTRIES = 10_000
MAX_TORRENT_BYTES = 16 * 1024 * 1024


class LookupStatus(enum.Enum):
    HIT = "hit"
    MISS = "miss"
    FILE_NOT_FOUND = "file_not_found"
    NEEDS_METADATA = "needs_metadata"


def read_metadata(root: str, infohash: str, names: dict[str, bool]) -> TorrentMeta | None:
    """Parse the first valid `<infohash>.torrent` among `names` (blocking)."""
    for name in sorted(names):
        if names[name] or not name.lower().endswith(".torrent"):
            continue
        try:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read(MAX_TORRENT_BYTES)
            parsed = parse_torrent(data)
        except (OSError, InvalidTorrent) as exc:
            log.warning("ignoring %s: %s", name, exc)
            continue
        if parsed.infohash != infohash:
            log.warning("ignoring %s: it is the torrent of %s", name, parsed.infohash)
            continue
        return parsed
    return None


class Finder:
    """The filesystem side of a lookup: which file answers, opened and checked. Blocking;
    reads only what it was given, so any thread may run it."""

    def __init__(self, root: str, real_root: str, exts: tuple[str, ...], min_size: int) -> None:
        self.root = root
        self._real_root = real_root
        self._exts = exts
        self._min_size = min_size

    def find(
        self,
        infohash: str,
        file_index: int | None,
        names: dict[str, bool],
        known: TorrentMeta | Unread | None,
        hint: Answer | None,
    ) -> Found:
        if not names:
            return Found(LookupStatus.MISS)
        meta = read_metadata(self.root, infohash, names) if isinstance(known, Unread) else known
        if hint is not None:  # the file answered last time (its descriptor was closed since)
            opened = self._open_checked(hint)
            if opened is not None:
                return Found(LookupStatus.HIT, opened, meta=meta)
        if file_index is not None:
            return self._find_index(infohash, names, meta, file_index)
        plain = [n for n, is_dir in names.items() if not is_dir and is_video(n, self._exts)]
        opened = self._open_plain(plain, meta) if plain else None
        for name in sorted(n for n, is_dir in names.items() if is_dir):
            if opened is not None:
                break
            opened = self._open_dir_default(name, meta)
        if opened is not None:
            return Found(LookupStatus.HIT, opened, meta=meta)
        return Found(LookupStatus.MISS, meta=meta)

    def _find_index(
        self, infohash: str, names: dict[str, bool], meta: TorrentMeta | None, index: int
    ) -> Found:
        if meta is None:
            detail = (
                f"file={index} needs {infohash}.torrent in the cache directory to map "
                "file indices to files"
            )
            return Found(LookupStatus.NEEDS_METADATA, detail=detail, meta=meta)
        if index >= len(meta.files):
            detail = f"file={index} is out of range: the torrent has {len(meta.files)} file(s)"
            return Found(LookupStatus.FILE_NOT_FOUND, detail=detail, meta=meta)
        target = meta.files[index]
        for path in self._paths_for(names, meta, target):
            opened = self._open_checked(Answer(path, 0, target.length))
            if opened is not None:
                return Found(LookupStatus.HIT, opened, meta=meta)
        detail = f"file={index} is not complete in the cache directory"
        return Found(LookupStatus.MISS, detail=detail, meta=meta)

    def _paths_for(
        self, names: dict[str, bool], meta: TorrentMeta, target: TorrentFile
    ) -> list[str]:
        paths: list[str] = []
        if not meta.multi_file:
            paths += [os.path.join(self.root, n) for n in sorted(names) if not names[n]]
            paths = [p for p in paths if not p.lower().endswith(".torrent")]
        for name in sorted(n for n in names if names[n]):
            for parts in locations_in_hash_dir(meta, target):
                paths.append(os.path.join(self.root, name, *parts))
        return paths

    def _open_plain(self, plain: list[str], meta: TorrentMeta | None) -> Opened | None:
        if len(plain) == 1 and (meta is None or meta.multi_file):
            return self._open_checked(
                Answer(os.path.join(self.root, plain[0]), self._min_size, None)
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
            return self._open_checked(Answer(chosen.path, 0, meta.files[0].length))
        return self._open_checked(Answer(chosen.path, self._min_size, None))

    def _open_dir_default(self, name: str, meta: TorrentMeta | None) -> Opened | None:
        directory = os.path.join(self.root, name)
        if meta is not None:
            # The torrent's default video, or nothing: another of its files on disk (a
            # sample, another episode) is never played in its place.
            for file in default_torrent_files(meta, self._exts)[:1]:
                for parts in locations_in_hash_dir(meta, file):
                    path = os.path.join(directory, *parts)
                    opened = self._open_checked(Answer(path, 0, file.length))
                    if opened is not None:
                        return opened
            return None
        best = largest(self._videos_under(directory))
        if best is None:
            return None
        return self._open_checked(Answer(best.path, self._min_size, None))

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

    def _open_checked(self, answer: Answer) -> Opened | None:
        """Open the answer's file and keep it only if it is a regular file inside the
        cache root that passes the answer's size checks."""
        opened = open_inside(self._real_root, answer.path)
        if opened is None:
            return None
        fd, st = opened
        if not answer.accepts(st):
            os.close(fd)
            return None
        return Opened(fd, st, answer)


@dataclass(frozen=True)
class Answer:
    """How an (infohash, N) was answered: the file, and the checks it had to pass."""

    path: str
    min_size: int
    exact_size: int | None

    @functools.cached_property
    def content_type(self) -> str:
        return content_type_for(self.path)

    def accepts(self, st: os.stat_result) -> bool:
        size = st.st_size
        return (
            stat.S_ISREG(st.st_mode)
            and size >= self.min_size
            and (self.exact_size is None or size == self.exact_size)
        )


@dataclass(frozen=True, slots=True)
class Opened:
    fd: int
    st: os.stat_result
    answer: Answer


class Unread:
    """The metadata was not read yet (None means read, and there is none)."""


UNREAD: Final = Unread()


@dataclass(frozen=True, slots=True)
class Found:
    status: LookupStatus
    opened: Opened | None = None
    detail: str = ""
    meta: TorrentMeta | Unread | None = UNREAD
