"""The application: wire config, cache index, usage records, cache sweep, P2P engine,
routes and HTTP server; run until a signal. The engine tells the app when a download is
published (recorded, and a capped cache swept) and asks it for room on a full disk; the
sweep asks which titles are in use (served from the cache, or held by the engine)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
import uvloop

from streme import __version__
from streme.api.parts import Parts
from streme.api.routes import UPLOAD_PATH, OperatorAPI
from streme.cache.index import CacheIndex
from streme.cache.records import Origin, RecordStore, UsageRecorder
from streme.cache.sweep import CacheSweeper
from streme.config import Config
from streme.descriptors import raise_limit
from streme.dlna import DlnaError
from streme.handlers import StreamHandlers
from streme.handoff import REPORT_INTERVAL, HandoffReceiver, HandoffSender
from streme.http.server import HTTPServer
from streme.memory import return_large_blocks
from streme.routes import all_routes
from streme.stats import StatsSnapshot
from streme.workers import Workers, worker_count

if TYPE_CHECKING:
    from streme.dlna.server import MediaServer
    from streme.torrent.engine import Engine

log = logging.getLogger("streme")

# A worker's counters, as it reports them every second (--workers).
REPORT_DECODER = msgspec.json.Decoder(StatsSnapshot)


class App:
    """Everything one server process runs; `start()` then `stop()` (tests use this too).

    With `http.workers` > 1 this is the first process: it also starts the workers
    (workers.py) and takes the connections they hand over. In a worker (`handoff` given)
    there is no swarm and no sweep: misses go to the first process."""

    def __init__(
        self, config: Config, *, worker: int | None = None, handoff: HandoffSender | None = None
    ) -> None:
        self.config = config
        self.worker_count = 1 if handoff is not None else worker_count(config.http.workers)
        self.workers: Workers | None = None
        self._handoff = handoff
        self.index = CacheIndex(
            config.cache.dir,
            video_extensions=config.cache.video_extensions,
            min_size=config.cache.min_size,
        )
        self.cache_root = os.path.abspath(config.cache.dir)
        self.recorder = UsageRecorder(RecordStore(self.cache_root))
        self.engine: Engine | None = None
        on_miss = None
        if config.p2p.enabled and handoff is None:
            # Imported only when used: libtorrent adds ~10 MiB to a cache-only server.
            from streme.p2phandler import stream_from_swarm
            from streme.torrent.engine import Engine

            self.engine = Engine(
                config.p2p,
                self.cache_root,
                on_published=self._published,
                make_room=self._make_room,
                on_prefetch_ended=self._prefetch_ended,
            )
            exts = config.cache.video_extensions
            on_miss = partial(stream_from_swarm, self.engine, config.p2p, exts)
        if worker is None and self.worker_count > 1:
            worker = 0
        self.handlers = StreamHandlers(
            self.index,
            on_miss,
            self.recorder,
            hand_off_misses=handoff is not None and config.p2p.enabled,
            worker=worker,
            stream_token=config.http.stream_token,
            cors_origin=config.api.cors_origin,
            video_extensions=config.cache.video_extensions,
        )
        self.sweeper = CacheSweeper(
            self.cache_root,
            config.cache,
            self.recorder,
            in_use=self._in_use,
            release_idle=self.engine.release_idle if self.engine is not None else None,
        )
        self._receiver: HandoffReceiver | None = None
        self.api: OperatorAPI | None = None
        if handoff is None:  # a worker hands every API request to the first process
            parts = Parts(
                config,
                self.index,
                self.recorder,
                self.sweeper,
                self.handlers,
                self.engine,
                started=time.time(),
                processes=self.worker_count,
                worker_stats=self._worker_stats,
            )
            self.api = OperatorAPI(parts)
        router = all_routes(
            config,
            self.handlers,
            self.api,
            self.engine,
            in_worker=handoff is not None,
        )
        self.server = HTTPServer(
            config.http,
            router,
            reuse_port=self.worker_count > 1 or handoff is not None,
            handoff=handoff,
            uploads={UPLOAD_PATH: config.api.max_torrent_bytes},
        )
        self._background: set[asyncio.Task[object]] = set()
        # The DLNA/UPnP media server (`dlna.enabled`; the first process only).
        self.dlna: MediaServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.index.start(loop)
        try:
            os.makedirs(self.cache_root, exist_ok=True)
            await self.recorder.start()
            if self.engine is not None:
                self.engine.start(loop)
            if self._handoff is None:  # a worker leaves the sweep to the first process
                self.sweeper.start()
            await self.server.start()
            if self.worker_count > 1:
                await self._start_workers(loop)
            if self._handoff is not None:
                self._spawn(self._report_stats(self._handoff))
            if self.api is not None and self.engine is not None:
                self._spawn(self.api.torrents.resume_prefetches())
            if self.config.dlna.enabled and self.api is not None:
                # Imported only when enabled: the library is an optional extra.
                from streme.dlna import start_media_server

                self.dlna = await start_media_server(self.config, self.api.cache, self.server.port)
        except BaseException:
            await self._stop_parts()
            raise

    async def _start_workers(self, loop: asyncio.AbstractEventLoop) -> None:
        # The workers bind the port this process got (`--port 0` included).
        http = msgspec.structs.replace(self.config.http, port=self.server.port, workers=1)
        config = msgspec.structs.replace(self.config, http=http)
        self._receiver = HandoffReceiver(loop, self.server.adopt)
        self.workers = Workers(config, self.worker_count, self._receiver)
        await self.workers.start()

    def _worker_stats(self) -> list[StatsSnapshot]:
        """The workers' latest counters (each reports every second)."""
        if self._receiver is None:
            return []
        return [REPORT_DECODER.decode(report) for report in self._receiver.reports.values()]

    async def _report_stats(self, handoff: HandoffSender) -> None:
        encoder = msgspec.json.Encoder()
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            handoff.report(encoder.encode(self.handlers.stats.snapshot()))

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        if self.workers is not None:
            await asyncio.gather(
                self.server.shutdown(), self.workers.stop(self.config.http.shutdown_timeout)
            )
        else:
            await self.server.shutdown()
        await self._stop_parts()

    async def _stop_parts(self) -> None:
        if self.dlna is not None:  # first: TVs hear its byebye before the rest stops
            dlna, self.dlna = self.dlna, None
            await dlna.stop()
        if self.workers is not None:
            await self.workers.stop(0)
        if self.api is not None:
            await self.api.stop()
        await self.sweeper.stop()
        for task in list(self._background):
            task.cancel()
        if self.engine is not None:
            await self.engine.stop()
        await self.recorder.stop()
        self.index.close()

    def _in_use(self) -> set[str]:
        """Titles that must not be evicted now: served from the cache, or held by P2P."""
        held = self.engine.in_use() if self.engine is not None else set()
        return held | set(self.handlers.serving)

    async def _make_room(self, need: int) -> int:
        return await self.sweeper.make_room(need)

    def _prefetch_ended(self, infohash: str) -> None:
        """Finished or failed: not started again after a restart."""

        async def forget() -> None:
            try:
                await self.recorder.run(lambda store: store.end_prefetch(infohash))
            except Exception:
                log.exception("could not record the end of the prefetch of %s", infohash)

        self._spawn(forget())

    def _published(self, infohash: str) -> None:
        """A download landed in the cache: record it, and keep the cache under its cap."""
        assert self.engine is not None
        found = self.engine.torrent_snapshot(infohash)
        name = found.name if found is not None else ""
        # The published files' sizes until the next sweep counts the blocks on disk.
        size = 0
        if found is not None:
            size = sum(f.size for f in found.files if f.index in found.published_files)
        added = time.time()

        async def record() -> None:
            try:
                await self.recorder.run(
                    lambda store: store.upsert_title(
                        infohash, name=name, bytes=size, origin=Origin.DOWNLOADED, added=added
                    )
                )
                if self.config.cache.max_size:
                    await self.sweeper.sweep("download finished")
            except Exception:
                log.exception("could not record the download of %s", infohash)

        self._spawn(record())


