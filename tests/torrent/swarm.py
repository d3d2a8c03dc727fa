"""A real libtorrent seeder on 127.0.0.1 for P2P tests, and the server's P2P settings.

Seeder and server are on their own defaults but for what keeps them on loopback (DHT,
LSD, UPnP, NAT-PMP off; listening on 127.0.0.1): uTP is on, and the server finds the
seeder through a tracker (the session's opentracker, the `tracker` fixture), as a user's
server finds its peers.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import libtorrent as lt

if TYPE_CHECKING:
    from tests.torrent.peers import Tracker

# libtorrent's defaults, uTP (in and out) included, but for loopback only.
LOOPBACK_SETTINGS: lt.settings_pack = {
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    # Every peer here has the address 127.0.0.1.
    "allow_multiple_connections_per_ip": True,
    # Bandwidth quota (a seeder's upload_limit) handed out every 100 ms, not 500.
    "tick_interval": 100,
}


@dataclass
class Seeder:
    session: lt.session
    handle: lt.torrent_handle
    infohash: str
    torrent: bytes
    files: dict[str, bytes]
    tracker: Tracker | None = None

    @property
    def port(self) -> int:
        return self.session.listen_port()

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.session.remove_torrent(self.handle)
        retire(self.session)


# How long a stopped session is kept before it may be destroyed: see `retire`.
UTP_CONNECT_TIMEOUT = 3.0
_retired: list[tuple[float, lt.session]] = []


def retire(session: lt.session) -> None:
    """Pause `session` and keep it alive until its outgoing uTP connections have failed.

    opentracker hands every announcer back its own address (and those of peers gone
    since, until they time out), and libtorrent dials them over uTP first: to itself or a
    closed port on loopback that takes libtorrent's whole 3 s uTP connect timeout.
    Destroying the session meanwhile blocks until the attempts end, holding the GIL (the
    whole test process, a server's loop thread included, stands still). Kept here, it is
    destroyed once that is over: at a later `retire`, or at exit.
    """
    session.pause()
    now = time.monotonic()
    _retired[:] = [(at, s) for at, s in _retired if now - at < UTP_CONNECT_TIMEOUT + 1]
    _retired.append((now, session))


def make_torrent(
    root: Path,
    files: dict[str, bytes],
    piece_length: int = 64 * 1024,
    announce: str | None = None,
) -> tuple[bytes, str]:
    """Write `files` (paths under one top folder, or one file) under `root`.

    Returns the bencoded v1 .torrent for them (with `announce` as its tracker, if given)
    and its hex infohash. Nothing is seeded. Files are in libtorrent's directory listing
    order, which need not be the order given: read it back from the torrent.
    """
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    top = root / next(iter(files)).split("/")[0]
    ct = lt.create_torrent(lt.list_files(str(top)), piece_length, lt.create_torrent.v1_only)
    if announce is not None:
        ct.add_tracker(announce)
    lt.set_piece_hashes(ct, str(root))
    blob = bytes(lt.bencode(ct.generate()))
    return blob, str(lt.torrent_info(blob).info_hashes().v1)


def make_seeder(
    root: Path,
    files: dict[str, bytes],
    piece_length: int = 64 * 1024,
    upload_limit: int = 0,
    keep_fraction: float = 1.0,
    announce: str | None = None,
    tracker: Tracker | None = None,
) -> Seeder:
    """Write `files` (paths under one top folder, or one file) and seed them.

    With `keep_fraction` < 1, each file is cut to that fraction after the torrent is made
    and libtorrent checks what is left: the peer then has only the first pieces, so a
    downloader can get so far and no further. With `announce`, the torrent names that
    tracker and the seeder announces to it. With `tracker`, the same for that tracker,
    which is told to serve the infohash first; this returns once it hands the seeder out.
    """
    if tracker is not None:
        announce = tracker.announce
    blob, infohash = make_torrent(root, files, piece_length, announce)
    if tracker is not None:
        tracker.allow(infohash)  # before the seeder's first announce
    session = lt.session(LOOPBACK_SETTINGS)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(blob)
    params.save_path = str(root)
    if keep_fraction < 1.0:
        for rel, data in files.items():
            with open(root / rel, "r+b") as f:
                f.truncate(int(len(data) * keep_fraction))
    else:
        params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    if upload_limit:
        handle.set_upload_limit(upload_limit)
    wait_until_serving(handle)
    seeder = Seeder(session, handle, infohash, blob, files, tracker)
    if tracker is not None:
        tracker.wait_peer(infohash, seeder.peer)
    return seeder


def wait_until_serving(handle: lt.torrent_handle, timeout: float = 20.0) -> None:
    """Block until the seeder's torrent is checked and active: a peer connecting earlier
    is reset (the infohash is not known yet) and then waits out libtorrent's reconnect
    delay."""
    deadline = time.monotonic() + timeout
    busy = (
        lt.torrent_status.states.checking_files,
        lt.torrent_status.states.checking_resume_data,
    )
    while True:
        status = handle.status()
        if status.state not in busy and not status.paused:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"seeder still {status.state} after {timeout:g} s")
        time.sleep(0.01)


def random_bytes(size: int, seed: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def p2p_settings(tracker: Tracker | None, **extra: object) -> dict[str, object]:
    """The server's P2P settings: streme's defaults (uTP accepted, not dialled) but for
    loopback only, and `tracker`'s announce URL as its one tracker, where it finds the
    seeders (make them with that tracker). None: no tracker.

    A test that changes a setting passes it in `extra`, next to the reason.
    """
    return {
        "enabled": True,
        "listen_interfaces": "127.0.0.1:0",
        "dht": False,
        "lsd": False,
        "upnp": False,
        "natpmp": False,
        "trackers": [] if tracker is None else [tracker.announce],
        # Bounds on the waits (streme's defaults: 60 s): a test that cannot get its
        # metadata or a piece fails in 20 s, with the server's own error.
        "metadata_timeout": 20,
        "stall_timeout": 20,
        **extra,
    }


__all__ = [
    "Seeder",
    "make_seeder",
    "make_torrent",
    "os",
    "p2p_settings",
    "random_bytes",
    "retire",
    "sha256",
]
