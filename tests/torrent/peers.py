"""Independent BitTorrent programs on 127.0.0.1: aria2 and transmission seeders, opentracker.

Nothing in streme may depend on its peers being libtorrent. These fixtures start other
implementations as real processes, loopback only (no DHT, LPD, PEX, UPnP or NAT-PMP;
otherwise on their own defaults, uTP included where they have it), each in its own
directory under the test's tmp_path. A seeder announces to the session's opentracker (the
`tracker` fixture, tests/conftest.py) when its torrent names it, and the server finds it
there, as a user's server finds peers. Every wait is bounded, and every process is
terminated, then killed, by its PID when the test (or, for the tracker, the session)
ends. A fixture whose program is not installed skips the test (`make system-deps`
installs them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

from tests.nginx import free_port
from tests.torrent.swarm import make_torrent


def find_command(name: str) -> str | None:
    """`name` on PATH or in /usr/sbin, /sbin (where scripts/system-deps.sh looks too)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


ARIA2C = find_command("aria2c")
TRANSMISSION_DAEMON = find_command("transmission-daemon")
OPENTRACKER = find_command("opentracker")
START_TIMEOUT = 20.0  # a program to listen, or a seeder to verify its data and seed


@dataclass
class Torrent:
    """Files written under `root` and their v1 .torrent (saved as `path`), not seeded yet.

    With a `tracker`, the torrent names it, the tracker serves its infohash, and a seeder
    fixture returns only once the tracker hands the seeder out."""

    root: Path
    path: Path
    infohash: str
    blob: bytes
    files: dict[str, bytes]
    tracker: Tracker | None = None


def write_torrent(
    root: Path,
    files: dict[str, bytes],
    announce: str | None = None,
    piece_length: int = 65536,
    tracker: Tracker | None = None,
) -> Torrent:
    """Write `files` under `root` and the .torrent next to it (`root`.torrent).

    With `tracker`, the torrent announces to it (`announce` is then its URL) and the
    tracker is told to serve the infohash.
    """
    if tracker is not None:
        announce = tracker.announce
    blob, infohash = make_torrent(root, files, piece_length, announce)
    path = root.with_suffix(".torrent")
    path.write_bytes(blob)
    if tracker is not None:
        tracker.allow(infohash)
    return Torrent(root, path, infohash, blob, files, tracker)


def wait_announced(torrent: Torrent, peer: str) -> None:
    """If `torrent` names a tracker, until that tracker hands out `peer` for it."""
    if torrent.tracker is not None:
        torrent.tracker.wait_peer(torrent.infohash, peer)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s: only this process, by its PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until something accepts on 127.0.0.1:`port`; fail if `proc` exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    program = str(proc.args[0] if isinstance(proc.args, list) else proc.args)
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{program} exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{program} not listening on {port}:\n{log_tail(log)}")
            time.sleep(0.05)


