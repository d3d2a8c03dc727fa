"""A full disk during a download: make room, and stop that download cleanly.

How this works: libtorrent reports a write that failed for lack of space as a
`file_error_alert` (ENOSPC) and puts the torrent in upload mode. `on_file_error` starts
one recovery per torrent: `make_room(need)` (the cache lets idle torrents go and sweeps
until the bytes the torrent still has to download fit) returns the bytes it freed; then
`give_up` fails the torrent whatever was freed: its responses end short, nothing of it
is published, its partial data goes, and the next request starts it afresh in the room
made. Resuming it in place was tried and measured on a full 24 MiB tmpfs: blocks whose
write had failed were counted as had, one run in eight served a piece read back wrong
from disk, and after a recheck three runs in eight stalled (decision 0004). Other file
errors are logged.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable

from streme.torrent.active import ActiveTorrent

log = logging.getLogger("streme.p2p")


class SpaceRecovery:
    def __init__(
        self,
        make_room: Callable[[int], Awaitable[int]] | None,
        is_current: Callable[[ActiveTorrent], bool],
        give_up: Callable[[ActiveTorrent, int], Awaitable[None]],
    ) -> None:
        self._make_room = make_room
        self._is_current = is_current
        self._give_up = give_up
        self._recovering: dict[str, asyncio.Task[None]] = {}

    def on_file_error(self, active: ActiveTorrent, error: int, message: str) -> None:
        if error != errno.ENOSPC:
            log.warning("libtorrent: %s", message)
            return
        if active.infohash in self._recovering:
            return
        log.warning("disk full while downloading %s: sweeping the cache", active.infohash)
        task = asyncio.get_running_loop().create_task(self._recover(active))
        self._recovering[active.infohash] = task
        task.add_done_callback(lambda _t: self._recovering.pop(active.infohash, None))

    async def _recover(self, active: ActiveTorrent) -> None:
        freed = 0
        if self._make_room is not None:
            status = active.handle.status()
            need = max(int(status.total_wanted) - int(status.total_wanted_done), 0)
            try:
                freed = await self._make_room(need)
            except Exception:
                log.exception("making room for %s failed", active.infohash)
        if self._is_current(active):
            await self._give_up(active, freed)

    def cancel(self) -> None:
        for task in self._recovering.values():
            task.cancel()
