"""Hostile and odd request framing on real sockets, with nginx's answer beside ours.

Each case sends the same raw bytes to streme and to nginx 1.22 (each serving one 1.5 MB
file) on a fresh connection, and reads every response until the server closes or is
quiet for `WAIT` seconds. streme's statuses and whether it closed are asserted; so are
nginx's statuses (what nginx does is the reference, recorded here so a change in either
shows). nginx's close is not asserted: after an error it lingers, reading what the
client sends, before it closes. Where streme answers otherwise, `why` gives the RFC.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.client import exchange
from tests.conftest import INFOHASH, RunningServer, write_video
from tests.nginx import NGINX, Nginx, start_nginx

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed (make test installs it)")

SIZE = 1_500_000
WAIT = 0.5
HOST = "Host: x\r\n"


@dataclass(frozen=True)
class Case:
    name: str
    raw: str  # {p}: the file's path on the server under test
    ours: list[int]
    closed: bool
    nginx: list[int]
    why: str = ""


def get(extra: str = "", version: str = "1.1", body: str = "") -> str:
    return f"GET {{p}} HTTP/{version}\r\n{HOST}{extra}\r\n{body}"


HIDDEN = get()
SMUGGLED_BODY = "0\r\n\r\n" + HIDDEN

CASES = [
    # Request smuggling: h11 reads the chunked body (Transfer-Encoding wins, RFC 9112
    # 6.1) and took what the Content-Length covered after it as a second request.
    Case(
        "content-length-and-chunked",
        get(
            f"Content-Length: {len(SMUGGLED_BODY) + 8}\r\nTransfer-Encoding: chunked\r\n",
            body=SMUGGLED_BODY,
        ),
        [400],
        True,
        [400],
    ),
    Case(
        "chunked-then-content-length",
        get("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", body="0\r\n\r\n"),
        [400],
        True,
        [400],
    ),
    Case(
        "chunked-in-http-1.0",
        get("Transfer-Encoding: chunked\r\n", "1.0", "0\r\n\r\n"),
        [400],
        True,
        [400],
    ),
    Case("http-9.9", get(version="9.9"), [505], True, [505]),
    Case("http-2.0", get(version="2.0"), [505], True, [505]),
    Case(
        "http-0.9",
        get(version="0.9"),
        [505],
        True,
        [400],
        "RFC 9110 15.6.6: 505 for a major version the server does not support",
    ),
    Case("http-1.2-is-1.1", get(version="1.2"), [200], False, [200]),
    Case("http-1.0-closes", get(version="1.0"), [200], True, [200]),
    Case("empty-line-first", "\r\n" + get(), [200], False, [200]),
    Case("empty-lines-first", "\r\n\r\n\n" + get(), [200], False, [200]),
    Case("empty-line-between", get() + "\r\n" + get(), [200, 200], False, [200, 200]),
    Case("long-target", f"GET {{p}}?{'a' * 20_000} HTTP/1.1\r\n{HOST}\r\n", [414], True, [414]),
    Case(
        "long-header",
        get(f"X-Long: {'a' * 20_000}\r\n"),
        [431],
        True,
        [400],
        "RFC 6585 5: 431 for header fields too large",
    ),
    Case(
        "obs-fold",
        get("X-Folded: a\r\n  b\r\n"),
        [200],
        False,
        [400],
        "RFC 9112 5.2: reject, or replace each obs-fold with SP (h11 does the latter)",
    ),
    Case("bare-cr-in-value", get("X-A: a\rb\r\n"), [400], True, [400]),
    Case("bare-cr-line-end", f"GET {{p}} HTTP/1.1\r{HOST}\r\n", [400], True, [400]),
    Case("space-before-colon", "GET {p} HTTP/1.1\r\nHost : x\r\n\r\n", [400], True, [400]),
    Case("nul-in-value", get("X-A: a\x00b\r\n"), [400], True, [400]),
    Case("no-host", "GET {p} HTTP/1.1\r\n\r\n", [400], True, [400]),
    Case("two-hosts", get(HOST), [400], True, [400]),
    Case(
        "duplicate-content-length",
        get("Content-Length: 5\r\nContent-Length: 5\r\n", body="hello") + get(),
        [200, 200],
        False,
        [400],
        "RFC 9110 8.6: identical values MAY be taken as one (h11 does; no framing doubt)",
    ),
    Case(
        "conflicting-content-length",
        get("Content-Length: 5\r\nContent-Length: 6\r\n", body="hello!"),
        [400],
        True,
        [400],
    ),
    Case("negative-content-length", get("Content-Length: -1\r\n"), [400], True, [400]),
    Case("signed-content-length", get("Content-Length: +5\r\n", body="hello"), [400], True, [400]),
    Case(
        "chunk-extension",
        get("Transfer-Encoding: chunked\r\n", body="5;ext=1\r\nhello\r\n0\r\n\r\n") + get(),
        [200, 200],
        False,
        [200, 200],
    ),
    Case(
        "invalid-chunk-size",
        get("Transfer-Encoding: chunked\r\n", body="zz\r\nhello\r\n0\r\n\r\n"),
        [400],
        True,
        [400],
    ),
    Case("unknown-coding", get("Transfer-Encoding: gzip\r\n"), [501], True, [501]),
    Case(
        "unknown-coding-then-chunked",
        get("Transfer-Encoding: gzip, chunked\r\n", body="0\r\n\r\n"),
        [501],
        True,
        [501],
    ),
    Case(
        "body-over-the-limit-declared",
        get(f"Content-Length: {10 * 1024 * 1024}\r\n"),
        [413],
        True,
        [413],
    ),
    Case(
        "expect-100-continue",
        get("Expect: 100-continue\r\nContent-Length: 5\r\n"),
        [100],
        False,
        [100, 200],
        "nginx answers before the body it discards; streme reads it first (sent below)",
    ),
    Case(
        "expect-unknown",
        get("Expect: something-else\r\n"),
        [200],
        False,
        [200],
    ),
    Case(
        "lower-case-method",
        "get {p} HTTP/1.1\r\nHost: x\r\n\r\n",
        [501],
        False,
        [400],
        "RFC 9110 9.1: methods are case-sensitive; 'get' is a valid, unknown method",
    ),
]


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    root = tmp_path_factory.mktemp("nginx-hostile")
    write_video(root, "movie.mp4", SIZE)
    server = start_nginx(root / "nginx", root / "movie.mp4", url_name="movie.mp4")
    yield server
    server.stop()


@pytest.fixture
def streme(make_server: Callable[..., RunningServer], cache_dir: Path) -> RunningServer:
    write_video(cache_dir, f"{INFOHASH}-movie.mp4", SIZE)
    return make_server()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_framing_against_nginx(case: Case, streme: RunningServer, nginx: Nginx) -> None:
    ours = exchange(streme.port, case.raw.format(p=f"/stream/proxy/{INFOHASH}").encode(), WAIT)
    theirs = exchange(nginx.port, case.raw.format(p=nginx.path).encode(), WAIT)
    assert (ours.statuses, ours.closed) == (case.ours, case.closed)
    assert theirs.statuses == case.nginx
    assert (case.ours == case.nginx) == (not case.why), "explain every difference from nginx"
    # The server keeps serving.
    assert exchange(streme.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", WAIT).statuses == [200]


def test_smuggled_request_is_never_answered(streme: RunningServer) -> None:
    """The hidden request behind a Content-Length that covers a chunked body's end."""
    hidden = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    body = "0\r\n\r\n" + hidden
    raw = (
        f"GET /stream/proxy/{INFOHASH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n{body}"
    )
    got = exchange(streme.port, raw.encode(), WAIT)
    assert got.statuses == [400]
    assert got.closed