class Processes:
    """The processes a fixture started, stopped by PID in reverse order at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        errors: list[BaseException] = []
        for proc in reversed(self.procs):
            try:
                stop_process(proc)
            except Exception as exc:  # stop the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


# -- aria2 -------------------------------------------------------------------------------


def start_aria2(processes: Processes, torrent: Torrent) -> str:
    """aria2c seeding `torrent` from its files; returns its peer address host:port.

    It announces to the torrent's tracker, if it names one (see `start_aria2_many`).
    """
    return start_aria2_many(processes, [torrent])


def start_aria2_many(processes: Processes, torrents: list[Torrent]) -> str:
    """One aria2c seeding every torrent in `torrents`, whose files must all be under the
    same root (the first torrent's); returns its peer address host:port (one listening
    port for all of them). Each announces to its torrent's tracker, if it names one; with
    a `Torrent.tracker`, this returns once that tracker hands aria2c out for it."""
    assert ARIA2C is not None
    root = torrents[0].root
    assert all(t.root == root for t in torrents), "one aria2c seeds from one directory"
    port = free_port()
    log = root.with_name(f"{root.name}-aria2.log")
    proc = processes.start(
        [
            ARIA2C,
            "--seed-ratio=0.0",
            "--seed-time=600",
            "--check-integrity=true",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            f"--listen-port={port}",
            "--interface=127.0.0.1",
            "--console-log-level=warn",
            "--summary-interval=0",
            # Every torrent seeds at once (aria2's default is 5 downloads at a time).
            f"--max-concurrent-downloads={max(5, len(torrents))}",
            f"--dir={root}",
            *(str(t.path) for t in torrents),
        ],
        log,
    )
    wait_listening(proc, port, log)
    peer = f"127.0.0.1:{port}"
    for torrent in torrents:
        wait_announced(torrent, peer)
    return peer


@pytest.fixture
def aria2_seeder(processes: Processes) -> Callable[[Torrent], str]:
    """Seed a Torrent with aria2c: `peer = aria2_seeder(torrent)`."""
    if ARIA2C is None:
        pytest.skip("aria2 not installed (make system-deps installs it)")
    return lambda torrent: start_aria2(processes, torrent)


# -- transmission ------------------------------------------------------------------------

# Transmission answers every 500 ms: a piece is never that late unless it is lost.
TR_STALL_TIMEOUT = 8
# The settings the transmission tests change from p2p_settings', each next to its reason.
TR_P2P: dict[str, object] = {
    # p2p.stall_timeout (p2p_settings: 20 s): a lost piece fails the test in 8 s.
    "stall_timeout": TR_STALL_TIMEOUT,
    # p2p.piece_kick_after (streme's default: 3 s): when libtorrent cancels requests in
    # flight to a transmission 3.00 seeder (its time-critical picking, or a seek making
    # way), transmission never answers the CANCELs although both sides negotiated the
    # fast extension (BEP 6; transmission#511, fixed in 4.0), and libtorrent waits for
    # those blocks from that peer. The server reconnects to its peers when a piece it
    # waits for makes no progress over two of these periods; one second, not three,
    # keeps the streams short.
    "piece_kick_after": 1,
}

TR_STATUS_SEED = 6  # tr_torrent_activity: 0 stopped, 1/2 verify, 3/4 download, 5/6 seed
TR_STATUS_CHECK = (1, 2)


@dataclass
class Transmission:
    """A transmission-daemon (3.00 on Debian 12) with its own config dir, over JSON-RPC.

    Transmission unchokes peers only on its rechoke round, every 10 s from when its first
    torrent started (RECHOKE_PERIOD_MSEC in libtransmission/peer-mgr.c), so a downloader's
    first piece can wait up to 10 s. `rechoke()` runs that round at once: starting any
    torrent does (tr_peerMgrStartTorrent calls rechokePulse), so it starts and stops a
    paused dummy magnet. `fast_unchoke()` does so whenever a peer has said it is interested
    and is still choked, which is what transmission's own round would do a few seconds later.
    """

    proc: subprocess.Popen[bytes]
    rpc_port: int
    peer_port: int
    log: Path
    session_id: str = ""
    ids: dict[str, int] = field(default_factory=dict)
    rechokes: int = 0
    _dummy: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.peer_port}"

    def rpc(self, method: str, **arguments: Any) -> dict[str, Any]:
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        with self._lock:  # one session id, shared with the fast-unchoke thread
            for _ in range(2):  # the first call learns the CSRF session id from a 409
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.rpc_port}/transmission/rpc",
                    data=body,
                    headers={"X-Transmission-Session-Id": self.session_id},
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as resp:
                        reply: dict[str, Any] = json.loads(resp.read())
                except urllib.error.HTTPError as err:
                    with err:
                        if err.code != 409:
                            raise
                        self.session_id = err.headers["X-Transmission-Session-Id"]
                        continue
                if reply.get("result") != "success":
                    raise RuntimeError(f"transmission {method}: {reply}")
                return dict(reply.get("arguments", {}))
        raise RuntimeError(f"transmission {method}: no session id")

    def status(self, infohash: str) -> dict[str, Any]:
        fields = ["status", "percentDone", "error", "errorString", "peers"]
        found = self.rpc("torrent-get", ids=[self.ids[infohash]], fields=fields)["torrents"]
        assert found, f"transmission lost {infohash}"
        return dict(found[0])

    def peers(self, infohash: str) -> list[dict[str, Any]]:
        return list(self.status(infohash)["peers"])

    def seed(self, torrent: Torrent) -> str:
        """Add `torrent` (its files already in place), wait until verified and seeding,
        and, with a `Torrent.tracker`, until that tracker hands this daemon out."""
        added = self.rpc(
            "torrent-add",
            metainfo=base64.b64encode(torrent.blob).decode(),
            **{"download-dir": str(torrent.root), "paused": False},
        )
        entry = added.get("torrent-added") or added["torrent-duplicate"]
        self.ids[torrent.infohash] = int(entry["id"])
        assert entry["hashString"] == torrent.infohash
        deadline = time.monotonic() + START_TIMEOUT
        verified = False
        while True:
            state = self.status(torrent.infohash)
            if state["error"]:
                pytest.fail(f"transmission: {state['errorString']}\n{log_tail(self.log)}")
            if state["status"] == TR_STATUS_SEED and state["percentDone"] == 1:
                wait_announced(torrent, self.peer)
                return self.peer
            if state["status"] not in TR_STATUS_CHECK and not verified:
                # It found the files but did not check them (yet): ask once.
                self.rpc("torrent-verify", ids=[self.ids[torrent.infohash]])
                verified = True
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail(f"transmission never seeded: {state}\n{log_tail(self.log)}")
            time.sleep(0.05)

    def rechoke(self) -> None:
        """Run transmission's choke round now (see the class docstring)."""
        if self._dummy is None:
            magnet = "magnet:?xt=urn:btih:" + hashlib.sha1(b"streme-rechoke").hexdigest()
            added = self.rpc("torrent-add", filename=magnet, paused=True)
            self._dummy = int((added.get("torrent-added") or added["torrent-duplicate"])["id"])
        self.rpc("torrent-start-now", ids=[self._dummy])
        self.rpc("torrent-stop", ids=[self._dummy])
        self.rechokes += 1

    def fast_unchoke(self, infohash: str) -> None:
        """From now on, `rechoke()` as soon as a peer of `infohash` is interested and choked."""
        assert self._thread is None

        def run() -> None:
            while not self._stop.wait(0.05):
                try:
                    waiting = any(
                        p["peerIsInterested"] and p["peerIsChoked"] for p in self.peers(infohash)
                    )
                    if waiting:
                        self.rechoke()
                        self._stop.wait(0.5)  # the unchoke goes out on the next peer pulse
                except Exception:  # a failed poll is retried; the test reports real trouble
                    if self.proc.poll() is not None:
                        return  # the daemon is gone; the test will say why

        self._thread = threading.Thread(target=run, name="transmission-unchoke", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)


