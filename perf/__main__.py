"""`make perf`: streme side by side with nginx and aiohttp on the same file, one run.

Every load is bounded (wrk -d, fixed request counts) and on 127.0.0.1; every server is
started here and stopped by its PID. The machine is small and noisy: each load runs
`--rounds` times per server, interleaved, and the table shows medians and ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from perf import ttfb, wrkrun
from perf.lookup import in_process_lookup_us, make_crowded_cache
from perf.report import Row, render
from perf.servers import Server, start_aiohttp, start_nginx, start_streme

INFOHASH = hashlib.sha1(b"streme perf").hexdigest()
FILE_SIZE = 64 * 1024 * 1024
KiB, MiB = 1024, 1024 * 1024
STARTERS = {"streme": start_streme, "nginx": start_nginx, "aiohttp": start_aiohttp}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s loads (smoke test)")
    parser.add_argument("--only", default="streme,nginx,aiohttp", help="comma-separated servers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each wrk load")
    parser.add_argument("--json", default="perf/results/latest.json", help="raw results file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    return args


def start(name: str, cache: Path, file: Path, workdir: Path) -> Server:
    if name == "streme":
        return start_streme(cache, INFOHASH, workdir)
    return STARTERS[name](file, INFOHASH, workdir)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = [n for n in args.only.split(",") if n in STARTERS]
    workdir = Path(tempfile.mkdtemp(prefix="streme-perf-"))
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    servers: dict[str, Server] = {}

    def record(server: str, metric: str, value: float) -> None:
        samples[server].setdefault(metric, []).append(value)

    try:
        cache = workdir / "cache"
        cache.mkdir()
        file = cache / f"{INFOHASH}-bench.mp4"
        with file.open("wb") as f:
            for _ in range(FILE_SIZE // MiB):
                f.write(os.urandom(MiB))
        for name in names:
            servers[name] = start(name, cache, file, workdir)
            time.sleep(0.5)
            record(name, "idle_rss_mib", servers[name].rss_mib())
        print(f"servers: {', '.join(f'{n} pid {s.pid} port {s.port}' for n, s in servers.items())}")
        ttfb_count = 500 if args.quick else 2000
        for round_no in range(args.rounds):
            for name, server in servers.items():
                print(f"round {round_no + 1}/{args.rounds}: {name}", flush=True)
                lat = ttfb.keep_alive(server.port, server.path, ttfb_count)
                record(name, "ttfb_p50_us", lat.p50_us)
                record(name, "ttfb_p99_us", lat.p99_us)
                lat = ttfb.new_connections(server.port, server.path, ttfb_count // 4)
                record(name, "ttfb_new_p50_us", lat.p50_us)
                record(name, "ttfb_new_p99_us", lat.p99_us)
                url = f"http://127.0.0.1:{server.port}{server.path}"
                common = {"seconds": args.seconds, "workdir": workdir, "size": FILE_SIZE}
                r64 = wrkrun.run(url, connections=50, block=64 * KiB, **common)
                record(name, "r64_rps", r64.requests_per_s)
                record(name, "r64_p99_ms", r64.p99_ms)
                cpu0 = server.cpu_seconds()
                r1m = wrkrun.run(url, connections=50, block=MiB, **common)
                cpu1 = server.cpu_seconds()
                whole = wrkrun.run(url, connections=4, block=None, **common)
                cpu2 = server.cpu_seconds()
                record(name, "r1m_gbps", r1m.bytes_per_s / 1e9)
                record(name, "whole_gbps", whole.bytes_per_s / 1e9)
                record(
                    name, "cpu_s_per_gb_1m", (cpu1 - cpu0) / (r1m.bytes_per_s * args.seconds / 1e9)
                )
                record(
                    name,
                    "cpu_s_per_gb_whole",
                    (cpu2 - cpu1) / (whole.bytes_per_s * args.seconds / 1e9),
                )
                for result in (r64, r1m, whole):
                    if result.errors:
                        print(f"  {name}: wrk reported {result.errors}")
        for server in servers.values():
            server.stop()
        servers.clear()
        if "streme" in names:
            crowded = workdir / "crowded"
            make_crowded_cache(crowded, file, INFOHASH, 100_000)
            record("streme", "lookup_us_100k", in_process_lookup_us(crowded, INFOHASH, 10_000))
            server = start_streme(crowded, INFOHASH, workdir)
            servers["streme"] = server
            lat = ttfb.keep_alive(server.port, server.path, ttfb_count)
            record("streme", "ttfb_p50_us_100k", lat.p50_us)
            record("streme", "ttfb_p99_us_100k", lat.p99_us)
            server.stop()
            servers.clear()
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    medians = {
        n: {m: statistics.median(v) for m, v in metrics.items()} for n, metrics in samples.items()
    }
    print()
    print(render(rows(medians)))
    print(f"\n{args.rounds} round(s) per server, wrk -t1 for {args.seconds:g} s per load; medians.")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"args": vars(args), "samples": samples, "medians": medians}, indent=2)
    )
    return 0


def rows(m: dict[str, dict[str, float]]) -> list[Row]:
    def col(metric: str) -> dict[str, float]:
        return {n: v[metric] for n, v in m.items() if metric in v}

    def ratio(metric: str, other: str) -> float:
        return m["streme"][metric] / m[other][metric]

    return [
        Row(
            "TTFB keep-alive p50 (us)",
            col("ttfb_p50_us"),
            "< 100 ms (original)",
            lambda v: v["streme"] < 100_000,
        ),
        Row(
            "TTFB keep-alive p99 (us)",
            col("ttfb_p99_us"),
            "<= 1000 us",
            lambda v: v["streme"] <= 1000,
        ),
        Row("TTFB new connection p50 (us)", col("ttfb_new_p50_us")),
        Row(
            "TTFB new connection p99 (us)",
            col("ttfb_new_p99_us"),
            "<= 1000 us",
            lambda v: v["streme"] <= 1000,
        ),
        Row(
            "64 KiB ranges, 50 conns (req/s)",
            col("r64_rps"),
            ">= 0.4x nginx, >= 4x aiohttp",
            lambda v: ratio("r64_rps", "nginx") >= 0.4 and ratio("r64_rps", "aiohttp") >= 4,
        ),
        Row("64 KiB ranges p99 (ms)", col("r64_p99_ms")),
        Row(
            "1 MiB ranges, 50 conns (GB/s)",
            col("r1m_gbps"),
            ">= 0.8x nginx",
            lambda v: ratio("r1m_gbps", "nginx") >= 0.8,
        ),
        Row(
            "whole 64 MiB file, 4 conns (GB/s)",
            col("whole_gbps"),
            ">= 1.0x nginx",
            lambda v: ratio("whole_gbps", "nginx") >= 1.0,
        ),
        Row(
            "CPU s per GB, whole file",
            col("cpu_s_per_gb_whole"),
            "<= 1.5x nginx",
            lambda v: ratio("cpu_s_per_gb_whole", "nginx") <= 1.5,
        ),
        Row(
            "CPU s per GB, 1 MiB ranges",
            col("cpu_s_per_gb_1m"),
            "<= 1.5x nginx",
            lambda v: ratio("cpu_s_per_gb_1m", "nginx") <= 1.5,
        ),
        Row(
            "lookup, 100k files, in-process (us)",
            col("lookup_us_100k"),
            "<= 50 us",
            lambda v: v["streme"] <= 50,
        ),
        Row("TTFB p50 with 100k files (us)", col("ttfb_p50_us_100k")),
        Row(
            "TTFB p99 with 100k files (us)",
            col("ttfb_p99_us_100k"),
            "<= 1000 us",
            lambda v: v["streme"] <= 1000,
        ),
        Row("idle RSS (MiB)", col("idle_rss_mib")),
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
