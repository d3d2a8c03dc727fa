"""The prefetch section of `make perf`: does a stream wait for a prefetch of another title?

A loopback swarm of two titles (a fresh opentracker and libtorrent seeder per title, full
speed): a 512 MiB "season" to prefetch and a 64 MiB "film" to stream. Per sample a fresh
`streme serve` on its defaults (but for loopback: `perf.clients.LOOPBACK_ENV`) with an
empty cache, then the film's first 4 MiB (`bytes=0-`): the time to its first body byte,
and to its last. Three kinds of sample, `--rounds` (5) of each, in turn:

- alone: nothing else downloads;
- during a prefetch: `POST /api/prefetch` of the season first, and the film asked for
  once the season is downloading (its progress over 2%); streme's default holds the
  prefetch to `p2p.prefetch_rate_while_streaming` (2 MiB/s) while the film has a reader;
- during an unthrottled prefetch: the same with `STREME_P2P_PREFETCH_RATE_WHILE_STREAMING=0`
  (the setting changed, named here): what the throttle buys.

Every process is started here and stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from perf import clients, probe
from perf.servers import Unavailable, free_port
from perf.swarm import swarm
from tests.torrent.peers import OPENTRACKER, Torrent, Tracker, write_torrent
from tests.torrent.swarm import random_bytes

MiB = 1024 * 1024
SEASON_SIZE = 512 * MiB
FILM_SIZE = 64 * MiB
PIECE = 256 * 1024
READ = 4 * MiB
KINDS = ("alone", "during a prefetch", "during an unthrottled prefetch")


def api(port: int, method: str, path: str, body: dict[str, str] | None = None) -> object:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return json.loads(response.read())
    finally:
        conn.close()


def wait_downloading(port: int, infohash: str, timeout: float = 30) -> float:
    """Until the prefetch of `infohash` is past 2%; its progress then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = api(port, "GET", f"/api/torrents/{infohash}")
        assert isinstance(view, dict)
        if view.get("state") == "failed":
            raise RuntimeError(f"the prefetch failed: {view.get('error')}")
        progress = float(view.get("progress", 0.0))
        if progress > 0.02:
            return progress
        time.sleep(0.02)
    raise TimeoutError(f"the prefetch did not start within {timeout:g} s")


def sample(
    workdir: Path, film: Torrent, tracker: Tracker, season: Torrent, announces: str, kind: str
) -> tuple[float, float, float]:
    """(seconds to the film's first byte, to its 4 MiB, the season's progress meanwhile)."""
    env = {"STREME_TRACKERS": announces}
    if kind == KINDS[2]:
        env["STREME_P2P_PREFETCH_RATE_WHILE_STREAMING"] = "0"
    client = clients.start_streme(workdir, film, tracker, env=env)
    try:
        before = 0.0
        if kind != KINDS[0]:
            answer = api(client.port, "POST", "/api/prefetch", {"infohash": season.infohash})
            if not isinstance(answer, dict) or "status_url" not in answer:
                raise RuntimeError(f"the prefetch was not accepted: {answer}")
            before = wait_downloading(client.port, season.infohash)
        sock = probe.connect(client.port, time.monotonic() + 10)
        began = time.perf_counter()
        probe.request(sock, client.path, 0, READ - 1)
        first, last, got = probe.read_body(sock, READ, began)
        sock.close()
        if got < READ:
            raise RuntimeError(f"response ended after {got} bytes")
        after = before
        if kind != KINDS[0]:
            view = api(client.port, "GET", f"/api/torrents/{season.infohash}")
            assert isinstance(view, dict)
            after = float(view.get("progress", 0.0))
        return first, last, (after - before) * SEASON_SIZE / MiB
    finally:
        client.stop()


def measure(workdir: Path, rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    ports = free_port(), free_port()
    announces = [f"http://127.0.0.1:{p}/announce" for p in ports]
    season = write_torrent(
        workdir / "seed" / "season",
        {"season.mkv": random_bytes(SEASON_SIZE, 21)},
        announces[0],
        PIECE,
    )
    film = write_torrent(
        workdir / "seed2" / "film", {"film.mp4": random_bytes(FILM_SIZE, 22)}, announces[1], PIECE
    )
    samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in KINDS}
    for round_no in range(rounds):
        order = KINDS if round_no % 2 == 0 else KINDS[::-1]
        for kind in order:
            with ExitStack() as stack:
                stack.enter_context(swarm(workdir, season, ports[0]))
                tracker = stack.enter_context(swarm(workdir, film, ports[1]))
                got = sample(workdir, film, tracker, season, ",".join(announces), kind)
            samples[kind].append(got)
            print(
                f"round {round_no + 1}/{rounds}, {kind}: first byte {got[0] * 1000:.0f} ms, "
                f"4 MiB in {got[1] * 1000:.0f} ms (prefetch meanwhile: {got[2]:.1f} MiB)",
                flush=True,
            )
    return samples


def print_table(samples: dict[str, list[tuple[float, float, float]]], rounds: int) -> None:
    alone_first = statistics.median(s[0] for s in samples[KINDS[0]])
    alone_read = statistics.median(s[1] for s in samples[KINDS[0]])
    print()
    print(f"a stream's first byte beside a prefetch of another title (medians of {rounds})")
    header = f"{'stream of 4 MiB':32} {'first byte ms':>14} {'ratio':>7} {'4 MiB ms':>9}"
    print(header + f" {'ratio':>7} {'prefetched meanwhile MiB':>25}")
    for kind in KINDS:
        first = statistics.median(s[0] for s in samples[kind])
        read = statistics.median(s[1] for s in samples[kind])
        meanwhile = statistics.median(s[2] for s in samples[kind])
        print(
            f"{kind:32} {first * 1000:14.0f} {first / alone_first:6.2f}x {read * 1000:9.0f}"
            f" {read / alone_read:6.2f}x {meanwhile:25.1f}"
        )
    print("target: first byte during a prefetch within noise of alone (<= ~1.2x)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.prefetch", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if OPENTRACKER is None:
        print("prefetch section skipped: opentracker is not installed (make system-deps)")
        return 0
    with tempfile.TemporaryDirectory(prefix="streme-perf-prefetch-") as tmp:
        try:
            samples = measure(Path(tmp), args.rounds)
        except Unavailable as exc:
            print(f"prefetch section skipped: {exc}")
            return 0
    print_table(samples, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