def start_transmission(processes: Processes, home: Path) -> Transmission:
    assert TRANSMISSION_DAEMON is not None
    config = home / "config"
    config.mkdir(parents=True)
    rpc_port, peer_port = free_port(), free_port()
    settings = {
        # Everything that could reach past loopback is off. uTP stays on, as transmission
        # ships it (its UDP socket is bound to 127.0.0.1 like its TCP one).
        "dht-enabled": False,
        "lpd-enabled": False,
        "pex-enabled": False,
        "port-forwarding-enabled": False,
        "blocklist-enabled": False,
        "bind-address-ipv4": "127.0.0.1",
        "bind-address-ipv6": "::1",
        "peer-port": peer_port,
        "peer-port-random-on-start": False,
        "rpc-enabled": True,
        "rpc-bind-address": "127.0.0.1",
        "rpc-port": rpc_port,
        "rpc-authentication-required": False,
        "rpc-whitelist-enabled": True,
        "rpc-whitelist": "127.0.0.1",
        "download-dir": str(home),
        "incomplete-dir-enabled": False,
        "watch-dir-enabled": False,
        "start-added-torrents": True,
        # Seed for ever, at full speed.
        "ratio-limit-enabled": False,
        "idle-seeding-limit-enabled": False,
        "speed-limit-up-enabled": False,
        "alt-speed-enabled": False,
        "queue-stalled-enabled": False,
        "seed-queue-enabled": False,
        "download-queue-enabled": False,
    }
    (config / "settings.json").write_text(json.dumps(settings, indent=1))
    log = home / "transmission.log"
    proc = processes.start(
        [
            TRANSMISSION_DAEMON,
            "--foreground",
            f"--config-dir={config}",
            "--no-auth",
            "--rpc-bind-address=127.0.0.1",
            f"--port={rpc_port}",
            "--allowed=127.0.0.1",
            "--bind-address-ipv4=127.0.0.1",
            "--bind-address-ipv6=::1",
            f"--peerport={peer_port}",
            "--no-dht",
            "--no-lpd",
            "--no-portmap",
            "--no-blocklist",
            "--no-watch-dir",
            "--no-incomplete-dir",
            "--no-global-seedratio",
            f"--download-dir={home}",
            "--log-info",
        ],
        log,
    )
    wait_listening(proc, rpc_port, log)
    daemon = Transmission(proc, rpc_port, peer_port, log)
    daemon.rpc("session-get")  # learns the session id; fails loudly if RPC is not up
    return daemon


