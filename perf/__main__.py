"""`make perf`: streme side by side with nginx and aiohttp on the same file, in one run.

1. Write a 64 MiB file of random bytes into a temp cache dir as `<hash>-bench.mp4`.
2. Start every selected server (all running at once), read its idle RSS.
3. For each round, for each server in a fixed order: the loads of `perf.bench`.
4. Stop them; then, for streme only, a cache dir with 100,000 other files: in-process
   lookups and TTFB against a fresh server on it (and the 1-file dir for comparison).
5. Print medians over rounds with ratios and targets; write every sample to JSON.

Every load is bounded (wrk -d, fixed request counts) and on 127.0.0.1; every server is
started here and stopped by its PID in a `finally`, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from perf import bench, lookup, report, servers, wrkrun
from perf.servers import Server, Unavailable
from streme.descriptors import raise_limit

INFOHASH = hashlib.sha1(b"streme perf").hexdigest()
FILE_SIZE = 64 * 1024 * 1024
CROWD = 100_000
LOOKUPS = 10_000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s loads (smoke test)")
    parser.add_argument("--only", default=",".join(report.SERVERS), help="comma-separated servers")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="each wrk load (default 5)")
    parser.add_argument("--json", type=Path, default=Path("perf/results/latest.json"))
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run streme as of git revision REV (e.g. HEAD~3), as the 'baseline' column",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    args.ttfb_count = 500 if args.quick else 2000
    args.names = [n for n in report.SERVERS if n in args.only.split(",")]
    if args.baseline is None and "baseline" in args.names:
        args.names.remove("baseline")
    unknown = set(args.only.split(",")) - set(report.SERVERS)
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    return args


def write_bench_file(cache: Path) -> Path:
    cache.mkdir()
    file = cache / f"{INFOHASH}-bench.mp4"
    with file.open("wb") as out:
        for _ in range(FILE_SIZE // (1 << 20)):
            out.write(os.urandom(1 << 20))
    return file


def export_revision(rev: str, workdir: Path) -> Path:
    """The `streme` package as of git revision `rev`, in a directory for PYTHONPATH."""
    target = workdir / "baseline-src"
    target.mkdir()
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", rev, "streme"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise Unavailable(f"git archive {rev}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def start(name: str, cache: Path, file: Path, workdir: Path, baseline: str | None) -> Server:
    if name == "streme":
        return servers.start_streme(cache, INFOHASH, workdir)
    if name == "baseline":
        assert baseline is not None
        return servers.start_streme(cache, INFOHASH, workdir, export_revision(baseline, workdir))
    if name == "nginx":
        return servers.start_nginx(file, INFOHASH, workdir)
    return servers.start_aiohttp(file, INFOHASH, workdir)


class Results:
    def __init__(self, names: list[str]) -> None:
        self.samples: dict[str, dict[str, list[float]]] = {n: {} for n in names}
        self.notes: list[str] = []

    def recorder(self, server: str) -> Callable[[str, float], None]:
        def record(metric: str, value: float) -> None:
            self.samples[server].setdefault(metric, []).append(value)

        return record

    def note(self, text: str) -> None:
        print(f"  ! {text}", flush=True)
        self.notes.append(text)

    def medians(self) -> report.Medians:
        # Errors add up over rounds (one bad round must show); everything else: the median.
        return {
            server: {
                m: sum(v) if m.endswith("_errors") else statistics.median(v)
                for m, v in metrics.items()
            }
            for server, metrics in self.samples.items()
        }


def side_by_side(args: argparse.Namespace, workdir: Path, results: Results) -> None:
    cache = workdir / "cache"
    file = write_bench_file(cache)
    plan = bench.make_plan(workdir, FILE_SIZE, args.seconds, args.ttfb_count)
    running: dict[str, Server] = {}
    try:
        for name in args.names:
            try:
                running[name] = start(name, cache, file, workdir, args.baseline)
            except Unavailable as exc:
                results.note(f"{name} skipped: {exc}")
                continue
            time.sleep(0.5)
            results.recorder(name)("idle_rss_mib", running[name].rss_mib())
        print(", ".join(f"{n}: pid {s.pid}, port {s.port}" for n, s in running.items()))
        for round_no in range(1, args.rounds + 1):
            for name, server in list(running.items()):
                print(f"round {round_no}/{args.rounds}: {name}", flush=True)
                try:
                    complaints = bench.measure_round(server, plan, results.recorder(name))
                except (OSError, RuntimeError, ValueError) as exc:
                    results.note(f"{name}, round {round_no}: {type(exc).__name__}: {exc}")
                    complaints = []
                for text in complaints:
                    results.note(f"{name}, round {round_no}: {text}")
                if not server.alive():
                    results.note(f"{name} exited ({server.process.returncode}); dropped")
                    del running[name]
    finally:
        for server in running.values():
            server.stop()
    if "streme" in args.names and "idle_rss_mib" in results.samples["streme"]:
        crowded_cache(args, workdir, cache, file, plan, results)


def crowded_cache(
    args: argparse.Namespace,
    workdir: Path,
    cache: Path,
    file: Path,
    plan: bench.Plan,
    results: Results,
) -> None:
    """streme with 100,000 other files next to the bench file vs. with it alone."""
    record = results.recorder("streme")
    print(f"streme: lookups with 1 and {CROWD:,} files in the cache dir", flush=True)
    crowded = workdir / "crowded"
    lookup.make_crowded_cache(crowded, file, CROWD)
    for label, root in (("1", cache), ("100k", crowded)):
        measured = lookup.in_process_lookup_us(root, INFOHASH, LOOKUPS)
        if isinstance(measured, str):
            results.note(f"in-process lookup skipped: {measured}")
            break
        record(f"lookup_us_{label}", measured["inotify"])
        record(f"lookup_us_{label}_no_watcher", measured["no_watcher"])
    try:
        server = servers.start_streme(crowded, INFOHASH, workdir)
    except Unavailable as exc:
        results.note(f"streme on the crowded cache: {exc}")
        return
    try:
        time.sleep(0.5)
        bench.measure_ttfb(server, plan, record, suffix="_100k")
    finally:
        server.stop()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally`s that stop the servers


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # wrk's 5,000 connections, and the servers', need more descriptors than the usual
    # soft limit of 1024; the servers started from here inherit the raised limit.
    raise_limit()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.monotonic()
    results = Results(args.names)
    missing = servers.streme_missing() if "streme" in args.names else None
    if missing:
        results.note(f"streme skipped: {missing}")
        args.names.remove("streme")
    workdir = Path(tempfile.mkdtemp(prefix="streme-perf-"))
    try:
        side_by_side(args, workdir, results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = results.medians()
    print()
    print(report.render(medians, args.baseline))
    print(
        f"\n{args.rounds} round(s) per server, wrk -t{wrkrun.THREADS} for "
        f"{args.seconds:g} s per load; medians over rounds (errors: sums). "
        f"Total {time.monotonic() - started:.0f} s."
    )
    for text in results.notes:
        print(f"note: {text}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    raw = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.json.write_text(
        json.dumps(
            {"args": raw, "samples": results.samples, "medians": medians, "notes": results.notes},
            indent=2,
        )
    )
    print(f"raw results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
