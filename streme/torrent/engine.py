"""The P2P engine: admission, adding torrents once, their alerts, publishing, a snapshot.

How this works:
- `torrent(infohash)` adds a torrent at most once (concurrent callers share the add;
  `params.add_params` says how) and waits for the metadata (`metadata_timeout`).
  Downloads live in `<cache>/.incomplete/<ih>` (`cache.publish.download_dir`), which
  the cache index never serves.
- A torrent is in use while a response reads it (`reader_opened` .. `reader_closed`) or
  its metadata is awaited. With no reader for `idle_timeout` it leaves the session
  (`departures.Departures`); `max_active_torrents` counts torrents in use, and an idle
  one leaves at once to make room. A full disk (ENOSPC from libtorrent) asks the cache
  to make room (`make_room`), then resumes the torrent, or fails it if nothing was freed.
- The session (`session.TorrentSession`) hands every alert to `_handle`; per-torrent
  piece traffic is `active.ActiveTorrent`'s job.
- When every wanted file is complete, libtorrent's cache is flushed; then the files are
  published into the cache (`cache.publish.publish`): the next request is a cache hit
  with no P2P. The storage itself is not moved (moving it under readers served zeros
  from pieces being read during the move).
- `snapshot()` describes every torrent in the session (state, readers, progress) for
  tests and the API; `transfer_totals()` counts the bytes of those that left too.
- `prefetch()` downloads files with no reader (the API's prefetch, `streme fetch`): the
  torrent stays in use until they are published, and while any other torrent has a
  reader it is held to `p2p.prefetch_rate_while_streaming`, so a stream comes first.
  One that gains no byte for `p2p.stall_timeout` (no peer has the rest) fails as
  `stalled` and leaves the session with its resume data: asked again, it resumes.
- `remove()` takes a torrent out at once and deletes its download (the API's forced
  DELETE): its readers' responses end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable

import libtorrent as lt

from streme.cache.lookup import default_torrent_files
from streme.cache.publish import download_dir, incomplete_root, publish
from streme.cache.torrentmeta import TorrentMeta, parse_torrent
from streme.config import P2PConfig, parse_peer
from streme.recent import remember
from streme.torrent.active import ActiveTorrent
from streme.torrent.departures import REMOVAL_WAIT, Departures
from streme.torrent.diskfull import SpaceRecovery
from streme.torrent.errors import (
    AtCapacity,
    CoolingDown,
    DiskFull,
    MetadataTimeout,
    NoPeers,
    P2PError,
    PieceStalled,
    ShuttingDown,
)
from streme.torrent.params import add_params
from streme.torrent.pieces import FileSpan, Layout
from streme.torrent.planner import PiecePlan
from streme.torrent.resume import ResumeSaver, delete_resume
from streme.torrent.session import TorrentSession
from streme.torrent.snapshot import TorrentSnapshot, describe

log = logging.getLogger("streme.p2p")

# Failed prefetches remembered for the API.
REMEMBERED_FAILURES = 1000
# Seconds an idle torrent waits, then looks again, while a finished file is being published.
PUBLISH_WAIT = 1.0


class Engine:
    """The session's torrents. `on_published(infohash)` is told when files land in the
    cache; `make_room(need)` is awaited when the disk is full (`need`: the bytes the
    download still lacks) and returns the bytes it freed; `on_prefetch_ended(infohash)`
    is told when a prefetch finished or failed."""

    def __init__(
        self,
        config: P2PConfig,
        cache_root: str,
        *,
        on_published: Callable[[str], None] | None = None,
        make_room: Callable[[int], Awaitable[int]] | None = None,
        on_prefetch_ended: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._on_published = on_published
        self._on_prefetch_ended = on_prefetch_ended
        self.cache_root = os.path.abspath(cache_root)
        self.incomplete_root = incomplete_root(self.cache_root)
        self._session = TorrentSession(config, self._handle)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._torrents: dict[str, ActiveTorrent] = {}
        self._adding: dict[str, asyncio.Task[ActiveTorrent]] = {}
        self._failed_at: dict[str, float] = {}  # infohash -> loop time of the last failure
        self._resume = ResumeSaver(self.incomplete_root)
        self._departures = Departures(self._session, self._resume.save, self._delete_download)
        self._space = SpaceRecovery(make_room, self._is_current, self._give_up_for_space)
        self._next_reader = 0
        self._departed_totals = [0, 0]  # payload bytes down, up of torrents that left
        # Why the last prefetch of each torrent failed (the API shows it until the next).
        self.prefetch_errors: dict[str, P2PError] = {}
        self._static_peers = [parse_peer(p) for p in config.static_peers]  # checked at load

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
        self._space.cancel()
        for active in self._torrents.values():
            if active.idle_timer is not None:
                active.idle_timer.cancel()
        await self._departures.wait_all()
        await self._resume.save(list(self._torrents.values()))
        for torrent in self._torrents.values():
            torrent.fail_waiters(ShuttingDown("the server is shutting down"))
        self._session.stop()

    @property
    def listen_port(self) -> int:
        return self._session.listen_port

    def find_peers(self, active: ActiveTorrent) -> None:
        """Connect the static peers and announce again (trackers, DHT when enabled)."""
        for peer in self._static_peers:
            with contextlib.suppress(RuntimeError):
                active.handle.connect_peer(peer)
        # Every tracker, the configured ones and a .torrent's own, now: a torrent added
        # from a .torrent wanting nothing announced itself as complete, and a tracker
        # hands a seeder no seeders (its first byte came 2 s late).
        active.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
        if self.config.dht:
            active.handle.force_dht_announce()

    def new_reader_id(self) -> int:
        self._next_reader += 1
        return self._next_reader

    # -- torrents ------------------------------------------------------------------------
    async def torrent(
        self, infohash: str, trackers: tuple[str, ...] = (), *, for_prefetch: bool = False
    ) -> ActiveTorrent:
        """The torrent with its metadata, added once however many requests ask.

        Nothing is downloaded until a reader calls `want_file`, so a HEAD costs only
        the metadata. A torrent that is leaving the session (or just left) is added
        again once libtorrent has let go of it: the caller never gets a removed handle.
        """
        assert self._loop is not None
        while True:
            await self._departures.settled(infohash)
            active = self._torrents.get(infohash)
            if active is None:
                self._check_admission(infohash, for_prefetch=for_prefetch)
                task = self._adding.get(infohash)
                if task is None:
                    task = self._loop.create_task(self._add(infohash, trackers))
                    self._adding[infohash] = task
                    task.add_done_callback(lambda _t: self._adding.pop(infohash, None))
                try:
                    active = await asyncio.shield(task)
                except asyncio.CancelledError:  # nobody may ever ask: start its idle clock
                    task.add_done_callback(self._added_for_nobody)
                    raise
            # A request waiting here keeps the torrent in use: it cannot leave between
            # the add (or the metadata) and the reader this request is about to open.
            active.waiting += 1
            stream = not for_prefetch
            if stream:  # a stream on its way: prefetches yield from now (`_balance`)
                active.streams_waiting += 1
                self._balance()
            try:
                await self._metadata(active)
            finally:
                active.waiting -= 1
                active.streams_waiting -= stream
                self._readers_changed(active)
            if active.failed is not None:
                raise active.failed
            if self._torrents.get(infohash) is active:
                active.last_request = self._loop.time()
                return active
            # It left the session while we waited for its metadata: add it again.

    async def _metadata(self, active: ActiveTorrent) -> None:
        if active.metadata_ready.is_set():
            return
        try:
            await asyncio.wait_for(active.metadata_ready.wait(), self.config.metadata_timeout)
        except TimeoutError:
            timeout = self.config.metadata_timeout
            self._fail(
                active, MetadataTimeout(f"no metadata for {active.infohash} within {timeout:g} s")
            )

    def _added_for_nobody(self, task: asyncio.Task[ActiveTorrent]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._readers_changed(task.result())

    def _check_admission(self, infohash: str, *, for_prefetch: bool = False) -> None:
        """Cooldown after a failure; `max_active_torrents` counts torrents in use (readers,
        or metadata awaited): an idle one leaves at once to make room for a new one, and
        for a stream (not another prefetch) a prefetch nobody reads does, keeping its
        data for later."""
        assert self._loop is not None
        failed_at = self._failed_at.get(infohash)
        if failed_at is not None:
            left = failed_at + self.config.failure_cooldown - self._loop.time()
            if left > 0:
                raise CoolingDown(
                    f"{infohash} failed recently; retry in {left:.0f} s", retry_after=int(left) + 1
                )
            del self._failed_at[infohash]
        if infohash in self._adding or len(self._torrents) < self.config.max_active_torrents:
            return
        idle = [t for t in self._torrents.values() if is_idle(t)]
        if idle:
            self._start_leaving(min(idle, key=lambda t: t.last_request), "room for another torrent")
            return
        unread = [t for t in self._torrents.values() if t.prefetch and not t.active_readers]
        if unread and not for_prefetch:
            newest = max(unread, key=lambda t: t.added_at)
            newest.prefetch = False
            self._prefetch_failed(
                newest.infohash,
                AtCapacity(
                    f"the prefetch of {newest.infohash} made room for a stream "
                    "(p2p.max_active_torrents); asked again, it resumes"
                ),
            )
            self._start_leaving(newest, "room for a stream")
            return
        raise AtCapacity(
            f"{len(self._torrents)} torrents are in use (p2p.max_active_torrents); try later"
        )

    def _fail(self, active: ActiveTorrent, error: P2PError, *, cooldown: bool = True) -> None:
        """Give up on a torrent: wake its waiters, drop it, and start its cooldown."""
        if active.failed is not None:
            return
        active.failed = error
        active.metadata_ready.set()
        active.fail_waiters(error)
        if active.idle_timer is not None:
            active.idle_timer.cancel()
        if self._torrents.get(active.infohash) is active:
            self._count_departure(active)
            del self._torrents[active.infohash]
            self._departures.remove(active)
        if active.prefetch:
            active.prefetch = False
            self._prefetch_failed(active.infohash, error)
        if cooldown:
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

    async def _add(self, infohash: str, trackers: tuple[str, ...] = ()) -> ActiveTorrent:
        log.info("Attempting P2P stream for hash: %s", infohash)
        params = add_params(self.config, self.cache_root, infohash, self._static_peers)
        # A client's own (p2p.allow_client_trackers). The binding's `trackers` is a copy:
        # appending to it would change nothing.
        known = list(params.trackers)
        params.trackers = known + [url for url in trackers if url not in known]
        handle = self._session.add(params)
        active = ActiveTorrent(infohash, handle, self.find_peers, self._readers_changed)
        active.parked = bool(params.flags & lt.torrent_flags.paused)
        self._torrents[infohash] = active
        active.last_request = self._loop.time() if self._loop is not None else 0.0
        active.added_at = active.last_request
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
        if ti.info_hashes().has_v1():
            active.piece_hashes = [bytes(ti.hash_for_piece(p)) for p in range(ti.num_pieces())]
        active.plan = PiecePlan(ti.num_pieces())
        active.load_pieces()
        active.metadata_ready.set()

    # -- leaving the session ---------------------------------------------------------------
    def _readers_changed(self, active: ActiveTorrent) -> None:
        """Start the idle clock when the last reader leaves; stop it when one comes."""
        if active.idle_timer is not None:
            active.idle_timer.cancel()
            active.idle_timer = None
        self._balance()
        if is_idle(active):
            assert self._loop is not None
            active.idle_timer = self._loop.call_later(
                self.config.idle_timeout, self._idle_expired, active
            )

    def _idle_expired(self, active: ActiveTorrent) -> None:
        assert self._loop is not None
        active.idle_timer = None
        if self._torrents.get(active.infohash) is not active or not is_idle(active):
            return  # in use again: the next reader or request to finish restarts the clock
        left = active.last_request + self.config.idle_timeout - self._loop.time()
        if left <= 0 and self._publish_pending(active):
            left = PUBLISH_WAIT  # a finished file is on its way into the cache: let it land
        if left > 0:  # asked for again meanwhile (a HEAD, say): wait out the rest
            active.idle_timer = self._loop.call_later(left, self._idle_expired, active)
            return
        self._start_leaving(active, f"no reader for {self.config.idle_timeout:g} s")

    def _publish_pending(self, active: ActiveTorrent) -> bool:
        """A wanted file is complete but not published yet (its reader may finish before
        libtorrent reports the torrent finished): start the flush that publishes it."""
        meta = active.meta
        unpublished = active.wanted_files - active.published
        if meta is None or not unpublished:
            return False
        progress = active.handle.file_progress()
        if not any(progress[meta.files[i].raw_index] == meta.files[i].length for i in unpublished):
            return False
        if not active.flushing:
            active.flushing = True
            active.handle.flush_cache()
        return True

    def _start_leaving(self, active: ActiveTorrent, why: str) -> asyncio.Task[None]:
        """Take the torrent out of the session now (new requests add it afresh)."""
        if active.idle_timer is not None:
            active.idle_timer.cancel()
            active.idle_timer = None
        self._count_departure(active)
        del self._torrents[active.infohash]
        return self._departures.leave(active, why)

    def _delete_download(self, infohash: str) -> None:
        shutil.rmtree(download_dir(self.cache_root, infohash), ignore_errors=True)
        delete_resume(self.incomplete_root, infohash)

    async def release_idle(self) -> int:
        """Make every torrent nobody reads leave now (disk pressure); how many left."""
        idle = [t for t in self._torrents.values() if is_idle(t)]
        tasks = [self._start_leaving(t, "the disk needs room") for t in idle]
        if tasks:
            await asyncio.wait(tasks, timeout=2 * REMOVAL_WAIT)
        return len(tasks)

    def in_use(self) -> set[str]:
        """Infohashes whose data libtorrent holds (in the session, or on their way out)."""
        return set(self._torrents) | set(self._adding) | self._departures.busy()

    # -- prefetch --------------------------------------------------------------------------
    async def prefetch(
        self,
        infohash: str,
        files: list[int] | None,
        video_extensions: list[str],
        trackers: tuple[str, ...] = (),
    ) -> ActiveTorrent:
        """Download `files` (None: the torrent's videos, else all its files) with no
        reader; published into the cache like a streamed download. Returns once they are
        wanted (after the metadata); raises the torrent's P2PError, or IndexError for a
        file index out of range."""
        self.prefetch_errors.pop(infohash, None)
        try:
            active = await self.torrent(infohash, trackers, for_prefetch=True)
        except P2PError as exc:
            self._prefetch_failed(infohash, exc)
            raise
        meta = active.meta
        assert meta is not None
        if files is None:
            chosen = [f.index for f in default_torrent_files(meta, video_extensions)]
            files = chosen or [f.index for f in meta.files]
        bad = [i for i in files if not 0 <= i < len(meta.files)]
        if bad:
            raise IndexError(
                f"file={bad[0]} is out of range: the torrent has {len(meta.files)} file(s)"
            )
        if set(files) <= active.published:
            return active  # already in the cache
        already = active.prefetch
        active.prefetch = True
        for index in files:
            active.want_file(index)
        self._readers_changed(active)
        if not already:
            self._check_prefetch_progress(active)
        log.info("prefetching %s: file(s) %s", infohash, ", ".join(map(str, sorted(files))))
        return active

    def _check_prefetch_progress(self, active: ActiveTorrent) -> None:
        """Every `stall_timeout` while it prefetches: a prefetch that gained nothing
        since the last look (and has no reader, whose own stall check applies) gives up
        and leaves, keeping its data for the next time."""
        assert self._loop is not None
        if not active.prefetch or self._torrents.get(active.infohash) is not active:
            return
        done = int(active.handle.status().total_done)
        if done > active.prefetch_done or active.active_readers or active.flushing:
            active.prefetch_done = done
            timeout = self.config.stall_timeout
            self._loop.call_later(timeout, self._check_prefetch_progress, active)
            return
        error = PieceStalled(
            f"the prefetch of {active.infohash} gained no byte in "
            f"{self.config.stall_timeout:g} s (no peer has the rest); asked again, it resumes"
        )
        log.warning("%s", error)
        active.prefetch = False
        self._prefetch_failed(active.infohash, error)
        self._start_leaving(active, "prefetch stalled")

    def _prefetch_failed(self, infohash: str, error: P2PError) -> None:
        """Remember why (the last `REMEMBERED_FAILURES`, oldest forgotten first)."""
        remember(self.prefetch_errors, infohash, error, REMEMBERED_FAILURES)
        if self._on_prefetch_ended is not None:
            self._on_prefetch_ended(infohash)

    def _balance(self) -> None:
        """Hold prefetches to `prefetch_rate_while_streaming` while any torrent has a
        reader, or a stream waiting for its metadata; full rate when none has."""
        limit = self.config.prefetch_rate_while_streaming
        if not limit:
            return
        streaming = any(t.active_readers or t.streams_waiting for t in self._torrents.values())
        for t in self._torrents.values():
            throttle = streaming and t.prefetch and not (t.active_readers or t.streams_waiting)
            if throttle == t.throttled or not t.handle.is_valid():
                continue
            t.throttled = throttle
            full = self.config.download_rate_limit or -1  # -1: libtorrent's "no limit"
            t.handle.set_download_limit(limit if throttle else full)

    def remove(self, infohash: str, why: str) -> asyncio.Task[None] | None:
        """Take `infohash` out of the session now, ending its readers' responses, and
        delete its download; None when it is not in the session."""
        active = self._torrents.get(infohash)
        task = self._adding.get(infohash)
        if task is not None:
            task.cancel()
        if active is None:
            return None
        active.fail_waiters(ShuttingDown(f"{infohash} was removed: {why}"))
        active.prefetch = False
        active.failed = ShuttingDown(f"{infohash} was removed: {why}")
        leaving = self._start_leaving(active, why)
        leaving.add_done_callback(lambda _t: self._delete_download(infohash))
        return leaving

    def leave(self, infohash: str, why: str) -> asyncio.Task[None] | None:
        """Take `infohash` out of the session if nobody reads it, keeping what it has
        downloaded (resumed when asked again); None when it is not in the session or
        a response is reading from it."""
        active = self._torrents.get(infohash)
        if active is None or active.active_readers or active.waiting:
            return None
        active.prefetch = False
        return self._start_leaving(active, why)

    def transfer_totals(self) -> tuple[int, int]:
        """Payload bytes (downloaded, uploaded) since start, torrents that left included."""
        down, up = self._departed_totals
        for active in self._torrents.values():
            if active.handle.is_valid():
                status = active.handle.status()
                down += int(status.total_payload_download)
                up += int(status.total_payload_upload)
        return down, up

    def _count_departure(self, active: ActiveTorrent) -> None:
        if active.handle.is_valid():
            status = active.handle.status()
            self._departed_totals[0] += int(status.total_payload_download)
            self._departed_totals[1] += int(status.total_payload_upload)

    # -- a full disk -----------------------------------------------------------------------
    def _is_current(self, active: ActiveTorrent) -> bool:
        return self._torrents.get(active.infohash) is active

    async def _give_up_for_space(self, active: ActiveTorrent, freed: int) -> None:
        """Fail the torrent (no cooldown: the next request may fit) and drop what it
        wrote: after a failed write its pieces cannot be trusted."""
        if freed:
            log.error(
                "disk full: %s stopped; %d bytes freed for the next request", active.infohash, freed
            )
        else:
            log.error(
                "disk full: %s cannot be downloaded; nothing could be evicted", active.infohash
            )
        self._fail(
            active,
            DiskFull(f"the cache's disk is full; {active.infohash} was not downloaded"),
            cooldown=False,
        )
        await self._departures.removal_done(active.infohash)
        await asyncio.to_thread(self._delete_download, active.infohash)

    # -- snapshot ------------------------------------------------------------------------
    def snapshot(self) -> list[TorrentSnapshot]:
        """Every torrent in the session (one `status()` call each: ~50-80 µs)."""
        now = self._loop.time() if self._loop is not None else 0.0
        return [describe(active, now) for active in self._torrents.values()]

    def torrent_snapshot(self, infohash: str) -> TorrentSnapshot | None:
        active = self._torrents.get(infohash)
        now = self._loop.time() if self._loop is not None else 0.0
        return None if active is None else describe(active, now)

    def metadata(self, infohash: str) -> TorrentMeta | None:
        """The metadata of a torrent in the session, once it has arrived."""
        active = self._torrents.get(infohash)
        return None if active is None else active.meta

    def adding(self, infohash: str) -> bool:
        """Being added (before its handle exists)."""
        return infohash in self._adding

    # -- alerts --------------------------------------------------------------------------
    def _handle(self, alert: lt.alert) -> None:
        if isinstance(alert, lt.read_piece_alert):
            active = self._active_for(alert)
            if active is not None:
                data = None if alert.error.value() else bytes(alert.buffer)
                active.on_read_piece(alert.piece, data)
        elif isinstance(alert, lt.piece_finished_alert):
            active = self._active_for(alert)
            if active is not None:
                active.on_piece_finished(alert.piece_index)
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
            # By hash, not through `_torrents`: a departing torrent has left it already.
            infohash = alert_infohash(alert)
            if infohash is not None and self._resume.expects(infohash):
                self._resume.on_alert(infohash, alert.params)
        elif isinstance(alert, lt.torrent_checked_alert):
            active = self._active_for(alert)
            if active is not None and active.meta is not None:
                active.load_pieces()
            if active is not None and active.rechecking:
                active.rechecking = False
                log.info("%s: files checked again; asking for the readers' pieces", active.infohash)
                active.reassert()
        elif isinstance(alert, lt.torrent_removed_alert):
            self._departures.removed(str(alert.info_hashes.v1))
        elif isinstance(alert, lt.file_error_alert):
            active = self._active_for(alert)
            if active is not None:
                self._space.on_file_error(active, alert.error.value(), alert.message())
        elif isinstance(alert, lt.save_resume_data_failed_alert | lt.torrent_error_alert):
            log.warning("libtorrent: %s", alert.message())

    def _active_for(self, alert: lt.torrent_alert) -> ActiveTorrent | None:
        infohash = alert_infohash(alert)
        return None if infohash is None else self._torrents.get(infohash)

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
        published = publish(self.cache_root, active.infohash, bytes(ti.info_section()), done)
        active.published.update(published)
        if not active.wanted_files - active.published:
            delete_resume(self.incomplete_root, active.infohash)
            if active.prefetch:  # done: the idle clock may run now
                active.prefetch = False
                log.info("prefetch of %s finished", active.infohash)
                self._readers_changed(active)
                if self._on_prefetch_ended is not None:
                    self._on_prefetch_ended(active.infohash)
        if published and self._on_published is not None:
            self._on_published(active.infohash)


def is_idle(active: ActiveTorrent) -> bool:
    """No reader, no request waiting, no prefetch, not failed: nothing would notice it
    leave."""
    busy = active.active_readers or active.waiting or active.prefetch
    return not busy and active.failed is None


def alert_infohash(alert: lt.torrent_alert) -> str | None:
    try:
        return str(alert.handle.info_hashes().v1)
    except RuntimeError:  # the handle is gone
        return None
