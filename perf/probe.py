"""Probes of a client under measurement: its HTTP responses, its download file, its RSS.

Raw HTTP/1.1 over a socket (no client library between the clock and the bytes): `connect`,
`request` a Range, `read_marks` (the first body byte, then the times byte counts are
reached). `on_disk`: how much of a range the client's sparse download file holds;
`rss_mib`: a process's resident memory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def connect(
    port: int,
    deadline: float,
    timeout: float = 60,
    proc: subprocess.Popen[bytes] | None = None,
) -> socket.socket:
    """A TCP_NODELAY connection to 127.0.0.1:`port` (reads time out after `timeout`),
    retried until `deadline` (monotonic) or, with `proc`, until that process exits."""
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError:
            if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
                raise
            time.sleep(0.005)


def request(sock: socket.socket, path: str, first: int, last: int | None = None) -> None:
    spec = f"bytes={first}-" if last is None else f"bytes={first}-{last}"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: {spec}\r\n\r\n".encode())


@dataclass
class Marks:
    """Seconds from t0 to the first body byte (`first`, with `at_first` bytes by then),
    and to each mark reached (`times`); `got`: body bytes read."""

    first: float
    at_first: int
    times: list[float]
    got: int


def read_marks(
    sock: socket.socket,
    marks: list[int],
    t0: float,
    deadline: float = float("inf"),
    at_mark: Callable[[int], None] | None = None,
) -> Marks:
    """Read the response's head, then its body until the last of `marks` (increasing
    byte counts), its end, or `deadline` (monotonic; then TimeoutError). `at_mark(i)` is
    called as mark i is reached, after its time is taken."""
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
    at_first = got
    times: list[float] = []
    while len(times) < len(marks):
        while len(times) < len(marks) and got >= marks[len(times)]:
            times.append(time.perf_counter() - t0)
            if at_mark is not None:
                at_mark(len(times) - 1)
        if len(times) == len(marks):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{got} of {marks[-1]} bytes by the deadline")
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    return Marks(first, at_first, times, got)


def read_body(sock: socket.socket, limit: int, t0: float) -> tuple[float, float, int]:
    """Read until `limit` body bytes: (first byte time, time at limit, bytes) from t0."""
    got = read_marks(sock, [limit], t0)
    return got.first, (got.times or [time.perf_counter() - t0])[-1], got.got


def on_disk(root: Path, name: str, first: int, end: int) -> int:
    """Bytes of [first, end) that the file `name` under `root` holds (0 if none yet)."""
    found = next(root.rglob(name), None)
    if found is None:
        return 0
    held = 0
    try:
        fd = os.open(found, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        at = first
        while at < end:
            try:
                data = os.lseek(fd, at, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after `at`
                break
            if data >= end:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            held += min(hole, end) - data
            at = hole
    finally:
        os.close(fd)
    return held


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
