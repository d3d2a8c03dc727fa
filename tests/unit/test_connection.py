"""The sans-I/O connection: bytes and times in, events and decisions out. No sockets."""

from __future__ import annotations

import pytest

from streme.http.connection import (
    CLOSED,
    CONTINUE,
    NEED_DATA,
    Expiry,
    HTTPConnection,
    Limits,
    Ready,
    Refused,
)

LIMITS = Limits(
    max_head_bytes=1024,
    max_body_bytes=100,
    max_requests=3,
    head_timeout=10.0,
    idle_timeout=15.0,
)
GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"


def ready(conn: HTTPConnection) -> Ready:
    event = conn.next_event()
    assert isinstance(event, Ready), event
    return event


def refused(conn: HTTPConnection) -> Refused:
    event = conn.next_event()
    assert isinstance(event, Refused), event
    return event


def test_a_request_is_ready_with_its_headers() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(b"GET /x?y=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n", now=1.0)
    request = ready(conn).request
    assert (request.method, request.target) == ("GET", "/x?y=1")
    assert request.headers == {"host": "h", "x-a": "1, 2"}
    assert conn.busy
    assert conn.deadline is None
    assert conn.next_event() is NEED_DATA  # nothing more until the response is done


def test_head_arriving_in_pieces_needs_data() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET[:10], now=1.0)
    assert conn.next_event() is NEED_DATA
    conn.receive(GET[10:], now=2.0)
    ready(conn)


def test_keep_alive_then_idle_deadline() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET, now=1.0)
    ready(conn)
    assert conn.will_keep_alive()
    assert conn.response_done(now=2.0) is True
    assert not conn.busy
    assert conn.deadline == 2.0 + LIMITS.idle_timeout
    assert conn.expired(now=16.9) is Expiry.NOTHING
    assert conn.expired(now=17.0) is Expiry.CLOSE


def test_pipelined_requests_come_one_at_a_time() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET + GET.replace(b"/a", b"/b"), now=1.0)
    assert ready(conn).request.target == "/a"
    assert conn.next_event() is NEED_DATA  # busy
    assert conn.buffered == len(GET)
    conn.response_done(now=2.0)
    assert conn.deadline == 2.0 + LIMITS.head_timeout  # the next request has begun
    assert ready(conn).request.target == "/b"


@pytest.mark.parametrize("prefix", [b"\r\n", b"\n", b"\r\n\r\n"])
def test_empty_lines_before_a_request_are_ignored(prefix: bytes) -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(prefix, now=1.0)
    assert conn.next_event() is NEED_DATA
    conn.receive(GET, now=1.0)
    ready(conn)
    conn.response_done(now=2.0)
    conn.receive(prefix + GET, now=3.0)
    ready(conn)


@pytest.mark.parametrize(
    ("head", "keep"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", True),
    ],
)
def test_keep_alive_rule(head: bytes, keep: bool) -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(head, now=0.0)
    ready(conn)
    assert conn.will_keep_alive() is keep
    assert conn.response_done(now=1.0) is keep


def test_the_request_cap_closes_after_the_last() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    for n in range(1, LIMITS.max_requests + 1):
        conn.receive(GET, now=n)
        ready(conn)
        assert conn.will_keep_alive() is (n < LIMITS.max_requests)
        conn.response_done(now=n)


def test_shutdown_makes_the_response_in_flight_the_last() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET, now=0.0)
    ready(conn)
    conn.close_after_response()
    assert not conn.will_keep_alive()
    assert conn.response_done(now=1.0) is False


def test_a_connection_that_never_sends_closes_quietly() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    assert conn.deadline == LIMITS.head_timeout
    assert conn.expired(now=LIMITS.head_timeout) is Expiry.CLOSE


def test_a_partial_head_times_out_with_408() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(b"GET / HT", now=5.0)
    assert conn.deadline == LIMITS.head_timeout  # from the connection's opening
    assert conn.expired(now=LIMITS.head_timeout) is Expiry.TIMEOUT


def test_the_request_deadline_runs_until_the_body_is_in() -> None:
    """The slowloris guard covers the body too: the deadline set by the first byte holds."""
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET, now=0.0)
    ready(conn)
    conn.response_done(now=100.0)
    conn.receive(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab", now=101.0)
    assert conn.next_event() is NEED_DATA
    assert conn.deadline == 101.0 + LIMITS.head_timeout
    conn.receive(b"c", now=110.0)
    assert conn.next_event() is NEED_DATA
    assert conn.deadline == 101.0 + LIMITS.head_timeout  # not moved by body bytes
    assert conn.expired(now=111.0) is Expiry.TIMEOUT


def test_a_busy_connection_has_no_deadline() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET, now=0.0)
    ready(conn)
    assert conn.expired(now=1000.0) is Expiry.NOTHING


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
            "bad_request",
        ),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
        (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 2000 + b"\r\n\r\n", 431, "head_too_large"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", 413, "body_too_large"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "bad_request"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "bad_request"),  # no Host
    ],
)
def test_refusals(raw: bytes, status: int, code: str) -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(raw, now=0.0)
    event = refused(conn)
    assert (event.status, event.code) == (status, code)
    assert not conn.will_keep_alive()
    assert conn.next_event() is NEED_DATA  # nothing more is read


def test_a_long_target_arriving_in_pieces_is_414() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(b"GET /" + b"a" * 600, now=0.0)
    assert conn.next_event() is NEED_DATA
    conn.receive(b"a" * 600, now=0.0)
    assert refused(conn).status == 414


def test_a_chunked_body_over_the_limit_is_413() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", now=0.0)
    assert conn.next_event() is NEED_DATA
    conn.receive(b"65\r\n" + b"a" * 101 + b"\r\n", now=0.0)
    assert refused(conn).status == 413


def test_expect_continue_then_the_body() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    conn.receive(head, now=0.0)
    assert conn.next_event() is CONTINUE
    assert conn.next_event() is NEED_DATA
    conn.receive(b"abc", now=0.0)
    assert ready(conn).request.method == "POST"


def test_end_of_input_between_requests_is_closed() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET, now=0.0)
    ready(conn)
    conn.receive(b"", now=0.0)  # the client half-closes while its response is busy
    conn.response_done(now=1.0)
    assert conn.next_event() is CLOSED


def test_end_of_input_inside_a_head_is_a_400() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(b"GET / HT", now=0.0)
    conn.receive(b"", now=0.0)
    assert refused(conn).status == 400


def test_raw_request_keeps_this_request_and_what_followed() -> None:
    conn = HTTPConnection(LIMITS, now=0.0, keep_raw=True)
    second = GET.replace(b"/a", b"/b")
    conn.receive(GET, now=0.0)
    ready(conn)
    assert conn.raw_request() == GET
    conn.response_done(now=0.0)
    conn.receive(second + b"GET /c", now=0.0)
    ready(conn)
    assert conn.raw_request() == second + b"GET /c"
    conn.receive(b" HTTP/1.1\r\n", now=0.0)
    assert conn.raw_request() == second + b"GET /c HTTP/1.1\r\n"


def test_raw_request_is_empty_unless_kept() -> None:
    conn = HTTPConnection(LIMITS, now=0.0)
    conn.receive(GET, now=0.0)
    ready(conn)
    assert conn.raw_request() == b""
