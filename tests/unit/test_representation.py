"""The one response planner (streme/http/representation.py), for both kinds of source:
a cached file (validators with a date, multipart) and the swarm (ETag only, no
multipart). The cache path is also checked byte for byte against nginx in
tests/e2e/test_vs_nginx.py."""

from __future__ import annotations

import pytest

from streme.http.dates import format_http_date
from streme.http.ranges import ByteRange
from streme.http.representation import ACCEPT_RANGES, Representation, plan

SIZE = 1000
MTIME = 1_700_000_000
CACHED = Representation(SIZE, "video/mp4", '"abc-3e8"', MTIME)
SWARM = Representation(SIZE, "video/mp4", '"ih-0"', None, multipart=False)
BOTH = pytest.mark.parametrize("rep", [CACHED, SWARM], ids=["cache", "swarm"])
DATE = format_http_date(MTIME)


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((v for n, v in headers if n == name), None)


@BOTH
def test_no_range_is_the_whole_representation(rep: Representation) -> None:
    got = plan("GET", {}, rep)
    assert (got.status, got.body, got.length) == (200, [ByteRange(0, SIZE - 1)], SIZE)
    assert header(got.headers, b"ETag") == rep.etag.encode()
    assert header(got.headers, b"Accept-Ranges") == b"bytes"
    assert header(got.headers, b"Content-Type") == b"video/mp4"
    assert (header(got.headers, b"Last-Modified") is None) == (rep.last_modified is None)


@BOTH
def test_one_range_is_206_with_content_range(rep: Representation) -> None:
    got = plan("GET", {"range": "bytes=100-199"}, rep)
    assert (got.status, got.body, got.length) == (206, [ByteRange(100, 199)], 100)
    assert header(got.headers, b"Content-Range") == b"bytes 100-199/1000"


@BOTH
def test_head_gets_the_same_plan(rep: Representation) -> None:
    assert (
        plan("HEAD", {"range": "bytes=-10"}, rep).headers
        == plan("GET", {"range": "bytes=-10"}, rep).headers
    )


@BOTH
def test_unsatisfiable_is_416_with_accept_ranges(rep: Representation) -> None:
    got = plan("GET", {"range": f"bytes={SIZE}-"}, rep)
    assert got.status == 416
    assert got.headers == [(b"Content-Range", b"bytes */1000"), ACCEPT_RANGES]
    assert got.error is not None
    assert got.error[0] == "range_not_satisfiable"
    assert got.body == []


@BOTH
def test_if_none_match_is_304_with_the_validators(rep: Representation) -> None:
    got = plan("GET", {"if-none-match": rep.etag, "range": "bytes=0-1"}, rep)
    assert got.status == 304
    assert header(got.headers, b"ETag") == rep.etag.encode()
    assert got.body == []


@BOTH
def test_if_match_mismatch_is_412(rep: Representation) -> None:
    got = plan("GET", {"if-match": '"other"'}, rep)
    assert got.status == 412
    assert got.error == ("precondition_failed", "a precondition header did not hold")


@BOTH
def test_if_range_with_the_etag_keeps_the_range_and_another_drops_it(
    rep: Representation,
) -> None:
    assert plan("GET", {"range": "bytes=0-9", "if-range": rep.etag}, rep).status == 206
    assert plan("GET", {"range": "bytes=0-9", "if-range": '"old"'}, rep).status == 200


def test_if_range_with_a_date_needs_a_last_modified() -> None:
    asked = {"range": "bytes=0-9", "if-range": DATE}
    assert plan("GET", asked, CACHED).status == 206
    assert plan("GET", asked, SWARM).status == 200  # no Last-Modified: nothing to match


def test_date_preconditions_are_ignored_without_a_last_modified() -> None:
    assert plan("GET", {"if-modified-since": DATE}, CACHED).status == 304
    assert plan("GET", {"if-modified-since": DATE}, SWARM).status == 200
    before = format_http_date(MTIME - 10)
    assert plan("GET", {"if-unmodified-since": before}, CACHED).status == 412
    assert plan("GET", {"if-unmodified-since": before}, SWARM).status == 200


def test_several_ranges_are_multipart_from_the_cache() -> None:
    got = plan("GET", {"range": "bytes=0-9,20-29"}, CACHED)
    assert got.status == 206
    content_type = header(got.headers, b"Content-Type")
    assert content_type is not None
    assert content_type.startswith(b"multipart/byteranges")
    assert [p for p in got.body if isinstance(p, ByteRange)] == [ByteRange(0, 9), ByteRange(20, 29)]
    assert got.length == sum(len(p) if isinstance(p, bytes) else p.length for p in got.body)


def test_several_ranges_are_the_whole_file_from_the_swarm() -> None:
    got = plan("GET", {"range": "bytes=0-9,20-29"}, SWARM)
    assert (got.status, got.body) == (200, [ByteRange(0, SIZE - 1)])
    assert header(got.headers, b"Content-Range") is None


@BOTH
def test_an_empty_representation_has_no_body(rep: Representation) -> None:
    empty = Representation(0, "video/mp4", rep.etag, rep.last_modified, rep.multipart)
    got = plan("GET", {}, empty)
    assert (got.status, got.body, got.length) == (200, [], 0)
    # nginx ignores a Range on an empty file; so does the planner (ranges.py).
    assert plan("GET", {"range": "bytes=0-1"}, empty).status == 200