def test_expect_100_continue_then_body(streme: RunningServer) -> None:
    """The client waits for 100 before its body; then the response follows."""
    path = f"/stream/proxy/{INFOHASH}"
    with socket.create_connection(("127.0.0.1", streme.port), timeout=5) as sock:
        sock.sendall(get("Expect: 100-continue\r\nContent-Length: 5\r\n").format(p=path).encode())
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        head = sock.recv(200)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_slow_body_meets_the_request_deadline(
    make_server: Callable[..., RunningServer],
) -> None:
    """A body that never ends cannot hold a connection past `request_head_timeout`."""
    srv = make_server(request_head_timeout=0.5)
    started = time.monotonic()
    got = exchange(
        srv.port, get("Content-Length: 100\r\n", body="abc").format(p="/health").encode(), 3
    )
    assert got.statuses == [408]
    assert got.closed
    assert time.monotonic() - started < 2.5


def test_connections_past_the_cap_get_503(make_server: Callable[..., RunningServer]) -> None:
    srv = make_server(max_connections=3)
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
    try:
        for sock in held:  # each is counted in once it answers
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        got = exchange(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", WAIT)
        assert got.statuses == [503]
        assert got.closed
    finally:
        for sock in held:
            sock.close()
    assert wait_for_health(srv.port)


def wait_for_health(port: int) -> bool:
    """Once connections close, the server takes new ones again."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", WAIT).statuses == [200]:
            return True
        time.sleep(0.05)
    return False


def test_nginx_past_its_connection_limit_drops_older_connections(nginx: Nginx) -> None:
    """For the record: nginx (worker_connections 256 here) at its limit closes connections
    that are idle or still sending a head ("worker_connections are not enough, reusing
    connections") to serve the new one. streme keeps those and answers the new one 503
    (above): dropping a player's kept-alive connection would stall it."""
    held = [socket.create_connection(("127.0.0.1", nginx.port), timeout=5) for _ in range(300)]
    try:
        for sock in held:
            sock.sendall(b"GET /x HTTP/1.1\r\n")  # a head that has not ended
        got = exchange(nginx.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", WAIT)
        assert got.statuses == [404]
        dropped = 0
        for sock in held:
            sock.settimeout(0.01)
            try:
                dropped += sock.recv(100) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                dropped += 1
        assert dropped > 0
    finally:
        for sock in held:
            sock.close()