@pytest.fixture
def transmission_seeder(
    processes: Processes, tmp_path: Path
) -> Iterator[Callable[..., Transmission]]:
    """Seed a Torrent with a fresh transmission-daemon: `daemon = transmission_seeder(t)`.

    By default the daemon unchokes an interested peer at once (`fast_unchoke`) rather than
    on its next 10-second round; `fast_unchoke=False` leaves transmission's timing alone.
    """
    if TRANSMISSION_DAEMON is None:
        pytest.skip("transmission-daemon not installed (make system-deps installs it)")
    daemons: list[Transmission] = []

    def seed(torrent: Torrent, fast_unchoke: bool = True) -> Transmission:
        home = tmp_path / f"transmission-{len(daemons) + 1}"
        daemon = start_transmission(processes, home)
        daemons.append(daemon)
        daemon.seed(torrent)
        if fast_unchoke:
            daemon.fast_unchoke(torrent.infohash)
        return daemon

    try:
        yield seed
    finally:
        for daemon in daemons:
            daemon.close()


# -- opentracker ---------------------------------------------------------------------------

# A peer that is never there: the tracker probes of `Tracker.peers` and `Tracker.allow`
# announce as it (opentracker keys peers by address; nothing listens on port 1).
PROBE_PEER_ID = b"-streme-test-probe--"
PROBE_PORT = 1


@dataclass
class Tracker:
    """opentracker on 127.0.0.1 (HTTP only). Debian builds it with a whitelist: it answers
    only for the infohashes in its whitelist file, which it reads again on SIGHUP, so one
    tracker serves a whole test session: `allow(infohash)` adds one."""

    home: Path
    port: int
    processes: Processes
    proc: subprocess.Popen[bytes] | None = None
    allowed: set[str] = field(default_factory=set)

    @property
    def announce(self) -> str:
        return f"http://127.0.0.1:{self.port}/announce"

    @property
    def whitelist(self) -> Path:
        return self.home / "whitelist.txt"

    def start(self, *infohashes: str) -> None:
        assert OPENTRACKER is not None
        assert self.proc is None, "started already"
        self.home.mkdir(parents=True, exist_ok=True)
        # As root it chroots to -d and drops to `nobody`, who must read the whitelist.
        self.home.chmod(0o755)
        self.allowed.update(infohashes)
        self.whitelist.write_text("".join(f"{h}\n" for h in infohashes))
        self.whitelist.chmod(0o644)
        log = self.home.with_name(f"{self.home.name}.log")
        # -i before -p binds that port on that address only; with a -p given there is no
        # default 0.0.0.0:6969 (TCP or UDP). The whitelist path is opened after the
        # chroot (as root) or chdir (otherwise) into -d, hence relative; so is every
        # reload.
        args = [OPENTRACKER, "-i", "127.0.0.1", "-p", str(self.port), "-d", str(self.home)]
        self.proc = self.processes.start([*args, "-w", self.whitelist.name], log)
        wait_listening(self.proc, self.port, log)

    def allow(self, *infohashes: str, timeout: float = START_TIMEOUT) -> None:
        """Add `infohashes` to the whitelist and have the running tracker read it again
        (SIGHUP); returns once it answers announces for each of them."""
        assert self.proc is not None, "not started"
        new = [h for h in infohashes if h not in self.allowed]
        if not new:
            return
        with open(self.whitelist, "a") as f:
            f.write("".join(f"{h}\n" for h in new))
        self.allowed.update(new)
        self.proc.send_signal(signal.SIGHUP)
        # A scrape cannot tell: opentracker answers an empty one for an infohash it does
        # not serve, as for one it serves with no peers yet. An announce is refused
        # ("failure reason") until the reload.
        deadline = time.monotonic() + timeout
        for infohash in new:
            while self.refuses(infohash):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    pytest.fail(f"opentracker never allowed {infohash} after SIGHUP")
                time.sleep(0.02)

    def refuses(self, infohash: str) -> bool:
        """Whether the tracker refuses announces for `infohash` (not in its whitelist).

        The probe announces as a peer that is never there, then as stopped, which takes
        it off the list again. (A `stopped` announce alone is never refused.)
        """
        reply = self._announce(infohash, left=1)
        if b"failure reason" in reply:
            return True
        self._announce(infohash, event="stopped")
        return False

    def peers(self, infohash: str) -> set[str]:
        """The host:port peers the tracker hands out for `infohash` now.

        It answers only an announce: the probe announces as a leecher that is never
        there, then as stopped, which takes it off the list again.
        """
        reply = self._announce(infohash, left=1, numwant=200)
        self._announce(infohash, event="stopped")
        decoded: Any = lt.bdecode(reply)
        if not isinstance(decoded, dict) or b"failure reason" in decoded:
            pytest.fail(f"opentracker refused {infohash}: {reply[:200]!r}")
        compact = bytes(decoded.get(b"peers", b""))  # BEP 23: 4 bytes IPv4, 2 bytes port
        found = set()
        for at in range(0, len(compact) - 5, 6):
            ip = socket.inet_ntoa(compact[at : at + 4])
            port = int.from_bytes(compact[at + 4 : at + 6], "big")
            found.add(f"{ip}:{port}")
        found.discard(f"127.0.0.1:{PROBE_PORT}")
        return found

    def _announce(self, infohash: str, **fields: object) -> bytes:
        query = {
            "peer_id": PROBE_PEER_ID,
            "port": PROBE_PORT,
            "uploaded": 0,
            "downloaded": 0,
            "left": 0,
            "compact": 1,
            **fields,
        }
        # quote, not urlencode: opentracker reads "+" as "+", not as a space (0x20).
        quoted = urllib.parse.quote(bytes.fromhex(infohash), safe="")
        rest = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        with urllib.request.urlopen(f"{self.announce}?info_hash={quoted}&{rest}", timeout=5) as r:
            return bytes(r.read())

    def wait_peer(self, infohash: str, peer: str, timeout: float = START_TIMEOUT) -> float:
        """Until the tracker hands out `peer` (host:port) for `infohash`: a seeder has
        announced. Returns the seconds it took. (A seeder count would not do: a stopped
        peer of an earlier test with the same infohash may still be listed.)"""
        started = time.monotonic()
        while True:
            found = self.peers(infohash)
            if peer in found:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                pytest.fail(f"{peer} never announced {infohash} to the tracker: {found}")
            time.sleep(0.05)

    def scrape(self, infohash: str) -> dict[str, int]:
        """{'complete': seeders, 'incomplete': leechers, 'downloaded': n} for `infohash`."""
        # quote, not urlencode: opentracker reads "+" as "+", not as a space (0x20).
        quoted = urllib.parse.quote(bytes.fromhex(infohash), safe="")
        url = f"http://127.0.0.1:{self.port}/scrape?info_hash={quoted}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read()
        return scrape_counts(body)

    def wait_seeders(self, infohash: str, count: int = 1, timeout: float = START_TIMEOUT) -> float:
        """Until `count` seeders have announced `infohash`; returns the seconds it took."""
        started = time.monotonic()
        while True:
            counts = self.scrape(infohash)
            if counts.get("complete", 0) >= count:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                pytest.fail(f"no {count} seeders announced {infohash} to the tracker: {counts}")
            time.sleep(0.05)


