"""A read-only view of one torrent in the session, for tests and the API."""

from __future__ import annotations

from dataclasses import dataclass

from streme.torrent.active import ActiveTorrent
from streme.torrent.buffer import BufferStats


@dataclass(frozen=True, slots=True)
class TorrentSnapshot:
    """One torrent in the session, as the engine sees it now."""

    infohash: str
    name: str
    state: str  # "metadata", "downloading", "complete" (every wanted file published)
    readers: int
    wanted_files: tuple[int, ...]
    published_files: tuple[int, ...]
    progress: float  # of the wanted files, 0..1 (0 before any file is wanted)
    total_done: int  # verified bytes on disk, all files
    downloaded: int  # payload bytes downloaded since the torrent was added
    uploaded: int
    download_rate: int
    upload_rate: int
    peers: int
    pending_deadlines: int
    reader_stats: tuple[BufferStats, ...]
    prefetch: bool = False  # downloading with no reader (a prefetch)
    active_seconds: float = 0.0  # since it joined the session
    files: tuple[FileProgress, ...] = ()  # the wanted files


@dataclass(frozen=True, slots=True)
class FileProgress:
    index: int
    path: str  # inside the torrent, '/'-separated
    size: int
    done: int  # verified bytes on disk


def describe(active: ActiveTorrent, now: float = 0.0) -> TorrentSnapshot:
    """`now`: the loop's time, for `active_seconds`."""
    status = active.handle.status()
    meta = active.meta
    files: tuple[FileProgress, ...] = ()
    if meta is None:
        state, progress = "metadata", 0.0
    else:
        wanted = [meta.files[i] for i in sorted(active.wanted_files)]
        total = sum(f.length for f in wanted)
        done = 0
        if wanted:
            file_progress = active.handle.file_progress()
            done = sum(file_progress[f.raw_index] for f in wanted)
            files = tuple(
                FileProgress(
                    f.index, "/".join(f.path) or meta.name, f.length, file_progress[f.raw_index]
                )
                for f in wanted
            )
        progress = done / total if total else 0.0
        complete = bool(wanted) and not active.wanted_files - active.published
        state = "complete" if complete else "downloading"
    return TorrentSnapshot(
        infohash=active.infohash,
        name=meta.name if meta is not None else "",
        state=state,
        readers=active.active_readers,
        wanted_files=tuple(sorted(active.wanted_files)),
        published_files=tuple(sorted(active.published)),
        progress=progress,
        total_done=int(status.total_done),
        downloaded=int(status.total_payload_download),
        uploaded=int(status.total_payload_upload),
        download_rate=int(status.download_payload_rate),
        upload_rate=int(status.upload_payload_rate),
        peers=int(status.num_peers),
        pending_deadlines=active.pending_deadlines,
        reader_stats=tuple(active.reader_stats),
        prefetch=active.prefetch,
        active_seconds=max(0.0, now - active.added_at) if now else 0.0,
        files=files,
    )
