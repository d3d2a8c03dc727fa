"""Resume data: asked of libtorrent, written to `<cache>/.incomplete/<infohash>.resume`.

libtorrent's own format (`write_resume_data_buf` / `read_resume_data`): it records which
pieces are verified, so a torrent re-added after a restart (or after it left the session
idle) continues where it stopped instead of downloading or re-hashing everything.
`ResumeSaver.save` asks each unfinished torrent for it and waits (bounded) for the
`save_resume_data_alert`s, which the engine passes to `on_alert`; files are written
through a temporary name and a rename.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

import libtorrent as lt

from streme.torrent.active import ActiveTorrent

log = logging.getLogger("streme.p2p")


def resume_path(incomplete_root: str, infohash: str) -> str:
    return os.path.join(incomplete_root, f"{infohash}.resume")


def read_resume(incomplete_root: str, infohash: str) -> lt.add_torrent_params | None:
    """The saved parameters of `infohash`, or None when there are none (or they are bad)."""
    path = resume_path(incomplete_root, infohash)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring resume data for %s: %s", infohash, exc)
        return None
    try:
        return lt.read_resume_data(data)
    except RuntimeError as exc:
        log.warning("ignoring resume data for %s: %s", infohash, exc)
        return None


def write_resume(incomplete_root: str, infohash: str, params: lt.add_torrent_params) -> None:
    """Write through a temporary name and rename, so a crash leaves the old file or the new."""
    data = lt.write_resume_data_buf(params)
    path = resume_path(incomplete_root, infohash)
    tmp = f"{path}.{time.time_ns()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def delete_resume(incomplete_root: str, infohash: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(resume_path(incomplete_root, infohash))


# Seconds a shutdown or departure waits for libtorrent's resume data.
SAVE_WAIT = 10.0


class ResumeSaver:
    def __init__(self, incomplete_root: str) -> None:
        self._root = incomplete_root
        self._waiting: dict[str, asyncio.Future[None]] = {}

    async def save(self, torrents: list[ActiveTorrent]) -> None:
        """Ask each unfinished torrent for resume data and write it (bounded wait)."""
        pending = [t for t in torrents if t.has_data_to_keep()]
        if not pending:
            return
        loop = asyncio.get_running_loop()
        waiting = {t.infohash: loop.create_future() for t in pending}
        self._waiting.update(waiting)
        flags = lt.torrent_handle.save_info_dict | lt.torrent_handle.flush_disk_cache
        for active in pending:
            active.handle.save_resume_data(flags)
        done, _ = await asyncio.wait(waiting.values(), timeout=SAVE_WAIT)
        log.info("saved resume data for %d of %d torrent(s)", len(done), len(pending))
        for infohash in waiting:
            self._waiting.pop(infohash, None)

    def expects(self, infohash: str) -> bool:
        return infohash in self._waiting

    def on_alert(self, infohash: str, params: lt.add_torrent_params) -> None:
        """libtorrent's `save_resume_data_alert`: write the file, wake `save`."""
        try:
            write_resume(self._root, infohash, params)
        except OSError as exc:
            log.warning("could not save resume data for %s: %s", infohash, exc)
        fut = self._waiting.get(infohash)
        if fut is not None and not fut.done():
            fut.set_result(None)