def scrape_counts(body: bytes) -> dict[str, int]:
    """The integer fields of a one-torrent bencoded scrape reply (`d5:filesd20:<hash>d...`)."""
    counts: dict[str, int] = {}
    for key in ("complete", "incomplete", "downloaded"):
        token = f"{len(key)}:{key}i".encode()
        at = body.find(token)
        if at >= 0:
            end = body.index(b"e", at + len(token))
            counts[key] = int(body[at + len(token) : end])
    return counts


def run_tracker(home: Path) -> Iterator[Tracker]:
    """A started opentracker with an empty whitelist (`allow` adds to it), stopped by its
    PID when the generator ends: the body of the session's `tracker` fixture."""
    if OPENTRACKER is None:
        pytest.skip("opentracker not installed (make system-deps installs it)")
    processes = Processes()
    try:
        tracker = Tracker(home, free_port(), processes)
        tracker.start()
        yield tracker
    finally:
        processes.stop_all()


__all__ = [
    "ARIA2C",
    "OPENTRACKER",
    "TRANSMISSION_DAEMON",
    "TR_P2P",
    "TR_STALL_TIMEOUT",
    "Processes",
    "Torrent",
    "Tracker",
    "Transmission",
    "aria2_seeder",
    "processes",
    "run_tracker",
    "start_aria2",
    "start_aria2_many",
    "start_transmission",
    "stop_process",
    "transmission_seeder",
    "wait_announced",
    "write_torrent",
]
