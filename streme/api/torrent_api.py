"""`/api/torrents`, `/api/files/{infohash}` and `POST /api/prefetch`.

How this works: torrents are the engine's snapshot (one libtorrent `status()` each). A
file list comes from the cache's `.torrent` when there is one, else from the swarm
(metadata only: no file is wanted, nothing downloaded). A prefetch is answered 202 at
once: the engine adds the torrent and wants its files in a task, and
`GET /api/torrents/{infohash}` (the `Location`) shows it being added, downloading,
complete, failed (with the reason), or cached once it has left the session. Each
prefetch is also recorded in the usage records until it finishes or fails (the engine
says which, `on_prefetch_ended`), so a server started again carries on with the ones it
had (`resume_prefetches`), from their resume data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

from streme.api.cache_api import CacheAPI, infohash_param
from streme.api.parts import Parts
from streme.api.prefetch_input import BadPrefetch, Prefetch, parse_prefetch
from streme.api.views import files_of, pending_view, torrent_view
from streme.cache.index import LookupStatus
from streme.cache.publish import download_pending
from streme.cache.records import PrefetchRecord
from streme.http.messages import Request, Response, error_response, json_response
from streme.p2perrors import p2p_error_response
from streme.recent import remember
from streme.torrent.errors import P2PError

log = logging.getLogger("streme.api")


def status_url(infohash: str) -> str:
    return f"/api/torrents/{infohash}"


def write_torrent(root: str, infohash: str, data: bytes) -> None:
    """Keep an uploaded .torrent as `<root>/<infohash>.torrent` (atomically; an existing
    one stays)."""
    path = os.path.join(root, f"{infohash}.torrent")
    if os.path.exists(path):
        return
    temporary = os.path.join(root, f".{infohash}.torrent.{os.getpid()}.tmp")
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


# Failed prefetches remembered for their status URL (the oldest forgotten first).
REMEMBERED_FAILURES = 1000


class TorrentAPI:
    def __init__(self, parts: Parts, cache: CacheAPI) -> None:
        self.parts = parts
        self.cache = cache
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.failed: dict[str, str] = {}  # infohash -> why its last prefetch failed

    def _p2p_off(self) -> Response:
        return error_response(
            409, "p2p_disabled", "P2P is off on this server (p2p.enabled, STREME_P2P_ENABLED=1)"
        )

    def list(self, request: Request, params: dict[str, str]) -> Response:
        engine = self.parts.engine
        snapshots = engine.snapshot() if engine is not None else []
        return json_response(200, [torrent_view(s) for s in snapshots])

    async def get(self, request: Request, params: dict[str, str]) -> Response:
        infohash = infohash_param(params)
        if isinstance(infohash, Response):
            return infohash
        engine = self.parts.engine
        snapshot = engine.torrent_snapshot(infohash) if engine is not None else None
        failed = self.failed.get(infohash)
        if failed is None and engine is not None and infohash in engine.prefetch_errors:
            failed = str(engine.prefetch_errors[infohash])  # it failed after it was added
        if snapshot is not None:
            view = torrent_view(snapshot)
            view.error = failed
            return json_response(200, view)
        task = self._tasks.get(infohash)
        if task is not None and not task.done():
            return json_response(200, pending_view(infohash, "adding"))
        if failed is not None:
            return json_response(200, pending_view(infohash, "failed", failed))
        if await self._cached(infohash, None):
            view = pending_view(infohash, "cached")
            view.progress, view.prefetch = 1.0, False
            return json_response(200, view)
        return error_response(
            404, "not_in_session", f"{infohash} is neither in the session nor in the cache"
        )

    async def files(self, request: Request, params: dict[str, str]) -> Response:
        infohash = infohash_param(params)
        if isinstance(infohash, Response):
            return infohash
        meta = await self.cache.metadata(infohash)
        engine = self.parts.engine
        if meta is None and engine is not None:
            record = await self.cache.record(infohash)
            if record is not None:  # hand-placed without a .torrent: what the index serves
                return json_response(200, (await self.cache.describe(record)).files)
            try:
                meta = (await engine.torrent(infohash)).meta
            except P2PError as exc:
                return p2p_error_response(exc)
        if meta is None:
            record = await self.cache.record(infohash)
            if record is None:
                return error_response(
                    404, "not_cached", f"{infohash} is not in the cache and P2P is off"
                )
            return json_response(200, (await self.cache.describe(record)).files)
        return json_response(200, files_of(meta, self.parts.config.cache.video_extensions))

    async def _cached(self, infohash: str, file: int | None) -> bool:
        """The file (None: the default one) is served from the cache, nothing pending."""
        result = await self.parts.index.lookup_async(infohash, file)
        if result.file is not None:
            result.file.release()
        if result.status is not LookupStatus.HIT:
            return False
        root = self.parts.cache_root
        return file is not None or not await asyncio.to_thread(download_pending, root, infohash)

    async def prefetch(self, request: Request, params: dict[str, str]) -> Response:
        try:
            wanted = parse_prefetch(
                request.headers.get("content-type", ""), request.body, request.query
            )
        except BadPrefetch as exc:
            return error_response(400, "invalid_prefetch", str(exc))
        infohash = wanted.infohash
        if wanted.torrent:
            await asyncio.to_thread(write_torrent, self.parts.cache_root, infohash, wanted.torrent)
        if await self._cached(infohash, wanted.file):
            record = await self.cache.record(infohash)
            if record is not None:
                return json_response(200, await self.cache.describe(record))
        engine = self.parts.engine
        if engine is None:
            return self._p2p_off()
        allow = self.parts.config.p2p.allow_client_trackers
        trackers = wanted.trackers if allow else ()
        asked = PrefetchRecord(infohash, wanted.file, trackers, time.time())
        await self.parts.recorder.run(lambda store: store.add_prefetch(asked))
        self._start(wanted, trackers)
        body = {
            "infohash": infohash,
            "status_url": status_url(infohash),
            "client_trackers_ignored": len(wanted.trackers) - len(trackers),
        }
        return json_response(202, body, [(b"Location", status_url(infohash).encode())])

    def _start(self, wanted: Prefetch, trackers: tuple[str, ...]) -> None:
        task = self._tasks.get(wanted.infohash)
        if task is None or task.done():
            self.failed.pop(wanted.infohash, None)
            task = asyncio.get_running_loop().create_task(self._run(wanted, trackers))
            self._tasks[wanted.infohash] = task

    async def resume_prefetches(self) -> None:
        """Start again the prefetches recorded before a restart (those since finished in
        the cache are forgotten)."""
        for asked in await self.parts.recorder.run(lambda store: store.prefetches()):
            if await self._cached(asked.infohash, asked.file):
                await self._ended(asked.infohash)
                continue
            log.info("resuming the prefetch of %s (asked before the restart)", asked.infohash)
            self._start(Prefetch(asked.infohash, asked.file), asked.trackers)

    async def _ended(self, infohash: str) -> None:
        await self.parts.recorder.run(lambda store: store.end_prefetch(infohash))

    async def _run(self, wanted: Prefetch, trackers: tuple[str, ...]) -> None:
        engine = self.parts.engine
        assert engine is not None
        files = None if wanted.file is None else [wanted.file]
        exts = self.parts.config.cache.video_extensions
        try:
            await engine.prefetch(wanted.infohash, files, exts, trackers)
        except (P2PError, IndexError) as exc:
            log.warning("prefetch of %s failed: %s", wanted.infohash, exc)
            remember(self.failed, wanted.infohash, str(exc), REMEMBERED_FAILURES)
            await self._ended(wanted.infohash)  # the engine said so already for a P2PError
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("prefetch of %s failed", wanted.infohash)
            remember(self.failed, wanted.infohash, f"internal error: {exc}", REMEMBERED_FAILURES)
            await self._ended(wanted.infohash)
        finally:
            with contextlib.suppress(KeyError):
                if self._tasks[wanted.infohash] is asyncio.current_task():
                    del self._tasks[wanted.infohash]

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
