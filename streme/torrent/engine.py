"""The P2P engine: admission, adding torrents once, their alerts, publishing, a snapshot.

How this works:
- `torrent(infohash)` adds a torrent at most once (concurrent callers share the add),
  from resume data if an earlier run left some, else `<infohash>.torrent` in the cache,
  else the bare infohash with the configured trackers, with the configured static peers
  in the add (connected at once, not on libtorrent's next one-second round), and waits
  for the metadata (`metadata_timeout`). Downloads live in `<cache>/.incomplete/<ih>`
  (`cache.publish.download_dir`), which the cache index never serves.
- The session (`session.TorrentSession`) hands every alert to `_handle`; per-torrent
  piece traffic is `active.ActiveTorrent`'s job.
- When every wanted file is complete, libtorrent's cache is flushed; then the files are
  published into the cache (`cache.publish.publish`): the next request is a cache hit
  with no P2P. The storage itself is not moved (moving it under readers served zeros
  from pieces being read during the move).
- `snapshot()` describes every torrent in the session (state, readers, progress) for
  tests and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

import libtorrent as lt

from streme.cache.publish import download_dir, incomplete_root, publish
from streme.cache.torrentmeta import parse_torrent
from streme.config import P2PConfig
from streme.torrent.active import ActiveTorrent
from streme.torrent.buffer import BufferStats
from streme.torrent.errors import (
    AtCapacity,
    CoolingDown,
    MetadataTimeout,
    NoPeers,
    P2PError,
    ShuttingDown,
)
from streme.torrent.pieces import FileSpan, Layout
from streme.torrent.resume import delete_resume, read_resume, write_resume
from streme.torrent.session import TorrentSession

log = logging.getLogger("streme.p2p")


def static_peers(texts: list[str]) -> list[tuple[str, int]]:
    """The `host:port` entries that parse (the rest are ignored)."""
    peers = []
    for text in texts:
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit():
            peers.append((host.strip("[]"), int(port)))
    return peers


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


class Engine:
    def __init__(self, config: P2PConfig, cache_root: str) -> None:
        self.config = config
        self.cache_root = os.path.abspath(cache_root)
        self.incomplete_root = incomplete_root(self.cache_root)
        self._session = TorrentSession(config, self._handle)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._torrents: dict[str, ActiveTorrent] = {}
        self._adding: dict[str, asyncio.Task[ActiveTorrent]] = {}
        self._failed_at: dict[str, float] = {}  # infohash -> loop time of the last failure
        self._resume_waiting: dict[str, asyncio.Future[None]] = {}
        self._next_reader = 0
        self._static_peers = static_peers(config.static_peers)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        os.makedirs(self.incomplete_root, exist_ok=True)
        self._loop = loop
        self._session.start(loop)

    async def stop(self) -> None:
        if not self._session.running:
            return
        for task in self._adding.values():
            task.cancel()
        await self._save_resume_data(list(self._torrents.values()))
        for torrent in self._torrents.values():
            torrent.fail_waiters(ShuttingDown("the server is shutting down"))
        self._session.stop()

    async def _save_resume_data(self, torrents: list[ActiveTorrent]) -> None:
        """Ask each unfinished torrent for resume data and write it (bounded wait)."""
        assert self._loop is not None
        pending = [t for t in torrents if t.wanted_files - t.published and t.meta]
        if not pending:
            return
        waiting = {t.infohash: self._loop.create_future() for t in pending}
        self._resume_waiting.update(waiting)
        flags = lt.torrent_handle.save_info_dict | lt.torrent_handle.flush_disk_cache
        for active in pending:
            active.handle.save_resume_data(flags)
        done, _ = await asyncio.wait(waiting.values(), timeout=10)
        log.info("saved resume data for %d of %d torrent(s)", len(done), len(pending))
        for infohash in waiting:
            self._resume_waiting.pop(infohash, None)

    @property
    def listen_port(self) -> int:
        return self._session.listen_port

    def find_peers(self, active: ActiveTorrent) -> None:
        """Connect the static peers and announce again (trackers, DHT when enabled)."""
        for peer in self._static_peers:
            with contextlib.suppress(RuntimeError):
                active.handle.connect_peer(peer)
        if self.config.trackers:
            active.handle.force_reannounce()
        if self.config.dht:
            active.handle.force_dht_announce()

    def new_reader_id(self) -> int:
        self._next_reader += 1
        return self._next_reader

    # -- torrents ------------------------------------------------------------------------
    async def torrent(self, infohash: str) -> ActiveTorrent:
        """The torrent with its metadata, added once however many requests ask.

        Nothing is downloaded until a reader calls `want_file`, so a HEAD costs only
        the metadata.
        """
        active = self._torrents.get(infohash)
        if active is None:
            self._check_admission(infohash)
            task = self._adding.get(infohash)
            if task is None:
                task = asyncio.get_running_loop().create_task(self._add(infohash))
                self._adding[infohash] = task
                task.add_done_callback(lambda _t: self._adding.pop(infohash, None))
            active = await asyncio.shield(task)
        if not active.metadata_ready.is_set():
            try:
                await asyncio.wait_for(active.metadata_ready.wait(), self.config.metadata_timeout)
            except TimeoutError:
                self._fail(
                    active,
                    MetadataTimeout(
                        f"no metadata for {infohash} within {self.config.metadata_timeout:g} s"
                    ),
                )
        if active.failed is not None:
            raise active.failed
        return active

    def _check_admission(self, infohash: str) -> None:
        assert self._loop is not None
        failed_at = self._failed_at.get(infohash)
        if failed_at is not None:
            left = failed_at + self.config.failure_cooldown - self._loop.time()
            if left > 0:
                raise CoolingDown(
                    f"{infohash} failed recently; retry in {left:.0f} s", retry_after=int(left) + 1
                )
            del self._failed_at[infohash]
        if infohash not in self._adding and len(self._torrents) >= self.config.max_active_torrents:
            raise AtCapacity(
                f"{len(self._torrents)} torrents are active (p2p.max_active_torrents); try later"
            )

    def _fail(self, active: ActiveTorrent, error: P2PError) -> None:
        """Give up on a torrent: wake its waiters, drop it, and start its cooldown."""
        if active.failed is not None:
            return
        active.failed = error
        active.metadata_ready.set()
        active.fail_waiters(error)
        if self._torrents.get(active.infohash) is active:
            del self._torrents[active.infohash]
            self._session.remove(active.handle)
        assert self._loop is not None
        self._failed_at[active.infohash] = self._loop.time()

    def _check_peers(self, active: ActiveTorrent) -> None:
        if active.failed is not None or active.metadata_ready.is_set():
            return
        if active.handle.status().num_peers == 0:
            log.warning("No peers found after initial discovery period for %s", active.infohash)
            self._fail(
                active,
                NoPeers(
                    f"no peers for {active.infohash} within {self.config.no_peers_timeout:g} s"
                ),
            )

    def _params_for(self, infohash: str) -> lt.add_torrent_params:
        """From resume data if a restart left some, else `<infohash>.torrent`, else the
        bare infohash with the configured trackers."""
        torrent_file = os.path.join(self.cache_root, f"{infohash}.torrent")
        params = read_resume(self.incomplete_root, infohash)
        if params is not None:
            log.info("Resuming %s from saved resume data", infohash)
        elif os.path.isfile(torrent_file):
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(torrent_file)
            log.info("Adding new torrent from %s", torrent_file)
        else:
            params = lt.add_torrent_params()
            params.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(infohash)))
            params.trackers = list(self.config.trackers)
            log.info("Adding new torrent: %s (%d tracker(s))", infohash, len(self.config.trackers))
        params.save_path = download_dir(self.cache_root, infohash)
        # Static peers go into the add itself: libtorrent connects to the peers it knows
        # when the torrent starts, where `connect_peer` afterwards waits for the
        # session's next one-second connection round (half a second on average).
        params.peers = list(self._static_peers)
        # Not auto-managed: the queue would pause torrents beyond libtorrent's
        # `active_downloads` (3), and admission is `max_active_torrents`' job.
        # default_dont_download: no file is fetched until a reader wants it (see
        # `want_file`). Sequential: a stream is read from its start, and until the
        # reader's deadlines arrive the picker would otherwise fill the peers' request
        # queues with random pieces (a first byte after ~150 ms instead of ~10 ms).
        flags = lt.torrent_flags
        params.flags &= ~(flags.auto_managed | flags.paused | flags.upload_mode)
        params.flags |= flags.sequential_download | flags.default_dont_download
        if self.config.download_rate_limit:
            params.download_limit = self.config.download_rate_limit
        if self.config.upload_rate_limit:
            params.upload_limit = self.config.upload_rate_limit
        params.max_connections = self.config.max_connections_per_torrent
        return params

    async def _add(self, infohash: str) -> ActiveTorrent:
        log.info("Attempting P2P stream for hash: %s", infohash)
        handle = self._session.add(self._params_for(infohash))
        active = ActiveTorrent(infohash, handle, self.find_peers)
        self._torrents[infohash] = active
        assert self._loop is not None
        self._loop.call_later(self.config.no_peers_timeout, self._check_peers, active)
        if handle.status().has_metadata:
            self._on_metadata(active)
        return active

    def _on_metadata(self, active: ActiveTorrent) -> None:
        if active.metadata_ready.is_set():
            return
        ti = active.handle.torrent_file()
        if ti is None:
            return
        blob = b"d4:info" + bytes(ti.info_section()) + b"e"
        meta = parse_torrent(blob)
        active.meta = meta
        active.layout = Layout(ti.piece_length(), ti.total_size())
        storage = ti.layout()
        active.spans = [FileSpan(storage.file_offset(f.raw_index), f.length) for f in meta.files]
        active.metadata_ready.set()

    # -- snapshot ------------------------------------------------------------------------
    def snapshot(self) -> list[TorrentSnapshot]:
        """Every torrent in the session (one `status()` call each: ~50-80 µs)."""
        return [self._describe(active) for active in self._torrents.values()]

    def torrent_snapshot(self, infohash: str) -> TorrentSnapshot | None:
        active = self._torrents.get(infohash)
        return None if active is None else self._describe(active)

    @staticmethod
    def _describe(active: ActiveTorrent) -> TorrentSnapshot:
        status = active.handle.status()
        meta = active.meta
        if meta is None:
            state, progress = "metadata", 0.0
        else:
            wanted = [meta.files[i] for i in sorted(active.wanted_files)]
            total = sum(f.length for f in wanted)
            done = 0
            if wanted:
                file_progress = active.handle.file_progress()
                done = sum(file_progress[f.raw_index] for f in wanted)
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
        )

    # -- alerts --------------------------------------------------------------------------
    def _handle(self, alert: lt.alert) -> None:
        if isinstance(alert, lt.read_piece_alert):
            active = self._active_for(alert)
            if active is not None:
                data = None if alert.error.value() else bytes(alert.buffer)
                active.on_read_piece(alert.piece, data)
        elif isinstance(alert, lt.metadata_received_alert | lt.add_torrent_alert):
            active = self._active_for(alert)
            if active is not None and active.handle.status().has_metadata:
                self._on_metadata(active)
        elif isinstance(alert, lt.torrent_finished_alert):
            active = self._active_for(alert)
            if active is not None and active.wanted_files - active.published:
                active.flushing = True
                active.handle.flush_cache()  # publish once every written byte is on disk
        elif isinstance(alert, lt.cache_flushed_alert):
            active = self._active_for(alert)
            if active is not None and active.flushing:
                active.flushing = False
                self._publish(active)
        elif isinstance(alert, lt.save_resume_data_alert):
            active = self._active_for(alert)
            if active is not None:
                self._on_resume_data(active.infohash, alert.params)
        elif isinstance(
            alert, lt.save_resume_data_failed_alert | lt.torrent_error_alert | lt.file_error_alert
        ):
            log.warning("libtorrent: %s", alert.message())

    def _active_for(self, alert: lt.torrent_alert) -> ActiveTorrent | None:
        try:
            infohash = str(alert.handle.info_hashes().v1)
        except RuntimeError:
            return None
        return self._torrents.get(infohash)

    def _on_resume_data(self, infohash: str, params: lt.add_torrent_params) -> None:
        try:
            write_resume(self.incomplete_root, infohash, params)
        except OSError as exc:
            log.warning("could not save resume data for %s: %s", infohash, exc)
        fut = self._resume_waiting.get(infohash)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _publish(self, active: ActiveTorrent) -> None:
        """Publish each finished, verified wanted file into the cache."""
        ti = active.handle.torrent_file()
        meta = active.meta
        if ti is None or meta is None:
            return
        progress = active.handle.file_progress()
        storage = ti.layout()
        done = [
            (i, storage.file_path(meta.files[i].raw_index))
            for i in sorted(active.wanted_files - active.published)
            if progress[meta.files[i].raw_index] == meta.files[i].length
        ]
        if not done:
            return
        active.published.update(
            publish(self.cache_root, active.infohash, bytes(ti.info_section()), done)
        )
        if not active.wanted_files - active.published:
            delete_resume(self.incomplete_root, active.infohash)
