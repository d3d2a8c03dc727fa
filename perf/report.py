"""The results table: one row per metric, medians per server, ratios, targets and verdicts.

A verdict is "yes"/"NO" when every number it needs was measured, "-" otherwise (a server
skipped with --only, or streme not runnable yet).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import ge, le, lt

SERVERS = ("streme", "baseline", "nginx", "aiohttp")  # baseline: `--baseline REV`
Medians = dict[str, dict[str, float]]  # server -> metric -> median
Value = Callable[[str, str], float]  # (server, metric) -> median; KeyError if not measured
Check = Callable[[Value], bool]


@dataclass(frozen=True)
class Row:
    label: str
    metric: str
    target: str = ""
    met: Check | None = None


def _v(m: Medians) -> Value:
    def value(server: str, metric: str) -> float:
        return m[server][metric]  # KeyError: not measured

    return value


def _streme(metric: str, op: Callable[[float, float], bool], bound: float) -> Check:
    """streme's own value against an absolute bound."""
    return lambda v: op(v("streme", metric), bound)


def _ratio(metric: str, other: str, op: Callable[[float, float], bool], bound: float) -> Check:
    """streme's value divided by `other`'s against a bound."""
    return lambda v: op(v("streme", metric) / v(other, metric), bound)


def _both(*checks: Check) -> Check:
    return lambda v: all(check(v) for check in checks)


ROWS = [
    Row("TTFB keep-alive p50 (us)", "ttfb_p50_us"),
    Row("TTFB keep-alive p99 (us)", "ttfb_p99_us", "<= 1000 us", _streme("ttfb_p99_us", le, 1000)),
    Row(
        "TTFB keep-alive p99, original target",
        "ttfb_p99_us",
        "< 100,000 us",
        _streme("ttfb_p99_us", lt, 100_000),
    ),
    Row("TTFB new connection p50 (us)", "ttfb_new_p50_us"),
    Row(
        "TTFB new connection p99 (us)",
        "ttfb_new_p99_us",
        "<= 1000 us",
        _streme("ttfb_new_p99_us", le, 1000),
    ),
    Row(
        "64 KiB ranges, 50 conns (req/s)",
        "r64_rps",
        ">= 0.4x nginx, >= 4x aiohttp",
        _both(_ratio("r64_rps", "nginx", ge, 0.4), _ratio("r64_rps", "aiohttp", ge, 4.0)),
    ),
    Row("64 KiB ranges p99 latency (ms)", "r64_p99_ms"),
    Row(
        "1 MiB ranges, 50 conns (GB/s)",
        "r1m_gbps",
        ">= 0.8x nginx",
        _ratio("r1m_gbps", "nginx", ge, 0.8),
    ),
    Row("1 MiB ranges p99 latency (ms)", "r1m_p99_ms"),
    Row(
        "whole 64 MiB file, 4 conns (GB/s)",
        "whole_gbps",
        ">= 1.0x nginx",
        _ratio("whole_gbps", "nginx", ge, 1.0),
    ),
    Row(
        "server CPU s per GB, 1 MiB ranges",
        "cpu_s_per_gb_r1m",
        "<= 1.5x nginx",
        _ratio("cpu_s_per_gb_r1m", "nginx", le, 1.5),
    ),
    Row(
        "server CPU s per GB, whole file",
        "cpu_s_per_gb_whole",
        "<= 1.5x nginx",
        _ratio("cpu_s_per_gb_whole", "nginx", le, 1.5),
    ),
    Row("64 KiB ranges, 5,000 conns (req/s)", "c5k_rps"),
    Row(
        "64 KiB ranges, 5,000 conns, p99 (ms)",
        "c5k_p99_ms",
        "<= 3x nginx",
        _ratio("c5k_p99_ms", "nginx", le, 3.0),
    ),
    Row("wrk errors, 64 KiB (all rounds)", "r64_errors", "0", _streme("r64_errors", le, 0)),
    Row("wrk errors, 5,000 conns (all rounds)", "c5k_errors", "0", _streme("c5k_errors", le, 0)),
    Row("wrk errors, 1 MiB (all rounds)", "r1m_errors", "0", _streme("r1m_errors", le, 0)),
    Row("wrk errors, whole file (all rounds)", "whole_errors", "0", _streme("whole_errors", le, 0)),
    Row("idle RSS (MiB)", "idle_rss_mib"),
    Row(
        "lookup in-process, 100k files (us)",
        "lookup_us_100k",
        "<= 50 us",
        _streme("lookup_us_100k", le, 50),
    ),
    Row("lookup in-process, 100k, no inotify (us)", "lookup_us_100k_no_watcher"),
    Row("lookup in-process, 1 file (us)", "lookup_us_1"),
    Row(
        "TTFB keep-alive p50, 100k files (us)",
        "ttfb_p50_us_100k",
    ),
    Row(
        "TTFB keep-alive p99, 100k files (us)",
        "ttfb_p99_us_100k",
        "<= 1000 us",
        _streme("ttfb_p99_us_100k", le, 1000),
    ),
    Row("TTFB new conn p50, 100k files (us)", "ttfb_new_p50_us_100k"),
    Row(
        "TTFB new conn p99, 100k files (us)",
        "ttfb_new_p99_us_100k",
        "<= 1000 us",
        _streme("ttfb_new_p99_us_100k", le, 1000),
    ),
]


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.2f}x"


def _verdict(row: Row, medians: Medians) -> str:
    if row.met is None:
        return ""
    try:
        return "yes" if row.met(_v(medians)) else "NO"
    except (KeyError, ZeroDivisionError):
        return "-"


def render(medians: Medians, baseline: str | None = None) -> str:
    """The table; with a baseline revision, its column and streme/baseline ratios too."""
    shown = [s for s in SERVERS if s != "baseline" or baseline is not None]
    names = [f"baseline {baseline}" if s == "baseline" else s for s in shown]
    ratios = ["streme/nginx", "streme/aiohttp"]
    if baseline is not None:
        ratios.insert(0, "streme/baseline")
    header = ["metric", *names, *ratios, "target", "met?"]
    lines = [header]
    for row in ROWS:
        if not any(row.metric in medians.get(s, {}) for s in shown):
            continue
        v = {s: medians[s][row.metric] for s in shown if row.metric in medians.get(s, {})}
        cells = [_fmt_ratio(v.get("streme"), v.get(r.split("/")[1])) for r in ratios]
        lines.append(
            [
                row.label,
                *(_fmt(v.get(s)) for s in shown),
                *cells,
                row.target,
                _verdict(row, medians),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = (c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line))
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
