"""One download into the cache by this process's own P2P engine: `streme fetch`'s core.

How this works: `Download.run()` starts an `Engine` (the config's `p2p` settings) on the
running loop and asks it to prefetch the files, as `POST /api/prefetch` does on a
server. Then it looks at the engine's snapshot of the torrent at each wake-up (the
prefetch returned, a file was published, a signal came) or every `TICK` seconds, hands
the progress to a reporter (`progress.py`), and ends when

- every wanted file is published into the cache: the torrent leaves the session and its
  download directory goes (the cache keeps its own hard links to the files);
- the download fails: `error` is the engine's P2PError (no peers, no metadata, a full
  disk...), or an IndexError for a file index the torrent does not have;
- SIGINT or SIGTERM comes (`signal`): `engine.stop()` saves resume data, from which the
  next run continues. The handlers go with the first signal, so a second one has its
  default effect (SIGINT: KeyboardInterrupt; nothing more is saved).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from streme.cache.lookup import locations_in_hash_dir
from streme.cache.publish import download_pending
from streme.config import Config
from streme.progress import DownloadProgress, Reporter
from streme.torrent.errors import P2PError

if TYPE_CHECKING:
    from streme.cache.torrentmeta import TorrentMeta
    from streme.torrent.engine import Engine
    from streme.torrent.snapshot import TorrentSnapshot

TICK = 0.5  # seconds between two looks at the torrent
# Seconds every wanted byte may be on disk without the files reaching the cache.
PUBLISH_PATIENCE = 30.0


class Download:
    def __init__(
        self,
        config: Config,
        infohash: str,
        files: list[int] | None,
        trackers: tuple[str, ...],
        reporter: Reporter,
        notify: Callable[[str], None],
    ) -> None:
        """`files` None: the torrent's videos (all its files if none). `notify` is told
        what takes time (saving resume data)."""
        self.config = config
        self.cache_root = os.path.abspath(config.cache.dir)
        self.infohash = infohash
        self.files = files
        self.trackers = trackers
        self.reporter = reporter
        self.notify = notify
        # How it ended: `error` and `signal` both None means done.
        self.error: P2PError | IndexError | None = None
        self.signal: int | None = None
        self.name = ""  # the torrent's
        self.landed: list[str] = []  # the files' paths in the cache, once done
        self.downloaded = 0  # payload bytes this run
        self.seconds = 0.0
        self._wake = asyncio.Event()
        self._watching = False  # a signal now stops the download (later: too late)

    async def run(self) -> None:
        from streme.torrent.engine import Engine  # libtorrent: only when downloading

        loop = asyncio.get_running_loop()
        engine = Engine(self.config.p2p, self.cache_root, on_published=self._published)
        engine.start(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._interrupted, sig)
        started = time.monotonic()
        try:
            self._watching = True
            await self._watch(engine)
            self._watching = False
            self.reporter.close()
            if self.error is None and self.signal is None:
                leaving = engine.remove(self.infohash, "fetched into the cache")
                if leaving is not None:
                    await leaving
            self.downloaded = engine.transfer_totals()[0]
            if self.signal is not None:
                self.notify(f"fetch {self.infohash}: stopping, saving resume data")
        finally:
            self.reporter.close()
            await engine.stop()
            self.seconds = time.monotonic() - started

    def resumable(self) -> bool:
        """Resume data is saved (by the engine, when it stopped)."""
        return download_pending(self.cache_root, self.infohash)

    def _published(self, infohash: str) -> None:
        self._wake.set()

    def _interrupted(self, sig: int) -> None:
        if self._watching:
            self.signal = sig
        loop = asyncio.get_running_loop()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(s)
        self._wake.set()

    async def _watch(self, engine: Engine) -> None:
        """Prefetch, then watch the torrent until its files are published, it fails, or
        a signal comes."""
        exts = self.config.cache.video_extensions
        prefetch = asyncio.ensure_future(
            engine.prefetch(self.infohash, self.files, exts, self.trackers)
        )
        prefetch.add_done_callback(lambda _t: self._wake.set())
        all_on_disk_since: float | None = None
        try:
            while True:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), TICK)
                if self.signal is not None:
                    return
                if prefetch.done():
                    error = prefetch.exception() or engine.prefetch_errors.get(self.infohash)
                    if isinstance(error, P2PError | IndexError):
                        self.error = error
                        return
                    if error is not None:
                        raise error
                snapshot = engine.torrent_snapshot(self.infohash)
                if snapshot is None and prefetch.done():
                    self.error = P2PError(f"{self.infohash} left the P2P session unfinished")
                    return
                progress = progress_of(snapshot, wanting=prefetch.done())
                self.reporter.update(progress)
                if snapshot is not None and snapshot.state == "complete" and prefetch.done():
                    self._landed(prefetch.result().meta, prefetch.result().published)
                    return
                if progress.total and progress.done >= progress.total:
                    all_on_disk_since = all_on_disk_since or time.monotonic()
                    if time.monotonic() - all_on_disk_since > PUBLISH_PATIENCE:
                        self.error = P2PError("downloaded, but not saved into the cache (logged)")
                        return
        finally:
            if not prefetch.done():
                prefetch.cancel()
                await asyncio.wait([prefetch])
            if not prefetch.cancelled():
                prefetch.exception()  # retrieved: no "never retrieved" warning

    def _landed(self, meta: TorrentMeta | None, published: set[int]) -> None:
        assert meta is not None  # complete: the metadata came long ago
        self.name = meta.name
        self.landed = landed_paths(self.cache_root, self.infohash, meta, published)


def landed_paths(cache_root: str, infohash: str, meta: TorrentMeta, indices: set[int]) -> list[str]:
    """Where `cache.publish` put the files `indices` of the torrent (as libtorrent lays
    them out, under `<cache>/<infohash>/`)."""
    return [
        os.path.join(cache_root, infohash, *locations_in_hash_dir(meta, meta.files[i])[0])
        for i in sorted(indices)
    ]


def progress_of(snapshot: TorrentSnapshot | None, *, wanting: bool) -> DownloadProgress:
    """The snapshot as progress; before the files are wanted (`wanting` false, or none
    yet) it is still the metadata being fetched."""
    if snapshot is None or not wanting or not snapshot.wanted_files:
        peers = snapshot.peers if snapshot is not None else 0
        return DownloadProgress("metadata", 0, 0, 0, peers)
    total = sum(f.size for f in snapshot.files)
    done = sum(f.done for f in snapshot.files)
    return DownloadProgress(
        snapshot.state, done, total, snapshot.download_rate, snapshot.peers, snapshot.name
    )
