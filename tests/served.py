"""`streme serve` as its own process, the way a user starts it, for the tests that need a
real process (signals, strace, worker processes): started, its stderr collected, stopped
by its PID."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STREME = [sys.executable, "-m", "streme"]
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    port: int
    lines: list[str] = field(default_factory=list)  # stderr so far (all of it after stop)
    reader: threading.Thread | None = None

    def log(self) -> str:
        return "".join(self.lines)


def serve(
    cache: Path,
    env: dict[str, str],
    *args: str,
    ready: str = "stream a cached video",
    prefix: tuple[str, ...] = (),
) -> Served:
    """`streme serve --port 0 --cache-dir CACHE ARGS` with `env` over this environment
    (run through `prefix`, e.g. `ip netns exec NS`, which must exec it: the PID stays);
    returns once its stderr has printed a line containing `ready` (30 s at most)."""
    proc = subprocess.Popen(
        [*prefix, *STREME, "serve", "--port", "0", "--cache-dir", str(cache), *args],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    url, port = "", 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        match = LISTENING.search(line)
        if match:
            url, port = match.group(1), int(match.group(2))
        if ready in line or not line:
            break
    if not port:
        stop(Served(proc, url, port, lines))
        raise AssertionError("streme serve did not start:\n" + "".join(lines))
    served = Served(proc, url, port, lines)
    stderr = proc.stderr
    served.reader = threading.Thread(target=lambda: served.lines.extend(stderr), daemon=True)
    served.reader.start()
    return served


def stop(served: Served) -> int:
    """SIGTERM, then SIGKILL after 30 s (raising): its exit status."""
    proc = served.proc
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise
    finally:
        if served.reader is not None:
            served.reader.join(timeout=10)  # to the end of its output
        if proc.stderr is not None:
            if served.reader is None:
                served.lines.extend(proc.stderr)
            proc.stderr.close()


def connection_on(port: int, worker: int, within: float = 10.0) -> http.client.HTTPConnection:
    """A kept-alive connection the kernel gave to process `worker` of a `--workers`
    server (read from `/health`): new connections until one does, for `within` s."""
    deadline = time.monotonic() + within
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/health")
            if json.loads(conn.getresponse().read()).get("worker") == worker:
                return conn
        except OSError:  # a worker being started again may reset a connection
            pass
        conn.close()
        time.sleep(0.01)
    raise AssertionError(f"no connection reached process {worker} in {tries} tries")
