"""What Stremio's routes answer, as data. Pure: no I/O (stremio.py gathers the facts).

`guess_file` is enginefs' `guessFileIdx`; `torrent_stats` its statistics object, with its
field names (`infoHash`, `downloadSpeed`, `streamProgress`, ...), filled from what streme
knows: the torrent's metadata, its snapshot in the session (None when it is not there)
and, for one file, the share of it on disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streme.cache.lookup import default_torrent_files, episode_file
from streme.cache.torrentmeta import TorrentMeta

if TYPE_CHECKING:  # not at run time: it would load libtorrent into a cache-only server
    from streme.torrent.snapshot import TorrentSnapshot


def guess_file(
    meta: TorrentMeta, video_extensions: list[str], season: int | None, episode: int | None
) -> int | None:
    """The file Stremio's `guessFileIdx` means: the episode when asked and found, else
    the default file (the largest video that is not a sample or extra)."""
    if episode is not None:
        found = episode_file(meta, video_extensions, season, episode)
        if found is not None:
            return found.index
    videos = default_torrent_files(meta, video_extensions)
    return videos[0].index if videos else None


def swarm_progress(snapshot: TorrentSnapshot | None, file: int) -> float | None:
    """The share of `file` downloaded, from the session (None: not wanted there)."""
    if snapshot is not None:
        for f in snapshot.files:
            if f.index == file:
                return round(f.done / f.size, 4) if f.size else 1.0
    return None


def torrent_stats(
    meta: TorrentMeta,
    snapshot: TorrentSnapshot | None,
    file: int | None = None,
    progress: float = 0.0,
) -> dict[str, Any]:
    """enginefs' statistics of a torrent, and of its file `file` (`progress`: its share
    on disk) when that is one of its files."""
    offsets, offset = [], 0
    for f in meta.files:
        offsets.append(offset)
        offset += f.length
    stats: dict[str, Any] = {
        "infoHash": meta.infohash,
        "name": meta.name,
        "files": [
            {
                "path": "/".join((meta.name, *f.path)) if f.path else meta.name,
                "name": f.path[-1] if f.path else meta.name,
                "length": f.length,
                "offset": offsets[i],
            }
            for i, f in enumerate(meta.files)
        ],
        "peers": snapshot.peers if snapshot else 0,
        "downloaded": snapshot.downloaded if snapshot else 0,
        "uploaded": snapshot.uploaded if snapshot else 0,
        "downloadSpeed": snapshot.download_rate if snapshot else 0,
        "uploadSpeed": snapshot.upload_rate if snapshot else 0,
    }
    if file is not None and file < len(meta.files):
        chosen = meta.files[file]
        stats["streamLen"] = chosen.length
        stats["streamName"] = chosen.path[-1] if chosen.path else meta.name
        stats["streamProgress"] = progress
    return stats
