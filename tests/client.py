"""A tiny raw-socket HTTP client for protocol tests, parsing responses with h11."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h11


@dataclass
class Reply:
    status: int
    reason: bytes
    headers: dict[str, str]
    body: bytes = b""
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class RawClient:
    """One TCP connection; `send` raw bytes, `read_reply` parses the next response."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h11.Connection(h11.CLIENT)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self, method: str = "GET", max_body: int | None = None) -> Reply:
        # h11 (client side) needs to believe it sent the request to parse the answer.
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        self.conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        self.conn.send(h11.EndOfMessage())
        reply: Reply | None = None
        body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = self.sock.recv(1 << 20)
                self.conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                headers: dict[str, str] = {}
                for name, value in event.headers:
                    headers[name.decode()] = value.decode("latin-1")
                reply = Reply(
                    event.status_code, event.reason, headers, raw_headers=list(event.headers)
                )
            elif isinstance(event, h11.Data):
                body += event.data
                if max_body is not None and len(body) >= max_body:
                    assert reply is not None
                    reply.body = bytes(body)
                    return reply
            elif isinstance(event, h11.EndOfMessage):
                assert reply is not None
                reply.body = bytes(body)
                return reply
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before a full response")

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def read_head(sock: socket.socket) -> tuple[bytes, bytearray]:
    """Read a response's head off a raw socket: (the head, the body bytes read with it)."""
    received = bytearray()
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(16 * 1024)
        assert chunk, "closed before the response head"
        received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    return head, bytearray(body)


def get(path: str, host: str = "127.0.0.1", extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


@dataclass
class Exchange:
    """What a server answered on one connection to some raw bytes."""

    statuses: list[int]
    closed: bool  # the server closed (EOF or reset) within the wait


def exchange(port: int, raw: bytes, wait: float = 1.0) -> Exchange:
    """Send `raw` on a fresh connection and read every response until the server closes
    or is quiet for `wait` seconds. Bodies are skipped by their Content-Length (a 1xx
    has none); the statuses are what a client would see, in order."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(raw)
        received = bytearray()
        closed = False
        try:
            while chunk := sock.recv(1 << 20):
                received += chunk
            closed = True
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except TimeoutError:
            pass
    return Exchange(_statuses(bytes(received)), closed)


def _statuses(data: bytes) -> list[int]:
    statuses: list[int] = []
    while data:
        head, found, data = data.partition(b"\r\n\r\n")
        assert found, f"a response head ends early: {head[:80]!r}"
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        statuses.append(status)
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and status >= 200:
                length = int(value)
        data = data[length:]
    return statuses
