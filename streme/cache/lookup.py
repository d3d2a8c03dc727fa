"""The rules that pick the file answering a request. Pure: the index gathers the facts.

For infohash H (see docs/cache-lookup.md):
1. No `file=`: the largest plain file directly in the cache directory whose name carries H,
   with a video extension and at least `min_size` bytes (ties: the smaller name); if the
   torrent's metadata is known and it has one file, the size must equal that file's.
   Otherwise, in the directories whose names carry H (by name): with metadata, the
   torrent's default video (`default_torrent_files`' first) if present at its full size,
   else nothing (a miss: no other file plays in its place); without, the
   largest video file of at least `min_size` under the directory (ties: the smaller path).
   Everywhere, a sample, trailer or extra (`choice.is_extra`) comes after every other
   video, whatever its size.
2. `file=N`: needs metadata; N past the last file is "file not found"; else the torrent's
   file N at its full size, in a hash directory, or (single-file torrents) a plain file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streme.cache.choice import is_extra, pick_episode, rank_videos
from streme.cache.mediatypes import extension
from streme.cache.torrentmeta import TorrentFile, TorrentMeta


@dataclass(frozen=True, slots=True)
class Candidate:
    path: str  # absolute path
    size: int
    rel: str  # path relative to the cache root, for tie-breaks


def is_video(name: str, video_extensions: Iterable[str]) -> bool:
    return extension(name) in video_extensions


def largest(candidates: Iterable[Candidate]) -> Candidate | None:
    """The largest candidate that is not a sample or extra (`choice.is_extra`), else the
    largest; ties go to the smallest relative path."""
    best: Candidate | None = None
    for cand in candidates:
        if best is None or _preference(cand) < _preference(best):
            best = cand
    return best


def _preference(cand: Candidate) -> tuple[bool, int, str]:
    return is_extra(cand.rel.split(os.sep)), -cand.size, cand.rel


def default_torrent_files(meta: TorrentMeta, video_extensions: Iterable[str]) -> list[TorrentFile]:
    """The torrent's video files in the default choice order: not samples or extras
    first (`choice.is_extra`), then the largest, then the lower index."""
    exts = tuple(video_extensions)
    videos = {f.index: f for f in meta.files if is_video(_file_name(meta, f), exts)}
    order = rank_videos((_inside(meta, f), f.length, f.index) for f in videos.values())
    return [videos[index] for index in order]


def episode_file(
    meta: TorrentMeta, video_extensions: Iterable[str], season: int | None, episode: int
) -> TorrentFile | None:
    """The video file that is `episode` of `season` (`choice.pick_episode`), or None."""
    exts = tuple(video_extensions)
    videos = [f for f in meta.files if is_video(_file_name(meta, f), exts)]
    index = pick_episode(((_inside(meta, f), f.length, f.index) for f in videos), season, episode)
    return None if index is None else meta.files[index]


def locations_in_hash_dir(meta: TorrentMeta, file: TorrentFile) -> list[tuple[str, ...]]:
    """Where torrent file `file` may sit inside a directory named with the hash.

    libtorrent lays a multi-file torrent out as <save_path>/<name>/<path>; people copying
    by hand often drop the top folder, so both are tried.
    """
    if not meta.multi_file:
        return [(meta.name,)]
    return [(meta.name, *file.path), file.path]


def pick_plain(
    candidates: Sequence[Candidate], meta: TorrentMeta | None, min_size: int
) -> Candidate | None:
    """Rule 1a over plain files that already passed the name and extension checks."""
    if meta is not None and not meta.multi_file:
        expected = meta.files[0].length
        return largest(c for c in candidates if c.size == expected)
    return largest(c for c in candidates if c.size >= min_size)


def _inside(meta: TorrentMeta, file: TorrentFile) -> tuple[str, ...]:
    """The file's path with the torrent's name: a "Sample" top folder counts too."""
    return (meta.name, *file.path) if meta.multi_file else (meta.name,)


def _file_name(meta: TorrentMeta, file: TorrentFile) -> str:
    return file.path[-1] if file.path else meta.name
