"""One round of loads against one running server, recorded as named samples.

The order inside a round is fixed and the same for every server: keep-alive TTFB,
new-connection TTFB, 64 KiB ranges, 1 MiB ranges, whole file, then 64 KiB ranges on
5,000 keep-alive connections (as a load-test harness opens them; `make perf` raises the
descriptor limit for wrk and the servers). Server CPU is read from
/proc before and after each of the last two loads and divided by the bytes wrk read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from perf import ttfb, wrkrun
from perf.servers import Server

KiB, MiB = 1024, 1024 * 1024
CROWD_CONNECTIONS = 5000

Record = Callable[[str, float], None]


@dataclass(frozen=True)
class Plan:
    seconds: float  # each wrk load
    ttfb_count: int  # keep-alive TTFB requests; a quarter of that on new connections
    range_64k: Path  # wrk Lua scripts
    range_1m: Path


def make_plan(workdir: Path, size: int, seconds: float, ttfb_count: int) -> Plan:
    return Plan(
        seconds=seconds,
        ttfb_count=ttfb_count,
        range_64k=wrkrun.range_script(workdir, 64 * KiB, size),
        range_1m=wrkrun.range_script(workdir, MiB, size),
    )


def measure_ttfb(server: Server, plan: Plan, record: Record, suffix: str = "") -> None:
    lat = ttfb.keep_alive(server.port, server.path, plan.ttfb_count)
    record(f"ttfb_p50_us{suffix}", lat.p50_us)
    record(f"ttfb_p99_us{suffix}", lat.p99_us)
    lat = ttfb.new_connections(server.port, server.path, plan.ttfb_count // 4)
    record(f"ttfb_new_p50_us{suffix}", lat.p50_us)
    record(f"ttfb_new_p99_us{suffix}", lat.p99_us)


def measure_round(server: Server, plan: Plan, record: Record) -> list[str]:
    """Run every load once against `server`; return wrk's complaints, if any."""
    measure_ttfb(server, plan, record)
    url = f"http://127.0.0.1:{server.port}{server.path}"
    complaints: list[str] = []

    def load(label: str, connections: int, script: Path | None) -> wrkrun.WrkResult:
        result = wrkrun.run(url, connections=connections, seconds=plan.seconds, script=script)
        record(f"{label}_errors", result.errors)
        if result.errors:
            complaints.append(f"{label}: {result.error_text}")
        if not server.alive():
            complaints.append(f"{label}: server exited ({server.process.returncode})")
        return result

    r64 = load("r64", 50, plan.range_64k)
    record("r64_rps", r64.requests_per_s)
    record("r64_p99_ms", r64.p99_ms)

    cpu = server.cpu_seconds()
    r1m = load("r1m", 50, plan.range_1m)
    cpu_used, cpu = server.cpu_seconds() - cpu, server.cpu_seconds()
    record("r1m_gbps", r1m.bytes_per_s / 1e9)
    record("r1m_p99_ms", r1m.p99_ms)
    record("cpu_s_per_gb_r1m", cpu_used / (r1m.bytes_read / 1e9))

    whole = load("whole", 4, None)
    cpu_used = server.cpu_seconds() - cpu
    record("whole_gbps", whole.bytes_per_s / 1e9)
    record("cpu_s_per_gb_whole", cpu_used / (whole.bytes_read / 1e9))

    crowd = load("c5k", CROWD_CONNECTIONS, plan.range_64k)
    record("c5k_rps", crowd.requests_per_s)
    record("c5k_p99_ms", crowd.p99_ms)
    return complaints
