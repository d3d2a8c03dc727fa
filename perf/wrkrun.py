"""Load with wrk: random aligned ranges or whole files, bounded in connections and time."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk") or "/usr/bin/wrk"

RANGE_SCRIPT = """\
local block = {block}
local blocks = {blocks}
local counter = 0
request = function()
  counter = counter + 1
  local i = (counter * 7919) % blocks
  local s = i * block
  return wrk.format("GET", nil, {{["Range"] = "bytes=" .. s .. "-" .. (s + block - 1)}})
end
"""

_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "B": 1}


@dataclass
class WrkResult:
    requests_per_s: float
    bytes_per_s: float
    p99_ms: float
    errors: str  # empty when there were none


def _number(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)([KMG]?B?)", text)
    if not match:
        raise ValueError(f"cannot read {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[match.group(2)]
    return float(match.group(1)) * scale


def parse(output: str) -> WrkResult:
    rps = _number(re.search(r"Requests/sec:\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    transfer = _number(re.search(r"Transfer/sec:\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"\s99%\s+(\S+)", output)
    errors = []
    for pattern in (r"Socket errors:[^\n]*", r"Non-2xx or 3xx responses: \d+"):
        found = re.search(pattern, output)
        if found:
            errors.append(found.group(0))
    return WrkResult(
        rps, transfer, _latency_ms(p99.group(1)) if p99 else float("nan"), "; ".join(errors)
    )


def run(
    url: str, *, connections: int, seconds: float, workdir: Path, block: int | None, size: int
) -> WrkResult:
    args = [
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if block is not None:
        script = workdir / f"ranges-{block}.lua"
        script.write_text(RANGE_SCRIPT.format(block=block, blocks=size // block))
        args += ["-s", str(script)]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    return parse(out)
