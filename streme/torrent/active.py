"""One torrent in the session: the adapter between its readers and libtorrent's handle.

How this works: readers ask `piece(n)` for a piece's verified bytes and move their
read-ahead windows with `set_window`. The deadline book (`scheduler.DeadlineBook`)
merges the windows of all readers; this class applies its answers to the handle
(`set_piece_deadline`, `reset_piece_deadline`). Bytes come from `read_piece_alert`,
which libtorrent only posts for hash-checked pieces: asked with a deadline if the piece
is missing, with `read_piece` if it is on disk. `make_way` and `kick` handle the two ways
requests already in flight can hold a reader up (a seek; a peer that never answers).
The piece plan (`planner.PiecePlan`) knows which pieces are here without asking
libtorrent, keeps the download behind a seek out of the reader's way, and names the
piece that holds the far deadline keeping libtorrent's deadline list from running empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libtorrent as lt

from streme.cache.torrentmeta import TorrentMeta
from streme.torrent.buffer import BufferStats
from streme.torrent.errors import P2PError
from streme.torrent.pieces import FileSpan, Layout, file_pieces
from streme.torrent.planner import DEFAULT_PRIORITY, PiecePlan
from streme.torrent.scheduler import DeadlineBook

if TYPE_CHECKING:
    from libtorrent import PartialPieceInfodict

log = logging.getLogger("streme.p2p")

# Seconds between two reconnections of a torrent's peers by `kick`.
RECONNECT_GAP = 5.0
# libtorrent's block states in get_download_queue(): 1 requested, 2 writing, 3 finished.
BLOCK_REQUESTED = 1
# Requests in flight that no reader needs are cancelled when a waiting reader would sit
# behind more than this many seconds of them (`make_way`).
STALE_SECONDS = 0.1
# The anchors' deadline (ms): far enough never to compete with a reader's window.
ANCHOR_DEADLINE_MS = 3_600_000
# Far deadlines held while readers read (`planner`: why two).
ANCHORS = 2


@dataclass
class ActiveTorrent:
    infohash: str
    handle: lt.torrent_handle
    # Called when a file becomes wanted while no peer is connected: find them again.
    find_peers: Callable[[ActiveTorrent], None]
    # Called when the number of readers changes (the engine's idle timer).
    readers_changed: Callable[[ActiveTorrent], None]
    # v1 SHA-1 of every piece (empty for a v2-only torrent): bytes are checked before a
    # reader gets them.
    piece_hashes: list[bytes] = field(default_factory=list)
    meta: TorrentMeta | None = None
    layout: Layout | None = None
    spans: list[FileSpan] = field(default_factory=list)  # by user-visible file index
    metadata_ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: P2PError | None = None
    wanted_files: set[int] = field(default_factory=set)
    published: set[int] = field(default_factory=set)
    flushing: bool = False
    rechecking: bool = False
    active_readers: int = 0
    waiting: int = 0  # requests inside `Engine.torrent()` (waiting for the metadata)
    streams_waiting: int = 0  # of those, streams (not prefetches)
    # Loop time of the last request for this torrent (a HEAD counts): idle is measured from it.
    last_request: float = 0.0
    added_at: float = 0.0  # loop time it joined the session
    # Downloading with no reader (`POST /api/prefetch`, `streme fetch`) until every
    # wanted file is published; throttled while other torrents have readers.
    prefetch: bool = False
    throttled: bool = False
    prefetch_done: int = -1  # verified bytes at the prefetch's last progress check
    idle_timer: asyncio.TimerHandle | None = None
    # Buffer statistics of the last finished readers (tests and diagnostics).
    reader_stats: deque[BufferStats] = field(default_factory=lambda: deque(maxlen=100))
    _waiters: dict[int, list[asyncio.Future[bytes]]] = field(default_factory=dict)
    _book: DeadlineBook = field(default_factory=DeadlineBook)
    plan: PiecePlan = field(default_factory=lambda: PiecePlan(0))
    _anchors: list[int] = field(default_factory=list)
    # Added paused (its metadata was at hand, see `params.add_params`): no peers until a
    # file is wanted.
    parked: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _late: dict[int, int] = field(default_factory=dict)  # piece -> bytes at the last kick
    _reconnected_at: float = float("-inf")

    def reader_opened(self) -> None:
        """A response will read this torrent: it must not leave the session until
        `reader_closed` (called exactly once, whether or not the body was sent)."""
        self.active_readers += 1
        self.readers_changed(self)

    def reader_closed(self, stats: BufferStats | None) -> None:
        self.active_readers -= 1
        if stats is not None:
            self.reader_stats.append(stats)
        self.readers_changed(self)

    def has_data_to_keep(self) -> bool:
        """Verified data a later request could resume from: metadata, something on disk,
        and not every wanted file published (a torrent re-added from resume data for a
        HEAD wants nothing yet, and its data must survive too)."""
        if self.meta is None:
            return False
        finished = bool(self.wanted_files) and not self.wanted_files - self.published
        return not finished and self.handle.status().total_done > 0

    def want_file(self, index: int) -> None:
        """Download file `index`. Every file starts at priority 0 (the torrent is added
        with `default_dont_download`) and only ever goes up: lowering a file that has
        data makes libtorrent move that data into its part file, which races with
        writes in flight ("file too short") and stalls the torrent."""
        if index in self.wanted_files or self.meta is None:
            return
        self.wanted_files.add(index)
        raw = {self.meta.files[i].raw_index for i in self.wanted_files}
        current = list(self.handle.get_file_priorities())
        wanted = [4 if i in raw else p for i, p in enumerate(current)]
        if wanted != current:
            self.handle.prioritize_files(wanted)
        assert self.layout is not None
        pieces = file_pieces(self.layout, self.spans[index])
        # libtorrent applies file priorities to the pieces later (through its disk
        # thread); set the pieces now so the in-order cursor below can see them.
        self.handle.prioritize_pieces([(p, DEFAULT_PRIORITY) for p in pieces])
        self.plan.want(pieces)
        self._prioritize(self.plan.floor_changes(), wanted_more=True)
        if self.parked:
            self.parked = False
            self.handle.resume()
            return  # resuming announces to every tracker
        if self.handle.status().num_peers == 0:
            # Some clients drop peers that want nothing from them: find them again.
            self.find_peers(self)

    def piece(self, piece: int) -> asyncio.Future[bytes]:
        """The verified bytes of `piece`, when libtorrent has them (the torrent's failure,
        at once, once it failed: a reader that asks after `fail_waiters` must not wait
        for a piece that will never come)."""
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if self.failed is not None:
            fut.set_exception(self.failed)
            return fut
        waiters = self._waiters.setdefault(piece, [])
        waiters.append(fut)
        fut.add_done_callback(functools.partial(self._forget, piece))
        if len(waiters) == 1:
            self._request(piece)
        return fut

    def _forget(self, piece: int, fut: asyncio.Future[bytes]) -> None:
        """A reader stopped waiting (it left): the piece is no longer waited for by it,
        and by nobody once its last waiter is gone (so `make_way` may cancel it)."""
        if not fut.cancelled():
            return
        waiters = self._waiters.get(piece)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):
            waiters.remove(fut)
        if not waiters:
            del self._waiters[piece]
            if piece not in self._book and self.handle.is_valid():
                self._abandon(piece)

    def load_pieces(self) -> None:
        """Read libtorrent's bitfield (once the metadata is here, and after a check)."""
        status = self.handle.status(lt.torrent_handle.query_pieces)
        self.plan.load(status.pieces)

    def on_piece_finished(self, piece: int) -> None:
        self.plan.finished(piece)
        if piece in self._anchors:
            self._keep_anchors()

    def _request(self, piece: int) -> None:
        # A piece that finished after the plan last heard is still right: libtorrent
        # answers a deadline on a piece it has with the read alert at once.
        if self.plan.has(piece):
            self.handle.read_piece(piece)
        else:
            deadline = self._book.deadline(piece) or 0
            self.handle.set_piece_deadline(
                piece, deadline, lt.deadline_flags_t.alert_when_available
            )

    def set_window(self, reader: int, window: list[tuple[int, int]]) -> None:
        """Reader `reader` wants these (piece, deadline ms); withdraw its older wishes."""
        if window and not self.plan.reading(reader):
            # A reader's first window: the download behind it waits.
            self._prioritize(self.plan.reader_started(reader, window[0][0]))
        change = self._book.set_window(reader, window)
        for piece in change.abandoned:
            self._abandon(piece)
        for piece, ms in change.earlier:
            if piece not in self._waiters and not self.plan.has(piece):
                self.handle.set_piece_deadline(piece, ms)
        self._keep_anchors()

    def _prioritize(self, changes: list[tuple[int, int]], *, wanted_more: bool = False) -> None:
        if changes:
            self.handle.prioritize_pieces(changes)
        if wanted_more or any(priority > 0 for _, priority in changes):
            # libtorrent's in-order cursor never moves back over pieces that become
            # wanted again (piece_picker::set_piece_priority), and a torrent added with
            # nothing wanted starts with an empty range: the download went in random
            # order (measured: a 16 MiB read from byte 0 took 6 s while 100 MiB arrived
            # elsewhere). Turning sequential download off and on recomputes the range.
            flag = lt.torrent_flags.sequential_download
            self.handle.unset_flags(flag)
            self.handle.set_flags(flag)

    def _keep_anchors(self) -> None:
        """Hold far deadlines on missing pieces no reader asks for while readers read
        (see `planner`); drop them when they are gone. New anchors are set before old
        ones are taken back, so libtorrent's deadline list never runs empty between."""
        first = min((piece for piece, _ in self._book.items()), default=None)
        keep: list[int] = []
        stale: list[int] = []
        for anchor in self._anchors:
            if self._claimed(anchor) or self.plan.has(anchor):
                continue  # a reader's deadline now, or downloaded: not ours to reset
            (keep if first is not None and anchor > first else stale).append(anchor)
        self._anchors = keep
        if first is not None and len(keep) < ANCHORS:
            claimed = {piece for piece, _ in self._book.items()} | set(self._waiters)
            for piece in self.plan.anchors(first, ANCHORS - len(keep), claimed | set(keep)):
                self._anchors.append(piece)
                self._hold(piece)
        for anchor in stale:
            self.handle.reset_piece_deadline(anchor)
            self.handle.piece_priority(anchor, self.plan.priority(anchor))  # reset leaves 1

    def _hold(self, anchor: int) -> None:
        """A far deadline on `anchor`, at the piece's own priority: a deadline raises it
        to the top, and the in-order download would then fetch it first."""
        self.handle.set_piece_deadline(anchor, ANCHOR_DEADLINE_MS)
        self.handle.piece_priority(anchor, self.plan.priority(anchor))

    def _claimed(self, piece: int) -> bool:
        """A reader holds a deadline on `piece` or waits for it: the anchor must not
        touch it (a deadline without the read alert would leave the reader waiting)."""
        return piece in self._book or piece in self._waiters

    async def make_way(self) -> None:
        """Cancel the requests in flight that no reader needs, when they would hold up
        one that waits.

        Called when a reader starts (a seek), and when a reader leaves while another
        waits. libtorrent keeps seconds of download in flight per peer
        (`request_queue_time` times the rate), and a peer answers requests in order: a
        seek's pieces wait behind all of it (seconds behind a capped seeder). libtorrent
        cancels every request that is not for a deadline piece when the first deadline
        is set on a torrent that has none; so all deadlines are cleared and set again.
        Blocks already received are kept. Nothing is done when the requests no reader
        needs would be through within `STALE_SECONDS` at the current rate: on a fast
        peer they are about to arrive, and cancelling costs more than it saves (a seek
        went from ~10 ms to ~120 ms, measured).
        """
        if self.meta is None or not self._waiters:
            return
        handle = self.handle
        try:  # synchronous round trips to libtorrent's thread: not on the loop
            queue, rate = await asyncio.to_thread(
                lambda: (handle.get_download_queue(), handle.status().download_payload_rate)
            )
        except RuntimeError:  # the torrent left the session meanwhile
            return
        if not any(not self.plan.has(p) for p in self._waiters):
            return
        needed = {p for p, _ in self._book.items()} | set(self._waiters) | set(self._anchors)
        stale = stale_bytes(queue, needed)
        if stale == 0 or stale < rate * STALE_SECONDS:
            return
        log.debug(
            "%s: cancelling %d bytes in flight no reader needs (%d B/s)", self.infohash, stale, rate
        )
        handle.clear_piece_deadlines()
        self.reassert()

    def reassert(self) -> None:
        """Give libtorrent every deadline the readers hold again, and ask for every
        piece a reader waits for (after deadlines were cleared or peers reconnected)."""
        for piece, ms in self._book.items():
            if piece not in self._waiters and not self.plan.has(piece):
                self.handle.set_piece_deadline(piece, ms)
        for piece in self._waiters:
            if not self.plan.has(piece):
                self._request(piece)
        for anchor in self._anchors:
            if not self._claimed(anchor) and not self.plan.has(anchor):
                self._hold(anchor)

    async def kick(self, piece: int) -> None:
        """A reader has waited `p2p.piece_kick_after` for `piece`: reconnect the peers if
        the piece made no progress since the last call.

        A transmission 3.00 seeder never answers a cancelled request (transmission#511),
        and libtorrent, which speaks the fast extension, waits for that answer before it
        asks anyone for the blocks again: with one seeder the stream stalls for good.
        Lowering the piece's priority does not make libtorrent forget the requests
        (measured); a new connection does. At most once per `RECONNECT_GAP` seconds.
        """
        if self.plan.has(piece) or self.failed is not None:
            return
        try:  # synchronous round trips to libtorrent's thread: not on the loop
            queue, peers = await asyncio.to_thread(
                lambda: (self.handle.get_download_queue(), self.handle.get_peer_info())
            )
        except RuntimeError:  # the torrent left the session meanwhile
            return
        if all(p.flags & lt.peer_info.remote_choked for p in peers):
            # Every peer chokes us: when to unchoke is theirs to decide, and progress is
            # measured again from their unchoke (it reconnected 7 ms after transmission's).
            self._late.pop(piece, None)
            return
        done = piece_progress(queue, piece)
        before = self._late.get(piece)
        self._late[piece] = done
        if before is None or done > before:
            return  # late but moving
        now = asyncio.get_running_loop().time()
        if now - self._reconnected_at < RECONNECT_GAP:
            return
        self._reconnected_at = now
        log.warning(
            "piece %d of %s made no progress: reconnecting to its peers", piece, self.infohash
        )
        self.handle.pause()
        self.handle.resume()
        self.reassert()

    @property
    def pending_deadlines(self) -> int:
        """Pieces some reader still asks for (0 once every reader is gone)."""
        return len(self._book)

    def withdraw(self, reader: int) -> None:
        abandoned = self._book.withdraw(reader)
        changes = self.plan.reader_left(reader)
        if not self.handle.is_valid():
            return  # the torrent left the session (a failure): nothing to tell libtorrent
        for piece in abandoned:
            self._abandon(piece)
        self._prioritize(changes)
        self._keep_anchors()
        if self._waiters:
            # Another reader is waiting (typically a player's seek racing the close of
            # its previous request): what this one had in flight must not delay it.
            task = asyncio.get_running_loop().create_task(self.make_way(), name="p2p:make-way")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _abandon(self, piece: int) -> None:
        """No reader wants `piece` any more: take its deadline back (an anchor's goes
        back to the anchor's)."""
        if piece in self._anchors and not self.plan.has(piece):
            self._hold(piece)
        elif piece not in self._waiters and not self.plan.has(piece):
            self.handle.reset_piece_deadline(piece)
            self.handle.piece_priority(piece, self.plan.priority(piece))  # reset leaves 1

    def on_read_piece(self, piece: int, data: bytes | None) -> None:
        waiters = self._waiters.get(piece)
        if not waiters:
            return
        if data is None:  # cancelled (e.g. a deadline reset): ask again
            self._request(piece)
            return
        if not self.piece_hashes:
            self._deliver(piece, data)
        else:  # on the loop: ~160 us per 256 KiB, 2.5 ms per 4 MiB (hashlib, 1.6 GB/s)
            self._check_and_deliver(piece, data, hashlib.sha1(data).digest())

    def _check_and_deliver(self, piece: int, data: bytes, digest: bytes) -> None:
        if digest == self.piece_hashes[piece]:
            self._deliver(piece, data)
            return
        # libtorrent hashes blocks as they arrive; a write that failed (a full disk) can
        # leave a piece it counts as had whose bytes are not on disk. Never hand those
        # out: have libtorrent check its files again; the readers ask again after it.
        log.error(
            "piece %d of %s read back from disk does not match its hash: rechecking",
            piece,
            self.infohash,
        )
        self.recheck()

    def _deliver(self, piece: int, data: bytes) -> None:
        waiters = self._waiters.pop(piece, None)
        if not waiters:
            return
        self._late.pop(piece, None)
        for fut in waiters:
            if not fut.done():
                fut.set_result(data)

    def recheck(self) -> None:
        """Re-hash the files on disk; readers' pieces are asked for again once the check
        is over (`reassert` on libtorrent's torrent_checked_alert)."""
        if not self.rechecking:
            self.rechecking = True
            self.handle.force_recheck()

    def fail_waiters(self, error: BaseException) -> None:
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(error)
        self._waiters.clear()


def piece_progress(download_queue: list[PartialPieceInfodict], piece: int) -> int:
    """Bytes of `piece` received, from libtorrent's download queue."""
    for entry in download_queue:
        if entry["piece_index"] == piece:
            return sum(
                b["block_size"] if b["state"] > BLOCK_REQUESTED else b["bytes_progress"]
                for b in entry["blocks"]
            )
    return 0


def stale_bytes(download_queue: list[PartialPieceInfodict], needed: set[int]) -> int:
    """Bytes requested from peers and not yet received, for pieces not in `needed`."""
    return sum(
        b["block_size"] - b["bytes_progress"]
        for entry in download_queue
        if entry["piece_index"] not in needed
        for b in entry["blocks"]
        if b["state"] == BLOCK_REQUESTED
    )
