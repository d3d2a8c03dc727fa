"""What each title occupies in the cache directory, and removing a title. Does the I/O.

How this works:
- A title is one torrent, keyed by its lower-hex v1 infohash. Its bytes may be in entries
  directly in the cache root whose names carry the hash (`infohashes_in_name`; hidden names
  never count): a hand-placed file, a published directory, `<ih>.torrent`; and in
  libtorrent's `.incomplete/<ih>/` and `.incomplete/<ih>.resume`. A name carrying two
  hashes belongs to both titles.
- `scan_titles` lstats every file and directory under those paths (never following a
  symlink, at most `MAX_DEPTH` levels deep, skipping whatever vanishes meanwhile) and adds
  up allocated bytes (`st_blocks * 512`), each inode once per title: a published file is a
  hard link to its copy in `.incomplete/<ih>/`, so `du` would count it once too.
- `.streme/` is streme's own state, never a title. `.streme/downloaded/<ih>`, an empty
  marker, records that streme downloaded the title itself (rather than the operator
  placing it); it is reported, not counted.
- `remove_title` only unlinks (`shutil.rmtree` for directories, which does not follow
  symlinks): a response still reading from an open descriptor keeps the original bytes.
  Before anything is deleted, each path must be one of the title's own locations (a
  non-hidden name carrying its hash, or `.incomplete/<ih>[.resume]`) under one cache root,
  the `root` argument when given: a mixed-up `TitleOnDisk` is refused, not obeyed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from dataclasses import dataclass

from streme.cache.infohash import infohashes_in_name

MAX_DEPTH = 16
INCOMPLETE = ".incomplete"
STATE = ".streme"
_INFOHASH = re.compile(r"[0-9a-f]{40}")
_RESUME = ".resume"


@dataclass(frozen=True, slots=True)
class TitleOnDisk:
    infohash: str
    name: str  # the published dir's single top entry, or the hand-placed file's name, or ""
    paths: tuple[str, ...]  # absolute: root entries, .incomplete/<ih>, .incomplete/<ih>.resume
    bytes: int  # allocated bytes of every file and directory under `paths`, each inode once
    published: bool  # an entry in the root other than the .torrent
    incomplete: bool  # .incomplete/<ih> or .incomplete/<ih>.resume exists
    downloaded_marker: bool  # .streme/downloaded/<ih> exists
    last_modified: float  # newest mtime under `paths`


def _check_infohash(infohash: str) -> None:
    if not _INFOHASH.fullmatch(infohash):
        raise ValueError(f"not a lower-case hex v1 infohash: {infohash!r}")


def _marker(root: str, infohash: str) -> str:
    return os.path.join(root, STATE, "downloaded", infohash)


def _is_metadata(name: str) -> bool:
    return name.lower().endswith(".torrent")


def _walk(path: str, seen: set[tuple[int, int]], depth: int = 0) -> tuple[int, float]:
    """(allocated bytes not yet in `seen`, newest mtime) of `path` and all it holds.

    What vanishes meanwhile, or cannot be listed, is left out.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0, 0.0
    key = (st.st_dev, st.st_ino)
    allocated = 0 if key in seen else st.st_blocks * 512
    seen.add(key)
    newest = st.st_mtime
    if not stat.S_ISDIR(st.st_mode) or depth >= MAX_DEPTH:
        return allocated, newest
    try:
        with os.scandir(path) as entries:
            children = [entry.path for entry in entries]
    except OSError:
        return allocated, newest
    for child in children:
        more, mtime = _walk(child, seen, depth + 1)
        allocated += more
        newest = max(newest, mtime)
    return allocated, newest


def _top_entries(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.name for e in entries if not e.name.startswith("."))
    except OSError:
        return []


def _display_name(root_entries: list[tuple[str, bool]]) -> str:
    """The published directory's single top entry, else the first hand-placed file, else ""."""
    for path, is_dir in root_entries:
        if is_dir:
            top = _top_entries(path)
            if len(top) == 1:
                return top[0]
    for path, is_dir in root_entries:
        if not is_dir and not _is_metadata(path):
            return os.path.basename(path)
    return ""


