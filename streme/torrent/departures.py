"""Torrents leaving the session, and waiting until libtorrent has let go of them.

How this works: `leave(active, why)` runs the departure as a task: an unfinished torrent
(a wanted file not yet published) first saves resume data, so the next request resumes
where it stopped; then libtorrent is asked to remove it, and the task waits for its
`torrent_removed_alert` (`removed(infohash)`); a finished torrent's download directory
is then deleted (the cache keeps its hard links to the files). `remove(active)` alone is
the removal without the rest (a failed torrent). Until both are over, `settled(infohash)`
keeps a new request from adding the torrent again: libtorrent refuses a duplicate while
a removal is in flight, and a reader must never get a removed handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from streme.torrent.active import ActiveTorrent
from streme.torrent.session import TorrentSession

log = logging.getLogger("streme.p2p")

# How long a removal may take before a re-add of the same torrent goes ahead anyway.
REMOVAL_WAIT = 10.0


class Departures:
    def __init__(
        self,
        session: TorrentSession,
        save_resume: Callable[[list[ActiveTorrent]], Awaitable[None]],
        delete_download: Callable[[str], None],
    ) -> None:
        self._session = session
        self._save_resume = save_resume
        self._delete_download = delete_download
        self._leaving: dict[str, asyncio.Task[None]] = {}
        self._removing: dict[str, asyncio.Future[None]] = {}

    def busy(self) -> set[str]:
        """Torrents on their way out (their data is still libtorrent's)."""
        return set(self._leaving) | set(self._removing)

    def leave(self, active: ActiveTorrent, why: str) -> asyncio.Task[None]:
        """Start the departure of a torrent the engine has already forgotten."""
        infohash = active.infohash
        task = asyncio.get_running_loop().create_task(self._leave(active, why))
        self._leaving[infohash] = task
        task.add_done_callback(lambda _t: self._leaving.pop(infohash, None))
        return task

    async def _leave(self, active: ActiveTorrent, why: str) -> None:
        infohash = active.infohash
        unfinished = active.has_data_to_keep()
        if unfinished:
            await self._save_resume([active])
        await self._wait(self.remove(active))
        self._removing.pop(infohash, None)
        if unfinished:
            log.info("%s left the session (%s); resume data saved", infohash, why)
            return
        await asyncio.to_thread(self._delete_download, infohash)
        log.info("%s left the session (%s)", infohash, why)

    def remove(self, active: ActiveTorrent) -> asyncio.Future[None]:
        """Ask libtorrent to remove the torrent; the future is done at its alert."""
        removing = asyncio.get_running_loop().create_future()
        self._removing[active.infohash] = removing
        self._session.remove(active.handle)
        return removing

    def removed(self, infohash: str) -> None:
        """libtorrent's `torrent_removed_alert` for `infohash`."""
        removing = self._removing.get(infohash)
        if removing is not None and not removing.done():
            removing.set_result(None)

    async def removal_done(self, infohash: str) -> None:
        removing = self._removing.get(infohash)
        if removing is not None:
            await self._wait(removing)
            self._removing.pop(infohash, None)

    async def settled(self, infohash: str) -> None:
        """Wait until `infohash` is neither leaving nor being removed."""
        while True:
            leaving = self._leaving.get(infohash)
            if leaving is not None:
                await asyncio.shield(leaving)
            elif infohash in self._removing:
                await self.removal_done(infohash)
            else:
                return

    async def wait_all(self) -> None:
        if self._leaving:
            await asyncio.wait(list(self._leaving.values()), timeout=2 * REMOVAL_WAIT)

    @staticmethod
    async def _wait(removing: asyncio.Future[None]) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(removing), REMOVAL_WAIT)
