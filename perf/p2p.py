"""The P2P section of `make perf`: streme and peerflix on the same loopback swarm.

A libtorrent seeder in this process serves a 96 MiB file on 127.0.0.1 (no DHT, LSD, UPnP
or NAT-PMP; no trackers), once at full speed and once with a 20 MB/s upload limit. For
each, a fresh streme (P2P on, the seeder as static peer, torrent not yet added) and a
fresh peerflix (its library with DHT and trackers off, the seeder connected as a peer)
are measured with the same client sequence (before either, a throwaway client takes one
piece from the seeder: see `warm_up`):

- cold start: `GET bytes=0-` until the first body byte, and until 8 MiB. streme's clock
  starts at the request to a running server; peerflix takes one torrent per process, so
  its clock starts at its launch;
- seek: a new `bytes=<middle>-` request, to the first byte;
- tail probe: the last 1 MiB, to the first byte;
- sustained: 64 MiB from the start on a new connection, MB/s;
- memory: RSS growth with 50 concurrent readers that read nothing for 3 s.

Each client runs `--rounds` times (3), a fresh process each time, taking turns to go
first; the table gives medians. One sample of a cold start against a rate-limited seeder
varies several-fold from run to run.

Every process is stopped by its PID; every read has a timeout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import libtorrent as lt

from perf.servers import free_port
from tests.torrent.swarm import LOOPBACK_SETTINGS, Seeder, make_seeder, random_bytes

MiB = 1024 * 1024
SIZE = 96 * MiB
PIECE = 256 * 1024
NODE_DIR = Path(__file__).with_name(".node")


@dataclass
class Result:
    values: dict[str, float] = field(default_factory=dict)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def connect(port: int, deadline: float) -> socket.socket:
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def request(sock: socket.socket, path: str, first: int, last: int | None = None) -> None:
    spec = f"bytes={first}-" if last is None else f"bytes={first}-{last}"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: {spec}\r\n\r\n".encode())


def read_body(sock: socket.socket, limit: int, t0: float) -> tuple[float, float, int]:
    """Read until `limit` body bytes: (first byte time, time at limit, bytes) from t0."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 20"):
        raise RuntimeError(f"unexpected answer: {head.splitlines()[0]!r}")
    got = len(body)
    while got == 0:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed before the body")
        got += len(chunk)
    first = time.perf_counter() - t0
    while got < limit:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    return first, time.perf_counter() - t0, got


