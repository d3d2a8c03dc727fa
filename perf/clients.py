"""The two clients the perf sections compare, started on a loopback swarm (perf.swarm).

- streme: `streme serve` on its defaults but for what keeps it on loopback (`LOOPBACK_ENV`:
  DHT, LSD, UPnP, NAT-PMP off; listening on 127.0.0.1) and `STREME_TRACKERS` naming the
  tracker (plus the one setting a caller may change); an empty cache of its own (holding
  `<infohash>.torrent` if asked). It is started and waited for until it listens;
- peerflix (its library, as its CLI uses it: perf/peerflix_run.js, DHT off) given a magnet
  whose `tr=` is the tracker, or the .torrent; not waited for (it takes one torrent per
  process, so a caller's clock starts at its launch).

Each is a `Client` (its process, its port) that the caller stops by its PID
(`Client.stop`), or the `streme`/`peerflix` context managers do. Logs go to streme.log
and peerflix.log in the work directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from perf.servers import free_port
from tests.torrent.peers import Torrent, Tracker, stop_process

NODE_DIR = Path(__file__).with_name(".node")
PEERFLIX_RUN = Path(__file__).with_name("peerflix_run.js")
# streme as a user starts it, but kept on loopback.
LOOPBACK_ENV = {
    "STREME_DHT": "0",
    "STREME_LSD": "0",
    "STREME_UPNP": "0",
    "STREME_P2P_NATPMP": "0",
    "STREME_P2P_LISTEN_INTERFACES": "127.0.0.1:0",
}


def peerflix_installed() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "peerflix").exists()


@dataclass
class Client:
    proc: subprocess.Popen[bytes]
    port: int
    path: str  # the stream's, on 127.0.0.1:port
    files: Path  # where it keeps what it downloads (streme: its cache directory)
    launched: float  # time.perf_counter() at its spawn
    launched_epoch: float  # time.time() at its spawn

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def stop(self) -> None:
        stop_process(self.proc)


def wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until 127.0.0.1:`port` accepts; RuntimeError if `proc` exits, OSError at
    `deadline` (monotonic)."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_streme(
    workdir: Path,
    torrent: Torrent,
    tracker: Tracker,
    *,
    env: dict[str, str] | None = None,
    with_torrent_file: bool = False,
    log_level: str | None = None,
    timeout: float = 30.0,
) -> Client:
    """`streme serve` on a free port with an empty cache (`with_torrent_file`: holding
    `<infohash>.torrent`), `env` on top of LOOPBACK_ENV and STREME_TRACKERS; `log_level`
    None: streme's default. Returns once it listens (`timeout`; then it is stopped)."""
    port = free_port()
    cache = workdir / f"streme-{time.time_ns()}"
    cache.mkdir()
    if with_torrent_file:
        (cache / f"{torrent.infohash}.torrent").write_bytes(torrent.blob)
    full_env = {**os.environ, **LOOPBACK_ENV, "STREME_TRACKERS": tracker.announce, **(env or {})}
    streme = Path(sys.executable).with_name("streme")
    args = [str(streme), "serve", "--port", str(port), "--cache-dir", str(cache)]
    if log_level is not None:
        args += ["--log-level", log_level]
    launched, launched_epoch = time.perf_counter(), time.time()
    proc = _spawn(args, full_env, workdir / "streme.log")
    try:
        wait_port(port, proc, time.monotonic() + timeout)
    except BaseException:
        stop_process(proc)
        raise
    path = f"/stream/proxy/{torrent.infohash}"
    return Client(proc, port, path, cache, launched, launched_epoch)


def start_peerflix(workdir: Path, torrent: Torrent, tracker: Tracker, source: str) -> Client:
    """peerflix_run.js given `source` ("magnet": a magnet whose `tr=` is the tracker;
    ".torrent": the torrent's file), on a free port; not waited for."""
    port = free_port()
    if source == ".torrent":
        given = str(torrent.path)
    else:
        tr = urllib.parse.quote(tracker.announce, safe="")
        given = f"magnet:?xt=urn:btih:{torrent.infohash}&tr={tr}"
    files = workdir / f"pf-{time.time_ns()}"
    env = {**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")}
    args = ["node", str(PEERFLIX_RUN), given, str(port), "-", str(files)]
    launched, launched_epoch = time.perf_counter(), time.time()
    proc = _spawn(args, env, workdir / "peerflix.log")
    return Client(proc, port, "/", files, launched, launched_epoch)


@contextmanager
def _stopped_after(client: Client, remove_files: bool) -> Iterator[Client]:
    try:
        yield client
    finally:
        client.stop()
        if remove_files:
            shutil.rmtree(client.files, ignore_errors=True)


@contextmanager
def streme(
    workdir: Path,
    torrent: Torrent,
    tracker: Tracker,
    *,
    env: dict[str, str] | None = None,
    with_torrent_file: bool = False,
    log_level: str | None = None,
    timeout: float = 30.0,
    remove_files: bool = False,
) -> Iterator[Client]:
    """`start_streme`, stopped (and with `remove_files`, its cache removed) at the end."""
    client = start_streme(
        workdir,
        torrent,
        tracker,
        env=env,
        with_torrent_file=with_torrent_file,
        log_level=log_level,
        timeout=timeout,
    )
    with _stopped_after(client, remove_files):
        yield client


@contextmanager
def peerflix(
    workdir: Path, torrent: Torrent, tracker: Tracker, source: str, remove_files: bool = False
) -> Iterator[Client]:
    """`start_peerflix`, stopped (and with `remove_files`, its download removed) at the end."""
    with _stopped_after(start_peerflix(workdir, torrent, tracker, source), remove_files) as c:
        yield c
