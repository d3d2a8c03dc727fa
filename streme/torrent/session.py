"""The libtorrent session: its settings, and its alerts delivered into asyncio.

How this works: `TorrentSession.start()` creates the session from `P2PConfig` and hands
libtorrent one end of a non-blocking socketpair (`set_alert_fd`); the other end is
registered with `loop.add_reader`. libtorrent writes to it when its alert queue goes
from empty to non-empty, so `_pump` drains the socket and then pops *all* alerts at
once and passes each to the one `on_alert` callback (never polling, never
`set_alert_notify`, which deadlocks; the callback must not keep an alert past its call:
alerts die at the next `pop_alerts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

import libtorrent as lt

from streme.config import P2PConfig

log = logging.getLogger("streme.p2p")

ALERT_MASK = (
    lt.alert_category.error
    | lt.alert_category.status
    | lt.alert_category.storage
    | lt.alert_category.piece_progress
)


def session_settings(config: P2PConfig) -> lt.settings_pack:
    return {
        "listen_interfaces": config.listen_interfaces,
        "enable_dht": config.dht,
        "enable_lsd": config.lsd,
        "enable_upnp": config.upnp,
        "enable_natpmp": config.natpmp,
        "enable_outgoing_utp": config.utp and config.outgoing_utp,
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


class TorrentSession:
    def __init__(self, config: P2PConfig, on_alert: Callable[[lt.alert], None]) -> None:
        self._config = config
        self._on_alert = on_alert
        self._session: lt.session | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._alert_r: socket.socket | None = None
        self._alert_w: socket.socket | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._session = lt.session(session_settings(self._config))
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        self._alert_r, self._alert_w = r, w
        self._session.set_alert_fd(w.fileno())
        loop.add_reader(r.fileno(), self._pump)
        log.info("P2P engine listening on port %d", self._session.listen_port())

    def stop(self) -> None:
        if self._session is None:
            return
        if self._loop is not None and self._alert_r is not None:
            self._loop.remove_reader(self._alert_r.fileno())
        self._session.pause()
        self._session = None
        for sock in (self._alert_r, self._alert_w):
            if sock is not None:
                sock.close()

    @property
    def running(self) -> bool:
        return self._session is not None

    @property
    def listen_port(self) -> int:
        assert self._session is not None
        return self._session.listen_port()

    def add(self, params: lt.add_torrent_params) -> lt.torrent_handle:
        assert self._session is not None
        return self._session.add_torrent(params)

    def remove(self, handle: lt.torrent_handle) -> None:
        if self._session is not None:
            self._session.remove_torrent(handle)

    def _pump(self) -> None:
        assert self._alert_r is not None
        with contextlib.suppress(BlockingIOError):
            while self._alert_r.recv(4096):
                pass
        if self._session is None:
            return
        for alert in self._session.pop_alerts():
            try:
                self._on_alert(alert)
            except Exception:  # one alert's failure must not lose the rest of the batch
                log.exception("handling %s failed", type(alert).__name__)
