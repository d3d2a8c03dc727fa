"""The results table: medians per server, ratios to nginx and aiohttp, and the targets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    metric: str
    values: dict[str, float]  # server -> median
    target: str = ""
    met: Callable[[dict[str, float]], bool] | None = None


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.2f}x"


def render(rows: list[Row]) -> str:
    header = [
        "metric",
        "streme",
        "nginx",
        "aiohttp",
        "streme/nginx",
        "streme/aiohttp",
        "target",
        "met?",
    ]
    lines = [header]
    for row in rows:
        v = row.values
        met = "-"
        if row.met is not None and "streme" in v:
            try:
                met = "yes" if row.met(v) else "NO"
            except (KeyError, ZeroDivisionError):
                met = "-"
        lines.append(
            [
                row.metric,
                _fmt(v.get("streme")),
                _fmt(v.get("nginx")),
                _fmt(v.get("aiohttp")),
                _ratio(v.get("streme"), v.get("nginx")),
                _ratio(v.get("streme"), v.get("aiohttp")),
                row.target,
                met,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(line)
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
