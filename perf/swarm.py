"""Loopback swarms for the perf sections: opentracker and one seeder announcing to it.

`swarm` starts, for one measurement, a fresh opentracker on 127.0.0.1 (its whitelist
holding the torrent's infohash) and a fresh seeder of one kind (`SEEDERS`), seeding the
torrent's files in place and announcing there; it yields once the tracker counts the
seeder (a scrape's `complete`), so a client given the tracker finds it as a user's does.
Both are stopped when the block ends: the processes by their PIDs, a libtorrent seeder's
session retired (`tests.torrent.swarm.retire`) so that destroying it never stalls this
process. The kinds, each on its own defaults but for loopback:

- libtorrent: in this process (uTP in and out on; DHT, LSD, UPnP, NAT-PMP off; several
  connections from 127.0.0.1 allowed), optionally with a per-torrent upload limit (a
  session limit would not apply to loopback peers). Its settings are the caller's:
  `LOOPBACK_SETTINGS` (the tests', with a 100 ms bandwidth tick) or `LIBTORRENT_DEFAULTS`
  (libtorrent's own 500 ms tick);
- aria2c (TCP only) and transmission-daemon (TCP and uTP): `tests.torrent.peers`'.

With `warm`, the seeder has served one piece to a throwaway client first (`warm_up`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import libtorrent as lt

from tests.torrent.peers import (
    ARIA2C,
    TRANSMISSION_DAEMON,
    Processes,
    Torrent,
    Tracker,
    start_aria2,
    start_transmission,
)
from tests.torrent.swarm import LOOPBACK_SETTINGS, retire, wait_until_serving

# libtorrent's own defaults on loopback: LOOPBACK_SETTINGS but for its bandwidth tick
# (upload quota handed out every 500 ms, libtorrent's default, rather than every 100 ms).
LIBTORRENT_DEFAULTS: lt.settings_pack = LOOPBACK_SETTINGS.copy()
del LIBTORRENT_DEFAULTS["tick_interval"]


def warm_up(workdir: Path, torrent: Torrent, peer: str, timeout: float = 20) -> None:
    """Take one piece from the seeder at `peer` (host:port) with a throwaway libtorrent
    client that knows no tracker (the measured client is handed the seeder alone).

    A fresh libtorrent seeder with an upload limit serves its very first peer's first
    piece only after ~1.1 s (measured at 20 MiB/s, with or without 2 s of idling first;
    every later peer gets one in milliseconds), whoever that peer is.
    """
    meta = cast(dict[bytes, Any], lt.bdecode(torrent.blob))
    meta.pop(b"announce", None)
    meta.pop(b"announce-list", None)
    session = lt.session({**LOOPBACK_SETTINGS, "alert_mask": 0})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bencode(meta))
    params.save_path = str(workdir / f"warm-{time.time_ns()}")
    host, port = peer.rsplit(":", 1)
    params.peers = [(host, int(port))]
    handle = session.add_torrent(params)
    deadline = time.monotonic() + timeout
    try:
        while handle.status().num_pieces < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the warm-up client got no piece in {timeout:g} s")
            time.sleep(0.01)
    finally:
        session.remove_torrent(handle, lt.session.delete_files)
        retire(session)


def seed_libtorrent(
    torrent: Torrent, tracker: Tracker, upload_limit: int, settings: lt.settings_pack
) -> tuple[str, Callable[[], None]]:
    """A libtorrent session in this process seeding `torrent` to `tracker`, serving;
    returns its peer address and how to stop it."""
    session = lt.session({**settings, "alert_mask": 0})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent.blob)
    params.save_path = str(torrent.root)
    params.trackers = [tracker.announce]
    params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)

    def stop() -> None:
        session.remove_torrent(handle)
        retire(session)

    try:
        if upload_limit:
            handle.set_upload_limit(upload_limit)
        wait_until_serving(handle)
    except BaseException:
        stop()
        raise
    return f"127.0.0.1:{session.listen_port()}", stop


def seed_aria2(processes: Processes, torrent: Torrent, _home: Path) -> str:
    return start_aria2(processes, torrent)


def seed_transmission(processes: Processes, torrent: Torrent, home: Path) -> str:
    return start_transmission(processes, home).seed(torrent)


# kind -> installed?, how to start it (a process, stopped by `Processes`): its peer address
SEEDERS: dict[str, tuple[bool, Callable[[Processes, Torrent, Path], str] | None]] = {
    "aria2c": (ARIA2C is not None, seed_aria2),
    "libtorrent": (True, None),  # in this process: `seed_libtorrent`
    "transmission": (TRANSMISSION_DAEMON is not None, seed_transmission),
}


@contextmanager
def swarm(
    workdir: Path,
    torrent: Torrent,
    tracker_port: int,
    kind: str = "libtorrent",
    *,
    upload_limit: int = 0,
    settings: lt.settings_pack = LOOPBACK_SETTINGS,
    warm: bool = False,
) -> Iterator[Tracker]:
    """A fresh tracker on `tracker_port` and a fresh seeder of `torrent` of `kind` that it
    counts. libtorrent only: its upload limited to `upload_limit` bytes/s (0: none), on
    `settings`. With `warm`, the seeder has served one piece (`warm_up`) first."""
    processes = Processes()
    stop: Callable[[], None] | None = None
    try:
        tracker = Tracker(workdir / f"tracker-{time.time_ns()}", tracker_port, processes)
        tracker.start(torrent.infohash)
        start = SEEDERS[kind][1]
        if start is None:
            peer, stop = seed_libtorrent(torrent, tracker, upload_limit, settings)
        else:
            peer = start(processes, torrent, workdir / f"{kind}-{time.time_ns()}")
        tracker.wait_seeders(torrent.infohash)
        if warm:
            warm_up(workdir, torrent, peer)
        yield tracker
    finally:
        if stop is not None:
            stop()
        processes.stop_all()
