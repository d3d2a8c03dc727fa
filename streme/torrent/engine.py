"""The libtorrent engine: one session, alerts into asyncio through an fd, torrents added once.

How this works:
- `Engine.start()` creates the session from `P2PConfig` and hands libtorrent one end of
  a non-blocking socketpair (`set_alert_fd`); the other end is registered with
  `loop.add_reader`. libtorrent writes to it when its alert queue goes from empty to
  non-empty, so `_pump` drains the socket and then pops and handles *all* alerts at once
  (never polling, never `set_alert_notify`, never keeping an alert past the next pop).
- `torrent(infohash)` adds a torrent at most once (concurrent callers share the add),
  from `<infohash>.torrent` in the cache if present, else a magnet with the configured
  trackers, with the configured static peers in the add (connected at once, not on
  libtorrent's next one-second round), and waits for the metadata
  (`metadata_timeout`). Downloads live in `<cache>/.incomplete/<infohash>`, which the
  cache index never serves.
- Pieces are read on demand: `ActiveTorrent.piece(n)` returns the piece's verified bytes,
  from `read_piece_alert` (libtorrent only delivers hash-checked pieces there), asking
  with a deadline if the piece is missing or with `read_piece` if it is on disk.
- When every wanted file is complete, libtorrent's cache is flushed; then the metadata is
  written as `<infohash>.torrent` and each complete wanted file is hard-linked into
  `<cache>/<infohash>/` under a temporary name and renamed into place: the next request
  is a cache hit with no P2P. The storage itself is not moved (moving it under readers
  served zeros from pieces being read during the move).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import libtorrent as lt

from streme.cache.torrentmeta import TorrentMeta, parse_torrent
from streme.config import P2PConfig
from streme.torrent.buffer import BufferStats
from streme.torrent.pieces import FileSpan, Layout

log = logging.getLogger("streme.p2p")

ALERT_MASK = (
    lt.alert_category.error
    | lt.alert_category.status
    | lt.alert_category.storage
    | lt.alert_category.piece_progress
)


# Seconds between two reconnections of a torrent's peers by `kick`.
RECONNECT_GAP = 5.0
# libtorrent's block states in get_download_queue(): 1 requested, 2 writing, 3 finished.
BLOCK_REQUESTED = 1


class P2PError(Exception):
    """A P2P failure with the HTTP answer it deserves."""

    status = 502
    code = "p2p_error"


class MetadataTimeout(P2PError):
    status = 504
    code = "metadata_timeout"


class PieceStalled(P2PError):
    status = 504
    code = "stalled"


class NoPeers(P2PError):
    status = 504
    code = "no_peers"


class CoolingDown(P2PError):
    status = 503
    code = "cooldown"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AtCapacity(P2PError):
    status = 503
    code = "capacity"


def session_settings(config: P2PConfig) -> lt.settings_pack:
    return {
        "listen_interfaces": config.listen_interfaces,
        "enable_dht": config.dht,
        "enable_lsd": config.lsd,
        "enable_upnp": config.upnp,
        "enable_natpmp": config.natpmp,
        "enable_outgoing_utp": config.utp,
        "enable_incoming_utp": config.utp,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": ALERT_MASK,
        "alert_queue_size": 10_000,
        # libtorrent requests time-critical (deadline) pieces on its tick: the default
        # 500 ms tick adds up to half a second to every start and seek.
        "tick_interval": 100,
        # A peer that failed is retried after this many seconds times its failure count
        # (libtorrent's default is 60): a static seed box that reset the first connection
        # (it had not added the torrent yet) is tried again within the request's patience.
        "min_reconnect_time": 2,
        # Once the wanted files are complete libtorrent would drop its connections to
        # seeds as redundant; the next request for another file of the torrent would
        # then wait for a reconnect. Keep them.
        "close_redundant_connections": False,
        # libtorrent picks its first pieces at random (4 by default) to have something
        # to share soon; a stream wants its own pieces first.
        "initial_picker_threshold": 0,
        "user_agent": "streme/0.1",
    }


def magnet_for(infohash: str, trackers: Iterable[str]) -> str:
    from urllib.parse import quote

    parts = [f"magnet:?xt=urn:btih:{infohash}"]
    parts += [f"tr={quote(t, safe='')}" for t in trackers]
    return "&".join(parts)


def parse_peer(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"static peer must be host:port, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass
class ActiveTorrent:
    infohash: str
    handle: lt.torrent_handle
    engine: Engine
    meta: TorrentMeta | None = None
    layout: Layout | None = None
    spans: list[FileSpan] = field(default_factory=list)  # by user-visible file index
    metadata_ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: P2PError | None = None
    wanted_files: set[int] = field(default_factory=set)
    published: set[int] = field(default_factory=set)
    flushing: bool = False
    active_readers: int = 0
    # Buffer statistics of the last finished readers (tests and diagnostics).
    reader_stats: deque[BufferStats] = field(default_factory=lambda: deque(maxlen=100))
    _waiters: dict[int, list[asyncio.Future[bytes]]] = field(default_factory=dict)
    _deadlines: dict[int, dict[int, int]] = field(default_factory=dict)  # piece -> reader -> ms
    _late: dict[int, int] = field(default_factory=dict)  # piece -> bytes at the last kick
    _reconnected_at: float = float("-inf")

    def want_file(self, index: int) -> None:
        """Download file `index`. Every file starts at priority 0 (the torrent is added
        with `default_dont_download`) and only ever goes up: lowering a file that has
        data makes libtorrent move that data into its part file, which races with
        writes in flight ("file too short") and stalls the torrent."""
        if index in self.wanted_files or self.meta is None:
            return
        self.wanted_files.add(index)
        ti = self.handle.torrent_file()
        assert ti is not None
        raw = {self.meta.files[i].raw_index for i in self.wanted_files}
        current = list(self.handle.get_file_priorities())
        wanted = [4 if i in raw else p for i, p in enumerate(current)]
        if wanted != current:
            self.handle.prioritize_files(wanted)
        if self.handle.status().num_peers == 0:
            # Some clients drop peers that want nothing from them: find them again.
            self.engine.find_peers(self)

    def piece(self, piece: int) -> asyncio.Future[bytes]:
        """The verified bytes of `piece`, when libtorrent has them."""
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(piece, [])
        waiters.append(fut)
        if len(waiters) == 1:
            self._request(piece)
        return fut

    def _request(self, piece: int) -> None:
        if self.handle.have_piece(piece):
            self.handle.read_piece(piece)
        else:
            deadline = min(self._deadlines.get(piece, {}).values(), default=0)
            self.handle.set_piece_deadline(
                piece, deadline, lt.deadline_flags_t.alert_when_available
            )

    def set_window(self, reader: int, window: list[tuple[int, int]]) -> None:
        """Reader `reader` wants these (piece, deadline ms); withdraw its older wishes."""
        wanted = dict(window)
        for piece in [p for p, readers in self._deadlines.items() if reader in readers]:
            if piece not in wanted:
                self._withdraw(reader, piece)
        for piece, ms in wanted.items():
            readers = self._deadlines.setdefault(piece, {})
            before = min(readers.values(), default=None)
            readers[reader] = ms
            improves = before is None or ms < before
            if improves and piece not in self._waiters and not self.handle.have_piece(piece):
                self.handle.set_piece_deadline(piece, ms)

    def make_way(self) -> None:
        """Cancel the requests in flight for pieces no reader is waiting for.

        Called when a reader starts where nothing is downloaded (a seek), and when a
        reader leaves while another waits. libtorrent keeps seconds of download in
        flight per peer (`request_queue_time` times the rate, up to the peer's `reqq`),
        and a peer answers requests in order: the seek's pieces would wait behind all of
        it (1.5 s behind a 20 MB/s seeder). libtorrent cancels every request that is not
        for a deadline piece when the first deadline is set on a torrent that has none;
        so all deadlines are cleared and set again. Blocks already received are kept.
        Nothing is done when every waited-for piece is already requested: on a fast
        peer the requests in flight are about to deliver it, and cancelling them costs
        more than it saves (a seek went from ~10 ms to ~120 ms, measured).
        """
        if self.meta is None or not (self._deadlines or self._waiters):
            return
        requested = {int(q["piece_index"]) for q in self.handle.get_download_queue()}
        waiting = {p for p in self._waiters if not self.handle.have_piece(p)}
        if not waiting - requested:
            return
        self.handle.clear_piece_deadlines()
        self._reassert()

    def _reassert(self) -> None:
        """Give libtorrent every deadline the readers hold again, and ask for every
        piece a reader waits for (after deadlines were cleared or peers reconnected)."""
        for piece, readers in self._deadlines.items():
            if piece not in self._waiters and not self.handle.have_piece(piece):
                self.handle.set_piece_deadline(piece, min(readers.values()))
        for piece in self._waiters:
            if not self.handle.have_piece(piece):
                self._request(piece)

    def kick(self, piece: int) -> None:
        """A reader has waited `p2p.piece_kick_after` for `piece`: reconnect the peers if
        the piece made no progress since the last call.

        A transmission 3.00 seeder never answers a cancelled request (transmission#511),
        and libtorrent, which speaks the fast extension, waits for that answer before it
        asks anyone for the blocks again: with one seeder the stream stalls for good.
        Lowering the piece's priority does not make libtorrent forget the requests
        (measured); a new connection does. At most once per `RECONNECT_GAP` seconds.
        """
        if self.handle.have_piece(piece) or self.failed is not None:
            return
        done = self._piece_progress(piece)
        before = self._late.get(piece)
        self._late[piece] = done
        if before is None or done > before:
            return  # late but moving
        if all(p.flags & lt.peer_info.remote_choked for p in self.handle.get_peer_info()):
            return  # every peer chokes us: when to unchoke is theirs to decide
        now = asyncio.get_running_loop().time()
        if now - self._reconnected_at < RECONNECT_GAP:
            return
        self._reconnected_at = now
        log.warning(
            "piece %d of %s made no progress: reconnecting to its peers", piece, self.infohash
        )
        self.handle.pause()
        self.handle.resume()
        self._reassert()

    def _piece_progress(self, piece: int) -> int:
        """Bytes of `piece` received, from libtorrent's download queue."""
        for entry in self.handle.get_download_queue():
            if int(entry["piece_index"]) == piece:
                return sum(
                    int(b["block_size"])
                    if int(b["state"]) > BLOCK_REQUESTED
                    else int(b["bytes_progress"])
                    for b in entry["blocks"]
                )
        return 0

    @property
    def pending_deadlines(self) -> int:
        """Pieces some reader still asks for (0 once every reader is gone)."""
        return len(self._deadlines)

    def withdraw(self, reader: int) -> None:
        for piece in [p for p, readers in self._deadlines.items() if reader in readers]:
            self._withdraw(reader, piece)
        if self._waiters:
            # Another reader is waiting (typically a player's seek racing the close of
            # its previous request): what this one had in flight must not delay it.
            self.make_way()

    def _withdraw(self, reader: int, piece: int) -> None:
        readers = self._deadlines.get(piece)
        if readers is None:
            return
        readers.pop(reader, None)
        if not readers:
            del self._deadlines[piece]
            if piece not in self._waiters and not self.handle.have_piece(piece):
                self.handle.reset_piece_deadline(piece)
                self.handle.piece_priority(piece, 4)  # reset leaves it at 1

    def on_read_piece(self, piece: int, data: bytes | None) -> None:
        waiters = self._waiters.get(piece)
        if not waiters:
            return
        if data is None:  # cancelled (e.g. a deadline reset): ask again
            self._request(piece)
            return
        del self._waiters[piece]
        self._late.pop(piece, None)
        for fut in waiters:
            if not fut.done():
                fut.set_result(data)

    def fail_waiters(self, error: BaseException) -> None:
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(error)
        self._waiters.clear()


class Engine:
    def __init__(self, config: P2PConfig, cache_root: str) -> None:
        self.config = config
        self.cache_root = os.path.abspath(cache_root)
        self.incomplete_root = os.path.join(self.cache_root, ".incomplete")
        self._session: lt.session | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._alert_r: socket.socket | None = None
        self._alert_w: socket.socket | None = None
        self._torrents: dict[str, ActiveTorrent] = {}
        self._adding: dict[str, asyncio.Task[ActiveTorrent]] = {}
        self._failed_at: dict[str, float] = {}  # infohash -> loop time of the last failure
        self._resume_waiting: dict[str, asyncio.Future[None]] = {}
        self._next_reader = 0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        os.makedirs(self.incomplete_root, exist_ok=True)
        self._loop = loop
        self._session = lt.session(session_settings(self.config))
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        self._alert_r, self._alert_w = r, w
        self._session.set_alert_fd(w.fileno())
        loop.add_reader(r.fileno(), self._pump)
        log.info("P2P engine listening on port %d", self._session.listen_port())

    async def stop(self) -> None:
        if self._session is None:
            return
        for task in self._adding.values():
            task.cancel()
        await self._save_resume_data()
        for torrent in self._torrents.values():
            torrent.fail_waiters(P2PError("the server is shutting down"))
        if self._loop is not None and self._alert_r is not None:
            self._loop.remove_reader(self._alert_r.fileno())
        self._session.pause()
        self._session = None
        for sock in (self._alert_r, self._alert_w):
            if sock is not None:
                sock.close()

    async def _save_resume_data(self) -> None:
        """Ask every downloading torrent for resume data and write it (bounded wait)."""
        assert self._loop is not None
        pending = [t for t in self._torrents.values() if t.wanted_files - t.published and t.meta]
        if not pending:
            return
        self._resume_waiting = {t.infohash: self._loop.create_future() for t in pending}
        flags = lt.torrent_handle.save_info_dict | lt.torrent_handle.flush_disk_cache
        for active in pending:
            active.handle.save_resume_data(flags)
        done, _ = await asyncio.wait(self._resume_waiting.values(), timeout=10)
        log.info("saved resume data for %d of %d torrent(s)", len(done), len(pending))
        self._resume_waiting = {}

    def _read_resume(self, infohash: str) -> lt.add_torrent_params | None:
        path = self._resume_path(infohash)
        if not os.path.isfile(path):
            return None
        try:
            with open(path, "rb") as f:
                return lt.read_resume_data(f.read())
        except (OSError, RuntimeError) as exc:
            log.warning("ignoring resume data for %s: %s", infohash, exc)
            return None

    def _resume_path(self, infohash: str) -> str:
        return os.path.join(self.incomplete_root, f"{infohash}.resume")

    def _write_resume(self, infohash: str, params: lt.add_torrent_params) -> None:
        data = lt.write_resume_data_buf(params)
        path = self._resume_path(infohash)
        tmp = f"{path}.{time.time_ns()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        fut = self._resume_waiting.get(infohash)
        if fut is not None and not fut.done():
            fut.set_result(None)

    @property
    def listen_port(self) -> int:
        assert self._session is not None
        return self._session.listen_port()

    def find_peers(self, active: ActiveTorrent) -> None:
        """Connect the static peers and announce again (trackers, DHT when enabled)."""
        for peer in self.config.static_peers:
            with contextlib.suppress(ValueError, RuntimeError):
                active.handle.connect_peer(parse_peer(peer))
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
            if self._session is not None:
                self._session.remove_torrent(active.handle)
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
        """From resume data if a restart left some, else `<infohash>.torrent`, else a magnet."""
        torrent_file = os.path.join(self.cache_root, f"{infohash}.torrent")
        params = self._read_resume(infohash)
        if params is not None:
            log.info("Resuming %s from saved resume data", infohash)
        elif os.path.isfile(torrent_file):
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(torrent_file)
            log.info("Adding new torrent from %s", torrent_file)
        else:
            magnet = magnet_for(infohash, self.config.trackers)
            params = lt.parse_magnet_uri(magnet)
            log.info("Adding new torrent: %s", magnet)
        params.save_path = os.path.join(self.incomplete_root, infohash)
        # Static peers go into the add itself: libtorrent connects to the peers it knows
        # when the torrent starts, where `connect_peer` afterwards waits for the
        # session's next one-second connection round (half a second on average).
        peers = []
        for peer in self.config.static_peers:
            with contextlib.suppress(ValueError):
                peers.append(parse_peer(peer))
        params.peers = peers
        # Not auto-managed: the queue would pause torrents beyond libtorrent's
        # `active_downloads` (3), and admission is `max_active_torrents`' job.
        # default_dont_download: no file is fetched until a reader wants it (see
        # `want_file`). Sequential: a stream is read from its start, and until the
        # reader's deadlines arrive the picker would otherwise fill the peers' request
        # queues with random pieces (a first byte after ~150 ms instead of ~10 ms).
        flags = lt.torrent_flags
        params.flags &= ~(flags.auto_managed | flags.paused | flags.upload_mode)
        params.flags |= flags.sequential_download | flags.default_dont_download
        return params

    async def _add(self, infohash: str) -> ActiveTorrent:
        assert self._session is not None
        log.info("Attempting P2P stream for hash: %s", infohash)
        handle = self._session.add_torrent(self._params_for(infohash))
        if self.config.download_rate_limit:
            handle.set_download_limit(self.config.download_rate_limit)
        if self.config.upload_rate_limit:
            handle.set_upload_limit(self.config.upload_rate_limit)
        handle.set_max_connections(self.config.max_connections_per_torrent)
        active = ActiveTorrent(infohash, handle, self)
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

    # -- alerts --------------------------------------------------------------------------
    def _pump(self) -> None:
        assert self._alert_r is not None
        with contextlib.suppress(BlockingIOError):
            while self._alert_r.recv(4096):
                pass
        if self._session is None:
            return
        for alert in self._session.pop_alerts():
            self._handle(alert)

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
                self._write_resume(active.infohash, alert.params)
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

    def _publish(self, active: ActiveTorrent) -> None:
        """Link each finished, verified wanted file into the cache, metadata first."""
        ti = active.handle.torrent_file()
        meta = active.meta
        if ti is None or meta is None:
            return
        progress = active.handle.file_progress()
        done = [
            i
            for i in active.wanted_files - active.published
            if progress[meta.files[i].raw_index] == meta.files[i].length
        ]
        if not done:
            return
        final = os.path.join(self.cache_root, f"{active.infohash}.torrent")
        if not os.path.exists(final):
            blob = b"d4:info" + bytes(ti.info_section()) + b"e"
            tmp = os.path.join(self.incomplete_root, f".{active.infohash}.{time.time_ns()}")
            with open(tmp, "wb") as f:
                f.write(blob)
            os.replace(tmp, final)
        save_path = os.path.join(self.incomplete_root, active.infohash)
        target_root = os.path.join(self.cache_root, active.infohash)
        storage = ti.layout()
        for index in done:
            rel = storage.file_path(meta.files[index].raw_index)
            src = os.path.join(save_path, rel)
            dst = os.path.join(target_root, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.{time.time_ns()}")
            try:
                os.link(src, tmp)
                os.replace(tmp, dst)
            except OSError as exc:
                log.error("could not save %s to the cache: %s", dst, exc)
                continue
            active.published.add(index)
            log.info("Saved %s to the cache for future use: %s", active.infohash, dst)
        if not active.wanted_files - active.published:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._resume_path(active.infohash))
