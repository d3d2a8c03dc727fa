"""Unloaded time to first byte: one request at a time, from sendall() to the first byte.

Each request is a GET with `Range: bytes=0-65535` (no HEAD), and the whole 64 KiB answer
is read before the next request is sent, so only one request is ever in flight. The
keep-alive loop reconnects if the server closes (a per-connection request limit).
"""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import dataclass

WARM_UP = 50  # requests not counted (keep-alive; a fifth of that on new connections)


@dataclass
class Latency:
    p50_us: float
    p99_us: float


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _read_response(sock: socket.socket, first: bytes) -> bool:
    """Read the rest of one response with a Content-Length body; True if it closes."""
    data = first
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    closing = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"connection" and b"close" in value.lower():
            closing = True
    remaining = length - len(body)
    while remaining > 0:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("closed mid-body")
        remaining -= len(chunk)
    return closing


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def keep_alive(port: int, path: str, count: int, range_header: str = "bytes=0-65535") -> Latency:
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: {range_header}\r\n\r\n").encode()
    samples: list[float] = []
    sock = _connect(port)
    try:
        for i in range(count + WARM_UP):
            start = time.perf_counter()
            sock.sendall(request)
            first = sock.recv(65536)
            elapsed = time.perf_counter() - start
            if _read_response(sock, first):  # the server's max requests per connection
                sock.close()
                sock = _connect(port)
            if i >= WARM_UP:
                samples.append(elapsed * 1e6)
    finally:
        sock.close()
    return Latency(statistics.median(samples), _percentile(samples, 0.99))


def new_connections(port: int, path: str, count: int) -> Latency:
    """The same request on a new TCP connection each time (`Connection: close`).

    The clock starts at sendall(), as for keep-alive: on loopback connect() returns once
    the kernel finished the handshake, so the server's accept() falls inside the measure.
    """
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-65535\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    samples: list[float] = []
    for i in range(count + WARM_UP // 5):
        with _connect(port) as sock:
            start = time.perf_counter()
            sock.sendall(request)
            first = sock.recv(65536)
            elapsed = time.perf_counter() - start
            _read_response(sock, first)
        if i >= WARM_UP // 5:
            samples.append(elapsed * 1e6)
    return Latency(statistics.median(samples), _percentile(samples, 0.99))
