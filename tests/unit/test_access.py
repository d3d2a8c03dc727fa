"""Who may use the API (streme/api/access.py)."""

from __future__ import annotations

import pytest

from streme.api.access import Access, bearer_token, is_local
from streme.http.messages import Request


def request(method: str = "GET", client: str = "127.0.0.1", **headers: str) -> Request:
    return Request(method, "/api/stats", "/api/stats", "", headers, client=client)


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("127.0.0.2", False),  # the tests' stand-in for a LAN client
        ("192.168.1.20", False),
        ("::ffff:192.168.1.20", False),
        ("", False),
        ("not an address", False),
    ],
)
def test_is_local(address: str, local: bool) -> None:
    assert is_local(address) is local


def test_bearer_token() -> None:
    assert bearer_token(request(authorization="Bearer abc")) == "abc"
    assert bearer_token(request(authorization="bearer  abc ")) == "abc"
    assert bearer_token(request(authorization="Basic abc")) is None
    assert bearer_token(request()) is None


def test_with_a_token_every_method_needs_it() -> None:
    access = Access("s3cret", "")
    for method in ("GET", "POST", "DELETE"):
        refused = access.refusal(request(method))
        assert refused is not None
        assert refused.status == 401
        assert (b"WWW-Authenticate", b'Bearer realm="streme"') in refused.headers
        wrong = access.refusal(request(method, authorization="Bearer nope"))
        assert wrong is not None
        assert wrong.status == 401
        assert access.refusal(request(method, "10.0.0.5", authorization="Bearer s3cret")) is None


def test_without_a_token_changes_only_from_this_host() -> None:
    access = Access("", "")
    assert access.refusal(request("GET", "10.0.0.5")) is None
    assert access.refusal(request("DELETE", "127.0.0.1")) is None
    refused = access.refusal(request("DELETE", "127.0.0.2"))
    assert refused is not None
    assert refused.status == 403
    assert b"api.token" in refused.body  # type: ignore[operator]


def test_cors() -> None:
    assert Access("", "").cors_headers() == []
    assert Access("", "*").cors_headers() == [(b"Access-Control-Allow-Origin", b"*")]
    one = Access("", "http://tv.lan")
    assert (b"Vary", b"Origin") in one.cors_headers()
    preflight = one.preflight("GET, OPTIONS")
    assert preflight.status == 204
    assert (b"Access-Control-Allow-Methods", b"GET, OPTIONS") in preflight.headers