def _scan_incomplete(path: str) -> dict[str, list[str]]:
    """`.incomplete/<ih>` and `.incomplete/<ih>.resume` by infohash (not through a symlink)."""
    found: dict[str, list[str]] = {}
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return found
        with os.scandir(path) as entries:
            for entry in entries:
                infohash = entry.name.removesuffix(_RESUME)
                if _INFOHASH.fullmatch(infohash):
                    found.setdefault(infohash, []).append(entry.path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return found


def scan_titles(root: str) -> dict[str, TitleOnDisk]:
    """Every title with something on disk under `root`, by infohash."""
    root = os.path.abspath(root)
    in_root: dict[str, list[tuple[str, bool]]] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            hashes = infohashes_in_name(entry.name)
            if not hashes:
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except FileNotFoundError:
                continue
            for infohash in hashes:
                in_root.setdefault(infohash, []).append((entry.path, is_dir))
    in_incomplete = _scan_incomplete(os.path.join(root, INCOMPLETE))
    titles: dict[str, TitleOnDisk] = {}
    for infohash in sorted(in_root.keys() | in_incomplete.keys()):
        root_entries = sorted(in_root.get(infohash, []))
        paths = tuple(p for p, _ in root_entries) + tuple(sorted(in_incomplete.get(infohash, [])))
        seen: set[tuple[int, int]] = set()
        allocated, newest = 0, 0.0
        for path in paths:
            more, mtime = _walk(path, seen)
            allocated, newest = allocated + more, max(newest, mtime)
        titles[infohash] = TitleOnDisk(
            infohash=infohash,
            name=_display_name(root_entries),
            paths=paths,
            bytes=allocated,
            published=any(not _is_metadata(p) for p, _ in root_entries),
            incomplete=infohash in in_incomplete,
            downloaded_marker=os.path.lexists(_marker(root, infohash)),
            last_modified=newest,
        )
    return titles


def filesystem_space(root: str) -> tuple[int, int]:
    """(total bytes, bytes available to an unprivileged writer) of the filesystem of `root`."""
    st = os.statvfs(root)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def _root_of(path: str, infohash: str) -> str:
    """The cache root `path` belongs to as one of the title's locations; ValueError if none."""
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise ValueError(f"not an absolute, normalised path: {path!r}")
    parent, name = os.path.split(path)
    if os.path.basename(parent) == INCOMPLETE and name in (infohash, infohash + _RESUME):
        root = os.path.dirname(parent)
        # `.incomplete` must be the root's own directory, not a symlink leading elsewhere.
        if os.path.realpath(parent) != os.path.join(os.path.realpath(root), INCOMPLETE):
            raise ValueError(f"{parent!r} is not a directory of the cache root {root!r}")
    elif not name.startswith(".") and infohash in infohashes_in_name(name):
        root = parent
    else:
        raise ValueError(f"{path!r} is not a location of title {infohash}")
    # A root inside `.incomplete` or `.streme` means a path from the wrong place.
    if {INCOMPLETE, STATE} & {os.path.basename(root), os.path.basename(os.path.dirname(root))}:
        raise ValueError(f"{path!r} is not a location of title {infohash}")
    return root


def remove_title(title: TitleOnDisk, root: str | None = None) -> None:
    """Unlink everything of `title` and its downloaded marker; never rewrites a file.

    Every path must be one of the title's locations under one cache root (`root`, when
    given); otherwise ValueError, and nothing is deleted.
    """
    _check_infohash(title.infohash)
    roots = {os.path.realpath(_root_of(path, title.infohash)) for path in title.paths}
    if root is not None:
        roots.add(os.path.realpath(root))
    if len(roots) > 1:
        raise ValueError(f"title {title.infohash} is not inside one cache directory: {roots}")
    for path in title.paths:
        _remove(path)
    for cache_root in roots:
        unmark_downloaded(cache_root, title.infohash)


def _remove(path: str) -> None:
    """Unlink `path`; a directory with its tree, whatever vanishes meanwhile."""
    for _ in range(MAX_DEPTH):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        try:
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)  # does not follow symlinks
            else:
                os.unlink(path)
        except FileNotFoundError:  # something inside vanished meanwhile: try again
            continue
        return


def mark_downloaded(root: str, infohash: str) -> None:
    """Record that streme downloaded `infohash` itself (an empty marker file)."""
    _check_infohash(infohash)
    path = _marker(root, infohash)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def unmark_downloaded(root: str, infohash: str) -> None:
    _check_infohash(infohash)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_marker(root, infohash))
