"""The application: wire config, cache index, routes and HTTP server; run until a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from functools import partial
from typing import TYPE_CHECKING

import uvloop

from streme import __version__
from streme.cache.index import CacheIndex
from streme.config import Config
from streme.handlers import StreamHandlers, build_router
from streme.http.server import HTTPServer

if TYPE_CHECKING:
    from streme.torrent.engine import Engine

log = logging.getLogger("streme")


class App:
    """Everything one server process runs; `start()` then `stop()` (tests use this too)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.index = CacheIndex(
            config.cache.dir,
            video_extensions=config.cache.video_extensions,
            min_size=config.cache.min_size,
        )
        self.cache_root = os.path.abspath(config.cache.dir)
        self.engine: Engine | None = None
        on_miss = None
        if config.p2p.enabled:
            # Imported only when used: libtorrent adds ~10 MiB to a cache-only server.
            from streme.p2phandler import stream_from_swarm
            from streme.torrent.engine import Engine

            self.engine = Engine(config.p2p, self.cache_root)
            exts = config.cache.video_extensions
            on_miss = partial(stream_from_swarm, self.engine, config.p2p, exts)
        self.handlers = StreamHandlers(self.index, on_miss)
        self.server = HTTPServer(config.http, build_router(self.handlers))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.index.start(loop)
        try:
            if self.engine is not None:
                self.engine.start(loop)
            await self.server.start()
        except BaseException:
            self.index.close()
            if self.engine is not None:
                await self.engine.stop()
            raise

    async def stop(self) -> None:
        await self.server.shutdown()
        if self.engine is not None:
            await self.engine.stop()
        self.index.close()


async def serve(config: Config) -> int:
    app = App(config)
    try:
        await app.start()
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
        print(f"stream a cached video: {url}/stream/proxy/<infohash>", file=sys.stderr, flush=True)
    await stop.wait()
    log.warning(
        "shutting down: finishing in-flight responses (up to %.0f s)", config.http.shutdown_timeout
    )
    await app.stop()
    return 0


def run(config: Config) -> int:
    return uvloop.run(serve(config))
