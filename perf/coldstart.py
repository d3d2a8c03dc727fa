"""Cold start on defaults: a cache miss's first byte, each kind of seeder found via a tracker.

For every seeder kind (aria2c: TCP only; libtorrent and transmission: TCP and uTP, each on
its own defaults) and every source (a magnet, so metadata comes from the peer; or the
.torrent at hand), each round starts afresh: opentracker on 127.0.0.1, the seeder
(announcing there), then one client:

- streme: `streme serve` on its defaults, but for what keeps it on loopback (DHT, LSD,
  UPnP, NAT-PMP off; listening on 127.0.0.1) and `STREME_TRACKERS` naming the tracker; an
  empty cache (with `<infohash>.torrent` in it for the .torrent source). The clock starts
  at the request to the running server;
- peerflix: given the magnet (or the .torrent), DHT off, the tracker from the magnet. Its
  clock starts at its launch (it takes one torrent per process).

Each prints the first body byte of `GET bytes=0-`, and the first 8 MiB. Variants of
streme (`--variants`) name the one setting they change. Every process is stopped by its
PID; every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from perf.p2p import NODE_DIR, read_body, request
from perf.servers import free_port
from tests.torrent.peers import (
    ARIA2C,
    OPENTRACKER,
    TRANSMISSION_DAEMON,
    Processes,
    Torrent,
    Tracker,
    start_aria2,
    start_transmission,
    stop_process,
    write_torrent,
)
from tests.torrent.swarm import random_bytes, wait_until_serving

MiB = 1024 * 1024
SIZE = 64 * MiB
PIECE = 256 * 1024
TIMEOUT = 30.0

# streme as a user starts it, but kept on loopback.
LOOPBACK_ENV = {
    "STREME_DHT": "0",
    "STREME_LSD": "0",
    "STREME_UPNP": "0",
    "STREME_P2P_NATPMP": "0",
    "STREME_P2P_LISTEN_INTERFACES": "127.0.0.1:0",
}
# name -> the one setting it changes from streme's defaults
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "outgoing uTP on": {"STREME_P2P_OUTGOING_UTP": "1"},
    "uTP off": {"STREME_P2P_UTP": "0"},
}


@dataclass
class Sample:
    first_byte_s: float
    first_8mib_s: float


# -- seeders: start one, announcing to the torrent's tracker; returns how to stop it ------


def seed_aria2(processes: Processes, torrent: Torrent, _home: Path) -> Callable[[], None]:
    start_aria2(processes, torrent)
    proc = processes.procs[-1]
    return lambda: stop_process(proc)


def seed_libtorrent(_processes: Processes, torrent: Torrent, _home: Path) -> Callable[[], None]:
    # libtorrent's defaults (uTP in and out on), kept on loopback; every peer here has
    # the address 127.0.0.1, which libtorrent's default takes for one peer (it then
    # drops our connection as "connected to ourselves").
    session = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "allow_multiple_connections_per_ip": True,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "alert_mask": 0,
        }
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent.blob)
    params.save_path = str(torrent.root)
    params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    wait_until_serving(handle)

    def stop() -> None:
        session.remove_torrent(handle)
        session.pause()

    return stop


def seed_transmission(processes: Processes, torrent: Torrent, home: Path) -> Callable[[], None]:
    daemon = start_transmission(processes, home)
    daemon.seed(torrent)
    proc = processes.procs[-1]
    return lambda: stop_process(proc)


SEEDERS = {
    "aria2c": (ARIA2C, seed_aria2),
    "libtorrent": (True, seed_libtorrent),
    "transmission": (TRANSMISSION_DAEMON, seed_transmission),
}


# -- clients -----------------------------------------------------------------------------


def wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def first_bytes(port: int, path: str, t0: float, proc: subprocess.Popen[bytes]) -> Sample:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.005)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request(sock, path, 0)
        first, at_8, _ = read_body(sock, 8 * MiB, t0)
    return Sample(first, at_8)


def run_streme(
    workdir: Path, torrent: Torrent, tracker: Tracker, source: str, env_extra: dict[str, str]
) -> Sample:
    port = free_port()
    cache = workdir / f"streme-{time.time_ns()}"
    cache.mkdir()
    if source == ".torrent":
        (cache / f"{torrent.infohash}.torrent").write_bytes(torrent.blob)
    env = {**os.environ, **LOOPBACK_ENV, "STREME_TRACKERS": tracker.announce, **env_extra}
    streme = Path(sys.executable).with_name("streme")
    args = [str(streme), "serve", "--port", str(port), "--cache-dir", str(cache)]
    proc = subprocess.Popen(
        [*args, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, time.monotonic() + TIMEOUT)
        return first_bytes(port, f"/stream/proxy/{torrent.infohash}", time.perf_counter(), proc)
    finally:
        stop_process(proc)


def run_peerflix(workdir: Path, torrent: Torrent, tracker: Tracker, source: str) -> Sample:
    port = free_port()
    if source == ".torrent":
        given = str(torrent.path)
    else:
        tr = urllib.parse.quote(tracker.announce, safe="")
        given = f"magnet:?xt=urn:btih:{torrent.infohash}&tr={tr}"
    script = Path(__file__).with_name("peerflix_run.js")
    env = {**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")}
    launched = time.perf_counter()
    with open(workdir / "peerflix.log", "ab") as log:
        proc = subprocess.Popen(
            ["node", str(script), given, str(port), "-", str(workdir / f"pf-{time.time_ns()}")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        return first_bytes(port, "/", launched, proc)
    finally:
        stop_process(proc)


@contextmanager
def swarm(workdir: Path, torrent: Torrent, tracker_port: int, kind: str) -> Iterator[Tracker]:
    """A fresh tracker and a fresh seeder of `kind` that has announced to it."""
    processes = Processes()
    stop_seeder: Callable[[], None] | None = None
    try:
        tracker = Tracker(workdir / f"tracker-{time.time_ns()}", tracker_port, processes)
        tracker.start(torrent.infohash)
        stop_seeder = SEEDERS[kind][1](processes, torrent, workdir / f"tr-{time.time_ns()}")
        tracker.wait_seeders(torrent.infohash)
        yield tracker
    finally:
        if stop_seeder is not None:
            stop_seeder()
        processes.stop_all()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perf.coldstart", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeders", default=",".join(SEEDERS))
    parser.add_argument("--sources", default="magnet,.torrent")
    parser.add_argument("--variants", default="defaults", help=f"of: {', '.join(VARIANTS)}")
    parser.add_argument("--no-peerflix", action="store_true")
    args = parser.parse_args(argv)
    if OPENTRACKER is None:
        print("cold-start section skipped: opentracker is not installed (make system-deps)")
        return 0
    peerflix = (
        not args.no_peerflix
        and shutil.which("node") is not None
        and (NODE_DIR / "node_modules" / "peerflix").exists()
    )
    variants = args.variants.split(",")
    kinds = [k for k in args.seeders.split(",") if SEEDERS[k][0]]
    workdir = Path(tempfile.mkdtemp(prefix="streme-coldstart-"))
    print(f"work files and peerflix.log in {workdir}")
    tracker_port = free_port()
    announce = f"http://127.0.0.1:{tracker_port}/announce"
    torrent = write_torrent(
        workdir / "seed" / "movie", {"movie.mp4": random_bytes(SIZE, 7)}, announce, PIECE
    )
    results: dict[tuple[str, str, str], list[Sample]] = {}
    failures: list[str] = []
    try:
        for source in args.sources.split(","):
            for kind in kinds:
                clients: dict[str, Callable[[Tracker], Sample]] = {
                    f"streme {v}": (
                        lambda tr, v=v: run_streme(workdir, torrent, tr, source, VARIANTS[v])  # type: ignore[misc]
                    )
                    for v in variants
                }
                if peerflix:
                    clients["peerflix"] = lambda tr: run_peerflix(workdir, torrent, tr, source)
                for round_ in range(args.rounds):
                    for name, run in clients.items():
                        try:
                            with swarm(workdir, torrent, tracker_port, kind) as tracker:
                                sample = run(tracker)
                        except (OSError, RuntimeError) as exc:
                            failures.append(f"{source} {kind} {name} round {round_ + 1}: {exc!r}")
                            print(failures[-1], flush=True)
                            continue
                        results.setdefault((source, kind, name), []).append(sample)
                        print(
                            f"{source:9} {kind:12} {name:26} round {round_ + 1}:"
                            f" first byte {sample.first_byte_s * 1000:7.0f} ms,"
                            f" 8 MiB {sample.first_8mib_s * 1000:7.0f} ms",
                            flush=True,
                        )
        print_table(results, peerflix)
        for failure in failures:
            print(f"FAILED (no first byte within {TIMEOUT:g} s): {failure}")
    finally:
        if not failures:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def print_table(results: dict[tuple[str, str, str], list[Sample]], peerflix: bool) -> None:
    print()
    header = f"{'source':9} {'seeder':12} {'client':26} {'first byte':>11} {'8 MiB':>9} {'vs peerflix':>12}"
    print(header)
    print("-" * len(header))
    for (source, kind, name), samples in results.items():
        first = statistics.median(s.first_byte_s for s in samples) * 1000
        eight = statistics.median(s.first_8mib_s for s in samples) * 1000
        ratio = ""
        ref = results.get((source, kind, "peerflix"))
        if peerflix and ref and name != "peerflix":
            p = statistics.median(s.first_byte_s for s in ref) * 1000
            verdict = "met" if first <= 0.5 * p else "MISSED"
            ratio = f"{first / p:5.2f}x {verdict}"
        print(f"{source:9} {kind:12} {name:26} {first:8.0f} ms {eight:6.0f} ms {ratio:>12}")
    print(
        "\nMedians; first byte of GET bytes=0- (streme: from the request to a running server;"
        " peerflix: from its launch). Target: streme <= 0.5x peerflix. streme on its defaults"
        " but DHT/LSD/UPnP/NAT-PMP off, listening on 127.0.0.1, STREME_TRACKERS = the tracker."
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
