"""Load with wrk: random aligned ranges or whole-file GETs, bounded in connections and time.

wrk runs with ONE thread (`-t1`) for every server: the machine has 2 cores, so wrk gets
one and the server (single-threaded in all three cases) the other. Range loads use a Lua
script that picks random block-aligned ranges; the generator is seeded per wrk thread
with a fixed number, so every server is asked for the same sequence of ranges.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk") or "/usr/bin/wrk"
THREADS = 1

RANGE_SCRIPT = """\
local block = {block}
local blocks = {blocks}
local made = 0
setup = function(thread)
  made = made + 1
  thread:set("thread_id", made)
end
init = function(args)
  math.randomseed(1000 + (thread_id or 0))
end
request = function()
  local s = math.random(0, blocks - 1) * block
  return wrk.format("GET", nil, {{["Range"] = "bytes=" .. s .. "-" .. (s + block - 1)}})
end
"""

# wrk prints byte counts in binary units ("1.21GB" = 1.21 * 2**30) and counts in decimal.
_BYTES = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_TIME_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class WrkResult:
    requests: int
    seconds: float  # wrk's own measured duration
    bytes_read: float
    requests_per_s: float
    p99_ms: float
    errors: int  # socket errors (connect, read, write, timeout) + non-2xx/3xx responses
    error_text: str  # wrk's own lines about them, empty when there were none

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_read / self.seconds


def _bytes(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)([KMGT]?B)", text)
    if not match:
        raise ValueError(f"wrk byte count {text!r}")
    return float(match.group(1)) * _BYTES[match.group(2)]


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"wrk duration {text!r}")
    return float(match.group(1)) * _TIME_S[match.group(2)]


def parse(output: str) -> WrkResult:
    summary = re.search(r"(\d+) requests in (\S+), (\S+) read", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if summary is None or rps is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    errors, lines = 0, []
    socket_errors = re.search(r"Socket errors:([^\n]*)", output)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
        lines.append(socket_errors.group(0).strip())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
        lines.append(non_2xx.group(0))
    return WrkResult(
        requests=int(summary.group(1)),
        seconds=_seconds(summary.group(2)),
        bytes_read=_bytes(summary.group(3)),
        requests_per_s=float(rps.group(1)),
        p99_ms=_seconds(p99.group(1)) * 1e3 if p99 else float("nan"),
        errors=errors,
        error_text="; ".join(lines),
    )


def range_script(workdir: Path, block: int, size: int) -> Path:
    script = workdir / f"ranges-{block}.lua"
    script.write_text(RANGE_SCRIPT.format(block=block, blocks=size // block))
    return script


def run(
    url: str,
    *,
    connections: int,
    seconds: float,
    script: Path | None = None,
    threads: int = THREADS,
) -> WrkResult:
    """One bounded wrk load: `connections` keep-alive connections for `seconds`."""
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--latency", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    return parse(done.stdout)
