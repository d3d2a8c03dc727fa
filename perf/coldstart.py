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
  clock starts at its launch (it takes one torrent per process);
- a bare libtorrent client (perf.bareclient, its own process): the seeder's floor. Its
  clock starts at its add, once its session listens.

Target: streme's first byte <= 0.5x peerflix's; or, where the seeder itself is the floor
(a delay the bare client meets as well), within 10 % of the bare client's.

Each prints the first body byte of `GET bytes=0-`, and the first 8 MiB. Variants of
streme (`--variants`) name the one setting they change. Every process is stopped by its
PID; every wait is bounded. The swarm is `perf.swarm.swarm` (libtorrent on its own
defaults: `LIBTORRENT_DEFAULTS`), the clients are started by `perf.clients`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from perf import clients
from perf.clients import Client
from perf.probe import connect, read_body, request
from perf.servers import free_port
from perf.swarm import LIBTORRENT_DEFAULTS, SEEDERS, swarm
from tests.torrent.peers import OPENTRACKER, Torrent, Tracker, stop_process, write_torrent
from tests.torrent.swarm import random_bytes

MiB = 1024 * 1024
SIZE = 64 * MiB
PIECE = 256 * 1024
TIMEOUT = 30.0

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


def first_bytes(client: Client, t0: float) -> Sample:
    """`GET bytes=0-` from `client` (connecting until it listens or exits): the first body
    byte and the first 8 MiB, in seconds from `t0`."""
    with connect(client.port, time.monotonic() + TIMEOUT, TIMEOUT, client.proc) as sock:
        request(sock, client.path, 0)
        first, at_8, _ = read_body(sock, 8 * MiB, t0)
    return Sample(first, at_8)


def run_streme(
    workdir: Path, torrent: Torrent, tracker: Tracker, source: str, env_extra: dict[str, str]
) -> Sample:
    with_file = source == ".torrent"
    with clients.streme(
        workdir, torrent, tracker, env=env_extra, with_torrent_file=with_file, timeout=TIMEOUT
    ) as streme:
        return first_bytes(streme, time.perf_counter())


def run_peerflix(workdir: Path, torrent: Torrent, tracker: Tracker, source: str) -> Sample:
    with clients.peerflix(workdir, torrent, tracker, source) as peerflix:
        return first_bytes(peerflix, peerflix.launched)


def run_bare(workdir: Path, torrent: Torrent, tracker: Tracker, source: str) -> Sample:
    save = workdir / f"bare-{time.time_ns()}"
    if source == ".torrent":
        given = ["--torrent", str(torrent.path), "--tracker", tracker.announce]
    else:
        tr = urllib.parse.quote(tracker.announce, safe="")
        given = ["--magnet", f"magnet:?xt=urn:btih:{torrent.infohash}&tr={tr}"]
    args = [sys.executable, "-m", "perf.bareclient", *given, "--save", str(save)]
    proc = subprocess.Popen(
        [*args, "--timeout", str(TIMEOUT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"perf.bareclient ran over {TIMEOUT + 10:g} s") from None
    finally:
        stop_process(proc)
        shutil.rmtree(save, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"perf.bareclient exited {proc.returncode}: {err.decode()[-300:]}")
    got = json.loads(out)
    return Sample(got["first_byte_s"], got["first_8mib_s"])


BARE = "bare libtorrent (floor)"


def run(name: str, workdir: Path, torrent: Torrent, tracker: Tracker, source: str) -> Sample:
    """One client, `name`d "peerflix", BARE or "streme <variant>", on `tracker`'s swarm."""
    if name == "peerflix":
        return run_peerflix(workdir, torrent, tracker, source)
    if name == BARE:
        return run_bare(workdir, torrent, tracker, source)
    return run_streme(workdir, torrent, tracker, source, VARIANTS[name.removeprefix("streme ")])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perf.coldstart", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeders", default=",".join(SEEDERS))
    parser.add_argument("--sources", default="magnet,.torrent")
    parser.add_argument("--variants", default="defaults", help=f"of: {', '.join(VARIANTS)}")
    parser.add_argument("--no-peerflix", action="store_true")
    parser.add_argument("--no-floor", action="store_true", help="no bare libtorrent client")
    args = parser.parse_args(argv)
    if OPENTRACKER is None:
        print("cold-start section skipped: opentracker is not installed (make system-deps)")
        return 0
    peerflix = not args.no_peerflix and clients.peerflix_installed()
    variants = args.variants.split(",")
    kinds = [k for k in args.seeders.split(",") if SEEDERS[k][0]]
    workdir = Path(tempfile.mkdtemp(prefix="streme-coldstart-"))
    print(f"work files, streme.log and peerflix.log in {workdir}")
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
                names = [f"streme {v}" for v in variants] + ["peerflix"] * peerflix
                names += [BARE] * (not args.no_floor)
                for round_ in range(args.rounds):
                    for name in names:
                        try:
                            with swarm(
                                workdir, torrent, tracker_port, kind, settings=LIBTORRENT_DEFAULTS
                            ) as tracker:
                                sample = run(name, workdir, torrent, tracker, source)
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
    header = (
        f"{'source':9} {'seeder':12} {'client':26} {'first byte':>11} {'8 MiB':>9}"
        f" {'vs peerflix':>11} {'vs floor':>9}  target"
    )
    print(header)
    print("-" * len(header))

    def median_first(key: tuple[str, str, str]) -> float | None:
        got = results.get(key)
        return statistics.median(s.first_byte_s for s in got) * 1000 if got else None

    for (source, kind, name), samples in results.items():
        first = statistics.median(s.first_byte_s for s in samples) * 1000
        eight = statistics.median(s.first_8mib_s for s in samples) * 1000
        cols = ["", "", ""]
        if name.startswith("streme"):
            p = median_first((source, kind, "peerflix")) if peerflix else None
            floor = median_first((source, kind, BARE))
            cols[0] = "" if p is None else f"{first / p:5.2f}x"
            cols[1] = "" if floor is None else f"{first / floor:5.2f}x"
            if p is not None and first <= 0.5 * p:
                cols[2] = "met"
            elif floor is not None and first <= 1.1 * floor:
                cols[2] = "met (at the seeder's floor)"
            elif p is not None or floor is not None:
                cols[2] = "MISSED"
        print(
            f"{source:9} {kind:12} {name:26} {first:8.0f} ms {eight:6.0f} ms"
            f" {cols[0]:>11} {cols[1]:>9}  {cols[2]}"
        )
    print(
        "\nMedians; first byte of GET bytes=0- (streme: from the request to a running server;"
        " peerflix: from its launch; the bare libtorrent client: from its add). Target: streme"
        " <= 0.5x peerflix, or within 10 % of the bare client's where the seeder is the floor."
        " streme on its defaults but DHT/LSD/UPnP/NAT-PMP off, listening on 127.0.0.1,"
        " STREME_TRACKERS = the tracker."
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