async def serve(config: Config) -> int:
    app = App(config)
    try:
        await app.start()
    except DlnaError as exc:
        print(f"streme: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.http.host, config.http.port, exc.strerror)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cache_dir = app.cache_root
    for url in app.server.urls:
        # Printed, not logged: `make run` shows where to point a player at any log level.
        print(
            f"streme {__version__} listening on {url} (cache directory {cache_dir})",
            file=sys.stderr,
        )
        print(f"web page (players, the cache, magnets): {url}/", file=sys.stderr)
        print(f"stream a cached video: {url}/stream/proxy/<infohash>", file=sys.stderr, flush=True)
    if app.workers is not None:
        print(f"{app.worker_count} processes serve the port (--workers)", file=sys.stderr)
    await stop.wait()
    log.warning(
        "shutting down: finishing in-flight responses (up to %.0f s)", config.http.shutdown_timeout
    )
    await app.stop()
    return 0


# How long a thread may hold the GIL while another waits (Python's default: 5 ms). The
# event loop waits for it after each blocking call (sendfile, fstat), so a busy background
# thread (the cache sweep's scan, the log writer) added up to 5 ms to a response each time.
# Measured with a 3-s startup sweep of 100,000 titles: TTFB p99 3-5 ms -> 1.8-2.0 ms
# (keep-alive), 8.6-11.7 ms -> 2.0-2.4 ms (new connections); no change in throughput.
SWITCH_INTERVAL = 0.0005


def run(config: Config) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL)
    return_large_blocks()  # before libtorrent's threads start allocating
    raise_limit()  # before the connection cap is sized from it
    return uvloop.run(serve(config))
