"""The HTTP/1.1 core over real loopback sockets: framing, keep-alive, limits, timeouts."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.client import RawClient, get
from tests.conftest import INFOHASH, RunningServer, open_fd_count, wait_until, write_video


def test_health_keep_alive_and_headers(server: RunningServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/health")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.reason == "OK"
        assert resp.getheader("Content-Type") == "application/json"
        assert resp.getheader("Server") == "streme"
        assert resp.getheader("Date", "").endswith(" GMT")
        assert json.loads(resp.read()) == {"status": "ok"}
    conn.close()
    assert server.call(lambda: server.app.server.connection_count) <= 1


def test_head_has_headers_but_no_body(server: RunningServer) -> None:
    client = RawClient(server.port)
    client.send(get("/health", method="HEAD") + get("/health"))
    head = client.read_reply("HEAD")
    assert head.status == 200
    assert head.body == b""
    full = client.read_reply()
    assert head.header("content-length") == full.header("content-length") == str(len(full.body))
    client.close()


def test_pipelined_requests_answer_in_order(server: RunningServer) -> None:
    client = RawClient(server.port)
    client.send(get("/health") + get("/nope") + get("/health", method="HEAD") + get("/health"))
    statuses = [client.read_reply().status, client.read_reply().status]
    statuses.append(client.read_reply("HEAD").status)
    statuses.append(client.read_reply().status)
    assert statuses == [200, 404, 200, 200]
    client.close()


def test_unknown_route_is_json_404(server: RunningServer) -> None:
    client = RawClient(server.port)
    client.send(get("/nowhere"))
    reply = client.read_reply()
    assert reply.status == 404
    assert reply.reason == b"Not Found"
    assert json.loads(reply.body)["error"] == "not_found"
    client.close()


def test_method_not_allowed_has_allow(server: RunningServer) -> None:
    client = RawClient(server.port)
    client.send(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    reply = client.read_reply()
    assert reply.status == 405
    assert reply.header("allow") == "GET, HEAD"
    assert json.loads(reply.body)["error"] == "method_not_allowed"
    client.close()


def test_unknown_method_is_501(server: RunningServer) -> None:
    client = RawClient(server.port)
    client.send(b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = client.read_reply()
    assert reply.status == 501
    assert json.loads(reply.body)["error"] == "not_implemented"
    client.close()


def test_malformed_request_gets_400_then_close(server: RunningServer) -> None:
    client = RawClient(server.port)
    client.send(b"THIS IS NOT HTTP\r\n\r\n")
    reply = client.read_reply()
    assert reply.status == 400
    assert reply.header("connection") == "close"
    assert json.loads(reply.body)["error"] == "bad_request"
    assert client.closed_by_server()
    client.close()
    # ... and the server keeps serving.
    again = RawClient(server.port)
    again.send(get("/health"))
    assert again.read_reply().status == 200
    again.close()


def test_oversized_head_gets_431(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(max_head_bytes=4096)
    client = RawClient(server.port)
    client.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
    reply = client.read_reply()
    assert reply.status == 431
    assert json.loads(reply.body)["error"] == "head_too_large"
    assert client.closed_by_server()
    client.close()


def test_small_body_is_read_and_dropped(server: RunningServer) -> None:
    client = RawClient(server.port)
    client.send(
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + get("/health")
    )
    assert client.read_reply().status == 200
    assert client.read_reply().status == 200
    client.close()


def test_large_body_gets_413(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(max_body_bytes=1024)
    client = RawClient(server.port)
    client.send(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + b"x" * 4096)
    reply = client.read_reply()
    assert reply.status == 413
    assert client.closed_by_server()
    client.close()


def test_slowloris_head_timeout(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(request_head_timeout=0.5)
    client = RawClient(server.port)
    started = time.monotonic()
    client.send(b"GET /health HTTP/1.1\r\n")
    time.sleep(0.2)
    client.send(b"X-Slow: 1\r\n")  # trickling bytes must not extend the deadline
    reply = client.read_reply()
    assert reply.status == 408
    assert json.loads(reply.body)["error"] == "request_timeout"
    assert client.closed_by_server()
    assert time.monotonic() - started < 3
    client.close()


def test_silent_connection_is_closed_quietly(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(request_head_timeout=0.3)
    client = RawClient(server.port)
    client.sock.settimeout(5)
    assert client.sock.recv(100) == b""  # closed with no 408 for a client that sent nothing
    client.close()


def test_keep_alive_idle_timeout(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(keep_alive_timeout=0.3, request_head_timeout=5)
    client = RawClient(server.port)
    client.send(get("/health"))
    assert client.read_reply().status == 200
    started = time.monotonic()
    assert client.closed_by_server(timeout=3)
    assert time.monotonic() - started < 2
    client.close()


def test_max_requests_per_connection(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(max_requests_per_connection=2)
    client = RawClient(server.port)
    client.send(get("/health") + get("/health") + get("/health"))
    first, second = client.read_reply(), client.read_reply()
    assert first.header("connection") is None
    assert second.header("connection") == "close"
    assert client.closed_by_server()
    client.close()


def test_client_disconnect_mid_body_leaks_nothing(server: RunningServer, cache_dir: Path) -> None:
    write_video(cache_dir, f"{INFOHASH}-big.mp4", 64 * 1024 * 1024)
    warm = RawClient(server.port)  # the index keeps the file open between requests
    warm.send(get(f"/stream/proxy/{INFOHASH}", extra="Range: bytes=0-0\r\n"))
    assert warm.read_reply().status == 206
    warm.close()
    assert wait_until(lambda: server.connection_count() == 0)
    baseline_fds = open_fd_count()
    for _ in range(5):
        client = RawClient(server.port)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.send(get(f"/stream/proxy/{INFOHASH}"))
        reply = client.read_reply(max_body=100_000)
        assert reply.status == 200
        client.close()
    assert wait_until(lambda: server.connection_count() == 0)
    assert wait_until(lambda: server.task_count() == 0)
    assert wait_until(lambda: open_fd_count() <= baseline_fds)


def test_graceful_shutdown_finishes_in_flight(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-big.mp4", 16 * 1024 * 1024)
    server = make_server(shutdown_timeout=10)
    client = RawClient(server.port)
    client.send(get(f"/stream/proxy/{INFOHASH}"))
    first = client.sock.recv(1000)  # the response has started
    assert first.startswith(b"HTTP/1.1 200 OK")

    def shut_down() -> None:
        asyncio.run_coroutine_threadsafe(server.app.server.shutdown(), server.loop).result(30)

    stopper = threading.Thread(target=shut_down)
    stopper.start()
    received = bytearray(first)
    client.sock.settimeout(10)
    while True:
        chunk = client.sock.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    stopper.join(timeout=30)
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == data
    client.close()
