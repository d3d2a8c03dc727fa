"""The `--workers` section of `make perf`: streme with 2 processes beside nginx with 2.

1. Cache hits: a 64 MiB file; streme with 1 and with 2 processes (`--workers 2`), nginx
   with 1 and with 2 worker processes, and streme with 1 at `--log-level warning` (its
   default is `info`), all running at once, each load in turn per round
   (`--rounds`, 3): 64 KiB ranges on 50 connections and on 5,000 (wrk, 5 s each). wrk
   runs 1 thread against one process and 2 threads against two (the machine has 2 cores:
   client and server share them, for nginx as for streme).
2. A cache miss through the worker against one through the engine's own process: a
   loopback swarm (a fresh opentracker and libtorrent seeder of a 256 MiB file, full
   speed), a fresh `streme serve --workers 2` with an empty cache per sample; a
   connection the kernel gave to process N (found with `/health`), then `bytes=0-` read
   for 64 MiB: the time to the first body byte, and the rate from it to the last.
   `--miss-rounds` (5) of each, alternating which process goes first.

Every process is started here and stopped by its PID; every load is bounded.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from perf import clients, servers, wrkrun
from perf.servers import Server, Unavailable, free_port
from perf.swarm import swarm
from streme.descriptors import raise_limit
from tests.served import connection_on
from tests.torrent.peers import OPENTRACKER, Torrent, Tracker, write_torrent
from tests.torrent.swarm import random_bytes

MiB = 1024 * 1024
FILE_SIZE = 64 * MiB
INFOHASH = "ab" * 20
SWARM_SIZE = 256 * MiB
PIECE = 256 * 1024
READ = 64 * MiB
CROWD = 5000

HITS = ("streme 1", "streme 2", "nginx 1", "nginx 2", "streme 1 warning")


def start(name: str, cache: Path, file: Path, workdir: Path) -> Server:
    kind, count, *level = name.split()
    if kind == "streme":
        return servers.start_streme(
            cache, INFOHASH, workdir, workers=int(count), log_level=level[0] if level else None
        )
    return servers.start_nginx(file, INFOHASH, workdir, workers=int(count))


def cache_hits(workdir: Path, rounds: int, seconds: float) -> dict[str, dict[str, float]]:
    cache = workdir / "cache"
    cache.mkdir()
    file = cache / f"{INFOHASH}-bench.mp4"
    file.write_bytes(random_bytes(FILE_SIZE, 3))
    script = wrkrun.range_script(workdir, 64 * 1024, FILE_SIZE)
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in HITS}
    running: dict[str, Server] = {}
    try:
        for name in HITS:
            running[name] = start(name, cache, file, workdir)
        for round_no in range(1, rounds + 1):
            for name, server in running.items():
                threads = int(name.split()[1])
                url = f"http://127.0.0.1:{server.port}{server.path}"
                for label, conns in (("r64", 50), ("c5k", CROWD)):
                    result = wrkrun.run(
                        url, connections=conns, seconds=seconds, script=script, threads=threads
                    )
                    got = samples[name]
                    got.setdefault(f"{label}_rps", []).append(result.requests_per_s)
                    got.setdefault(f"{label}_p99_ms", []).append(result.p99_ms)
                    got.setdefault(f"{label}_errors", []).append(result.errors)
                r64, c5k = samples[name]["r64_rps"][-1], samples[name]["c5k_p99_ms"][-1]
                print(f"round {round_no}/{rounds}: {name}: {r64:,.0f} req/s, 5k p99 {c5k:.0f} ms")
    finally:
        for server in running.values():
            server.stop()
    return {
        name: {
            metric: sum(v) if metric.endswith("_errors") else statistics.median(v)
            for metric, v in got.items()
        }
        for name, got in samples.items()
    }


def miss_rate(workdir: Path, torrent: Torrent, tracker: Tracker, via: int) -> tuple[float, float]:
    """A cold miss on a connection of process `via`: (seconds to the first body byte,
    MiB/s from that byte to 64 MiB)."""
    client = clients.start_streme(workdir, torrent, tracker, env={"STREME_HTTP_WORKERS": "2"})
    try:
        conn = connection_on(client.port, via, within=20)
        began = time.perf_counter()
        conn.request("GET", client.path, headers={"Range": f"bytes=0-{READ - 1}"})
        response = conn.getresponse()
        if response.status != 206:
            raise RuntimeError(f"status {response.status}: {response.read(300)!r}")
        got = len(response.read(1))
        first = time.perf_counter()
        while got < READ:
            chunk = response.read(min(1 << 20, READ - got))
            if not chunk:
                raise RuntimeError(f"response ended after {got} bytes")
            got += len(chunk)
        took = time.perf_counter() - first
        conn.close()
        return first - began, (READ - 1) / MiB / took
    finally:
        client.stop()


def misses(workdir: Path, rounds: int) -> dict[int, tuple[float, float]]:
    tracker_port = free_port()
    announce = f"http://127.0.0.1:{tracker_port}/announce"
    torrent = write_torrent(
        workdir / "seed" / "movie", {"movie.mp4": random_bytes(SWARM_SIZE, 12)}, announce, PIECE
    )
    samples: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
    for round_no in range(rounds):
        for via in (0, 1)[:: 1 if round_no % 2 == 0 else -1]:
            with swarm(workdir, torrent, tracker_port) as tracker:
                samples[via].append(miss_rate(workdir, torrent, tracker, via))
            ttfb, rate = samples[via][-1]
            print(
                f"miss {round_no + 1}/{rounds}, via process {via}: first byte {ttfb * 1000:.0f} ms,"
                f" then {rate:.0f} MiB/s",
                flush=True,
            )
    return {
        via: (statistics.median(s[0] for s in got), statistics.median(s[1] for s in got))
        for via, got in samples.items()
    }


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def print_table(
    hits: dict[str, dict[str, float]],
    miss: dict[int, tuple[float, float]] | None,
    rounds: int,
    miss_rounds: int,
) -> None:
    s1, s2, n1, n2, quiet = (hits[name] for name in HITS)
    level = s1["r64_rps"] / quiet["r64_rps"]
    r64 = s2["r64_rps"] / n2["r64_rps"]
    p99 = s2["c5k_p99_ms"] / n2["c5k_p99_ms"]
    errors = s2["r64_errors"] + s2["c5k_errors"]
    rows = [
        (
            f"metric (medians of {rounds} rounds)",
            "streme 1",
            "streme 2",
            "nginx 1",
            "nginx 2",
            "ratio",
            "target",
            "met?",
        ),
        (
            "64 KiB ranges, 50 conns (req/s)",
            *(f"{h['r64_rps']:,.0f}" for h in (s1, s2, n1, n2)),
            f"{r64:.2f}x",
            ">= 0.8x nginx 2",
            "yes" if r64 >= 0.8 else "NO",
        ),
        ("  streme 2 / streme 1", "", "", "", "", ratio(s2["r64_rps"], s1["r64_rps"]), "", ""),
        (
            f"  streme 1 at info / at warning ({quiet['r64_rps']:,.0f})",
            "",
            "",
            "",
            "",
            f"{level:.2f}x",
            ">= 0.9x",
            "yes" if level >= 0.9 else "NO",
        ),
        (
            "64 KiB, 5,000 conns (req/s)",
            *(f"{h['c5k_rps']:,.0f}" for h in (s1, s2, n1, n2)),
            ratio(s2["c5k_rps"], n2["c5k_rps"]),
            "",
            "",
        ),
        (
            "64 KiB, 5,000 conns, p99 (ms)",
            *(f"{h['c5k_p99_ms']:,.0f}" for h in (s1, s2, n1, n2)),
            f"{p99:.2f}x",
            "<= 3x nginx 2",
            "yes" if p99 <= 3 else "NO",
        ),
        (
            "wrk errors, streme 2 (all rounds)",
            "",
            f"{errors:.0f}",
            "",
            "",
            "",
            "0",
            "yes" if errors == 0 else "NO",
        ),
    ]
    if miss is not None:
        (ttfb0, rate0), (ttfb1, rate1) = miss[0], miss[1]
        via = rate1 / rate0
        rows.append(
            (
                f"cache miss, first byte (ms, {miss_rounds} each): via worker / via engine",
                "",
                f"{ttfb1 * 1000:.0f} / {ttfb0 * 1000:.0f}",
                "",
                "",
                ratio(ttfb1, ttfb0),
                "",
                "",
            )
        )
        rows.append(
            (
                "  then to 64 MiB (MiB/s): via worker / via engine",
                "",
                f"{rate1:.0f} / {rate0:.0f}",
                "",
                "",
                f"{via:.2f}x",
                ">= 0.9x",
                "yes" if via >= 0.9 else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print(
            "  ".join(
                c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
            ).rstrip()
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perf.workers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-miss", action="store_true", help="cache hits only")
    # One cold miss's rate on this box varies 40-106 MiB/s run to run: five of each.
    parser.add_argument("--miss-rounds", type=int, default=5)
    args = parser.parse_args(argv)
    raise_limit()
    workdir = Path(tempfile.mkdtemp(prefix="streme-workers-perf-"))
    workdir.chmod(0o755)  # nginx's workers run as `nobody` under a master started as root
    try:
        try:
            hits = cache_hits(workdir, args.rounds, args.seconds)
        except Unavailable as exc:
            print(f"--workers section skipped: {exc}")
            return 0
        miss = None
        if args.no_miss:
            pass
        elif OPENTRACKER is None:
            print("cache-miss row skipped: opentracker is not installed (make system-deps)")
        else:
            miss = misses(workdir, args.miss_rounds)
        print_table(hits, miss, args.rounds, args.miss_rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