def sequence(port: int, path: str, launched: float | None, pid: int) -> Result:
    res = Result()
    deadline = time.monotonic() + 60
    t0 = launched if launched is not None else time.perf_counter()
    with connect(port, deadline) as sock:
        request(sock, path, 0)
        first, at_8, _ = read_body(sock, 8 * MiB, t0)
    res.values["cold_ttfb_ms"] = first * 1000
    res.values["first_8mib_ms"] = at_8 * 1000
    with connect(port, deadline) as sock:
        t0 = time.perf_counter()
        request(sock, path, SIZE // 2 + 12345)
        res.values["seek_ttfb_ms"] = read_body(sock, MiB, t0)[0] * 1000
    with connect(port, deadline) as sock:
        t0 = time.perf_counter()
        request(sock, path, SIZE - MiB, SIZE - 1)
        res.values["tail_ttfb_ms"] = read_body(sock, MiB, t0)[0] * 1000
    with connect(port, deadline) as sock:
        t0 = time.perf_counter()
        request(sock, path, 0)
        _, elapsed, got = read_body(sock, 64 * MiB, t0)
        res.values["throughput_mbps"] = got / elapsed / 1e6
    idle = rss_mib(pid)
    readers = []
    try:
        for i in range(50):
            sock = connect(port, deadline)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            request(sock, path, (i * 7 * MiB) % (SIZE - MiB))
            readers.append(sock)
        peak = idle
        end = time.monotonic() + 3
        while time.monotonic() < end:
            peak = max(peak, rss_mib(pid))
            time.sleep(0.1)
        res.values["rss_growth_50_slow_mib"] = peak - idle
    finally:
        for sock in readers:
            sock.close()
    return res


def run_streme(workdir: Path, peer: str, buffer_bytes: int) -> Result:
    port = free_port()
    cache = workdir / f"streme-{time.time_ns()}"
    env = {
        **os.environ,
        "STREME_P2P_ENABLED": "1",
        "STREME_P2P_STATIC_PEERS": peer,
        "STREME_P2P_LISTEN_INTERFACES": "127.0.0.1:0",
        "STREME_DHT": "0",
        "STREME_LSD": "0",
        "STREME_UPNP": "0",
        "STREME_P2P_NATPMP": "0",
        "STREME_P2P_UTP": "0",
        "STREME_P2P_BUFFER_BYTES": str(buffer_bytes),
    }
    streme = Path(sys.executable).with_name("streme")
    proc = subprocess.Popen(
        [
            str(streme),
            "serve",
            "--port",
            str(port),
            "--cache-dir",
            str(cache),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with connect(port, time.monotonic() + 20):
            pass
        return sequence(port, f"/stream/proxy/{INFOHASH_HOLDER[0]}", None, proc.pid)
    finally:
        stop(proc)


def run_peerflix(workdir: Path, torrent: Path, peer: str) -> Result:
    port = free_port()
    script = Path(__file__).with_name("peerflix_run.js")
    env = {**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")}
    launched = time.perf_counter()
    proc = subprocess.Popen(
        ["node", str(script), str(torrent), str(port), peer, str(workdir / f"pf-{time.time_ns()}")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return sequence(port, "/", launched, proc.pid)
    finally:
        stop(proc)


INFOHASH_HOLDER: list[str] = [""]


def median_result(runs: list[Result]) -> Result:
    keys = runs[0].values.keys()
    return Result({k: statistics.median(r.values[k] for r in runs) for k in keys})


def warm_up(seeder: Seeder, path: Path) -> None:
    """Fetch one piece from the seeder with a throwaway libtorrent client.

    A rate-limited libtorrent seeder serves its very first peer slowly (metadata after
    ~0.4 s, the first piece after ~1.1 s; every later peer gets both in milliseconds),
    whoever that peer is. Without this, whichever client runs first pays for it.
    """
    session = lt.session({**LOOPBACK_SETTINGS, "alert_mask": 0})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(seeder.torrent)
    params.save_path = str(path)
    params.peers = [("127.0.0.1", seeder.port)]
    handle = session.add_torrent(params)
    deadline = time.monotonic() + 20
    try:
        while not handle.have_piece(0) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        session.remove_torrent(handle, lt.session.delete_files)
        session.pause()


# A target: (streme, peerflix, seeder's upload limit in bytes/s or 0, buffer bytes) -> met?
Check = Callable[[float, float, int, int], bool]


def _throughput_met(s: float, p: float, limit: int, _buffer: int) -> bool:
    # ">= 2x peerflix, or within 10 % of the seeder's upload limit when one is set"
    return s >= 2 * p or (limit > 0 and s >= 0.9 * limit / 1e6)


ROWS: list[tuple[str, str, str, Check | None]] = [
    (
        "cold start TTFB, bytes=0- (ms)",
        "cold_ttfb_ms",
        "<= 0.5x peerflix",
        lambda s, p, *_: s <= 0.5 * p,
    ),
    ("cold start to 8 MiB (ms)", "first_8mib_ms", "", None),
    (
        "seek to the middle TTFB (ms)",
        "seek_ttfb_ms",
        "<= 0.5x peerflix",
        lambda s, p, *_: s <= 0.5 * p,
    ),
    ("tail probe TTFB (ms)", "tail_ttfb_ms", "", None),
    (
        "sustained 64 MiB (MB/s)",
        "throughput_mbps",
        ">= 2x peerflix or >= 90% of the limit",
        _throughput_met,
    ),
    (
        "RSS growth, 50 slow readers (MiB)",
        "rss_growth_50_slow_mib",
        "<= 50 MiB + 50 x buffer",
        lambda s, _p, _limit, buffer: s <= 50 + 50 * buffer / MiB,
    ),
]
LIMITS = {"unlimited": 0, "20 MB/s": 20_000_000}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.p2p", description=__doc__.split("\n")[0])
    parser.add_argument("--buffer-bytes", type=int, default=4 * MiB)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per client")
    args = parser.parse_args(argv)
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "peerflix").exists():
        print("P2P section skipped: peerflix is not installed (make perf installs it)")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="streme-p2p-perf-"))
    try:
        results: dict[str, dict[str, Result]] = {}
        for label, limit in LIMITS.items():
            seeder = make_seeder(
                workdir / f"seed-{limit}",
                {"movie.mp4": random_bytes(SIZE, 11)},
                piece_length=PIECE,
                upload_limit=limit,
            )
            INFOHASH_HOLDER[0] = seeder.infohash
            warm_up(seeder, workdir / f"warm-{limit}")
            torrent = workdir / f"{limit}.torrent"
            torrent.write_bytes(seeder.torrent)
            runs: dict[str, list[Result]] = {"streme": [], "peerflix": []}
            clients: dict[str, Callable[[], Result]] = {
                "streme": partial(run_streme, workdir, seeder.peer, args.buffer_bytes),
                "peerflix": partial(run_peerflix, workdir, torrent, seeder.peer),
            }
            try:
                for round_ in range(args.rounds):
                    # Alternate who goes first: the seeder's state is shared.
                    order = ["streme", "peerflix"][:: 1 if round_ % 2 == 0 else -1]
                    for name in order:
                        runs[name].append(clients[name]())
                        got = "  ".join(f"{k} {v:.1f}" for k, v in runs[name][-1].values.items())
                        print(f"swarm {label}, round {round_ + 1}, {name}: {got}", flush=True)
            finally:
                seeder.stop()
            results[label] = {name: median_result(r) for name, r in runs.items()}
        print()
        header = f"{'metric':<36} {'swarm':>10} {'streme':>9} {'peerflix':>9} {'ratio':>7}  target"
        print(header)
        print("-" * len(header))
        for title, key, target, check in ROWS:
            for label, pair in results.items():
                s, p = pair["streme"].values[key], pair["peerflix"].values[key]
                ratio = s / p if p else float("nan")
                met = check is not None and check(s, p, LIMITS[label], args.buffer_bytes)
                verdict = "" if check is None else ("met" if met else "MISSED")
                print(
                    f"{title:<36} {label:>10} {s:9.1f} {p:9.1f} {ratio:6.2f}x  {target} {verdict}"
                )
        bound = 50 + 50 * args.buffer_bytes / MiB
        buffer_mib = args.buffer_bytes // MiB
        print(f"\nRSS target: growth <= 50 MiB + 50 x buffer ({buffer_mib} MiB) = {bound:.0f} MiB")
        print(
            f"Medians of {args.rounds} rounds (a fresh process per client and round) in one run;"
            " loopback; 2 cores shared by seeder, server and client. Read the ratios."
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
