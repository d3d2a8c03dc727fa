"""The request-head checks h11 leaves to the server (streme/http/requestcheck.py)."""

from __future__ import annotations

import pytest

from streme.http.requestcheck import Refusal, declared_length, refusal, wants_continue

LIMITS = {"max_head_bytes": 1000, "max_body_bytes": 100}


def check(
    headers: dict[str, str] | None = None,
    version: bytes = b"1.1",
    target: bytes = b"/",
    head_size: int = 50,
) -> Refusal | None:
    return refusal(b"GET", target, version, headers or {}, head_size, **LIMITS)


def test_a_plain_request_passes() -> None:
    assert check({"host": "x"}) is None


def test_a_long_target_is_414_and_long_headers_431() -> None:
    assert check(target=b"/" + b"a" * 990, head_size=1100) == Refusal(
        414, "uri_too_long", "request target is too long"
    )
    refused = check(target=b"/" + b"a" * 900, head_size=1100)
    assert refused is not None
    assert refused.status == 431


@pytest.mark.parametrize("version", [b"2.0", b"9.9", b"0.9"])
def test_other_major_versions_are_505(version: bytes) -> None:
    refused = check(version=version)
    assert refused is not None
    assert refused.status == 505
    assert version.decode() in refused.message


@pytest.mark.parametrize("version", [b"1.0", b"1.1", b"1.2"])
def test_http_1_minor_versions_pass(version: bytes) -> None:
    assert check(version=version) is None


def test_transfer_encoding_with_content_length_is_400() -> None:
    refused = check({"transfer-encoding": "chunked", "content-length": "5"})
    assert refused is not None
    assert refused.status == 400
    assert "Content-Length" in refused.message


def test_transfer_encoding_in_http_1_0_is_400() -> None:
    refused = check({"transfer-encoding": "chunked"}, version=b"1.0")
    assert refused is not None
    assert refused.status == 400
    assert check({"transfer-encoding": "chunked"}) is None


def test_a_declared_body_over_the_limit_is_413() -> None:
    refused = check({"content-length": "101"})
    assert refused is not None
    assert refused.status == 413
    assert check({"content-length": "100"}) is None
    assert check({"content-length": "100, 100"}) is None


def test_declared_length_takes_repeated_values_as_one() -> None:
    assert declared_length("5") == 5
    assert declared_length("5, 5") == 5


@pytest.mark.parametrize(
    ("version", "headers", "expected"),
    [
        (b"1.1", {"expect": "100-continue", "content-length": "5"}, True),
        (b"1.1", {"expect": "100-Continue", "transfer-encoding": "chunked"}, True),
        (b"1.1", {"expect": "100-continue"}, False),  # no body follows
        (b"1.1", {"expect": "100-continue", "content-length": "0"}, False),
        (b"1.0", {"expect": "100-continue", "content-length": "5"}, False),
        (b"1.1", {"content-length": "5"}, False),
        (b"1.1", {"expect": "something", "content-length": "5"}, False),
    ],
)
def test_wants_continue(version: bytes, headers: dict[str, str], expected: bool) -> None:
    assert wants_continue(version, headers) is expected
