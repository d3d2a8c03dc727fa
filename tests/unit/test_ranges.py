"""Range header evaluation and multipart/byteranges layout (RFC 9110 §14).

The tables below are nginx 1.22.1's observed answers (static file, stock config), except
the rows marked DIVERGES, where RFC 9110 §5.6.1.2 makes us accept what nginx rejects.
"""

from __future__ import annotations

import email
import email.policy
import string
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streme.http.ranges import (
    MAX_RANGES,
    ByteRange,
    RangeDecision,
    RangeKind,
    evaluate_range,
    multipart_content_type,
    multipart_plan,
    unsatisfied_content_range,
)

FULL = RangeDecision(RangeKind.FULL)
UNSAT = RangeDecision(RangeKind.UNSATISFIABLE)


def partial(*pairs: tuple[int, int]) -> RangeDecision:
    return RangeDecision(RangeKind.PARTIAL, tuple(ByteRange(s, e) for s, e in pairs))


def test_byte_range_basics() -> None:
    byte_range = ByteRange(0, 99)
    assert byte_range.length == 100
    assert byte_range.content_range(2_097_152) == "bytes 0-99/2097152"
    assert ByteRange(5, 5).length == 1
    assert unsatisfied_content_range(100) == "bytes */100"
    assert unsatisfied_content_range(0) == "bytes */0"


@pytest.mark.parametrize("header", [None, ""])
def test_absent_range_is_full(header: str | None) -> None:
    assert evaluate_range(header, 100) == FULL


NGINX_SIZE_100 = [
    # header, decision (nginx: status and Content-Range)
    ("bytes=0-9", partial((0, 9))),
    ("bytes=90-", partial((90, 99))),
    ("bytes=-10", partial((90, 99))),
    ("bytes=-200", partial((0, 99))),
    ("bytes=0-999", partial((0, 99))),
    ("bytes=99-99", partial((99, 99))),
    ("bytes=100-", UNSAT),
    ("bytes=100-200", UNSAT),
    ("bytes=-0", UNSAT),
    ("bytes=5-3", UNSAT),
    ("bytes=5-3,0-1", partial((0, 1))),
    ("bytes=abc", UNSAT),
    ("bytes=0-1,abc", UNSAT),
    ("bytes=abc,0-1", UNSAT),
    ("bytes=,", UNSAT),
    ("bytes=", FULL),
    ("bytes= ", FULL),
    ("bytes=-", UNSAT),
    ("bytes=--1", UNSAT),
    ("bytes=1--2", UNSAT),
    ("bytes=0 - 1", partial((0, 1))),
    ("bytes= 0-1 , 2-3 ", partial((0, 1), (2, 3))),
    ("bytes=0-1, 2-3", partial((0, 1), (2, 3))),
    ("bytes=0-1 ,2-3", partial((0, 1), (2, 3))),
    ("bytes=- 5", UNSAT),
    ("bytes=-5 ", partial((95, 99))),
    ("bytes=0\t-1", UNSAT),
    ("Bytes=0-1", partial((0, 1))),
    ("BYTES=0-1", partial((0, 1))),
    ("bytes =0-1", FULL),
    ("bytes= 0-1", partial((0, 1))),
    ("items=0-1", FULL),
    ("bytes", FULL),
    ("bytes0-1", FULL),
    ("bytes=0-1-2", UNSAT),
    ("bytes=0-1 2", UNSAT),
    ("bytes=+1-2", UNSAT),
    ("bytes=1-+2", UNSAT),
    ("bytes=\u0661-\u0662", UNSAT),  # Arabic-Indic digits
    ("bytes=²-3", UNSAT),  # superscript two (latin-1 0xB2)
    ("bytes=9223372036854775807-", UNSAT),  # 2**63-1: a number, just past the end
    ("bytes=9223372036854775808-", UNSAT),  # 2**63: overflow
    ("bytes=0-9223372036854775807", partial((0, 99))),
    ("bytes=0-9223372036854775808", UNSAT),
    ("bytes=-9223372036854775807", partial((0, 99))),
    ("bytes=-9223372036854775808", UNSAT),
    ("bytes=00000000000000000000000000001-2", partial((1, 2))),
    ("bytes=0-0,0-0", partial((0, 0), (0, 0))),  # not coalesced
    ("bytes=0-49,50-99", partial((0, 49), (50, 99))),
    ("bytes=0-49,50-99,0-0", FULL),  # 101 bytes asked of 100
    ("bytes=0-59,40-99", FULL),
    ("bytes=0-,0-", FULL),
    ("bytes=-1,0-0", partial((99, 99), (0, 0))),  # request order kept
    ("bytes=50-,0-10", partial((50, 99), (0, 10))),
    ("bytes=200-300,0-1", partial((0, 1))),
    ("bytes=0-1,200-300", partial((0, 1))),
    ("bytes=0-1,2-3,200-", partial((0, 1), (2, 3))),
    ("bytes=0-1,-3", partial((0, 1), (97, 99))),
    # DIVERGES: nginx answers 416 to all of these (empty list elements, HTAB as OWS).
    ("bytes=0-1,", partial((0, 1))),
    ("bytes=,0-1", partial((0, 1))),
    ("bytes= ,0-1", partial((0, 1))),
    ("bytes=0-1,,2-3", partial((0, 1), (2, 3))),
    ("bytes=0-1,\t2-3", partial((0, 1), (2, 3))),
]


@pytest.mark.parametrize(("header", "expected"), NGINX_SIZE_100)
def test_size_100_like_nginx(header: str, expected: RangeDecision) -> None:
    assert evaluate_range(header, 100) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", FULL),
        ("bytes=0-", FULL),
        ("bytes=-1", FULL),
        ("bytes=-0", FULL),
        ("bytes=1-2", UNSAT),
        ("bytes=1-", UNSAT),
        ("bytes=abc", UNSAT),
        ("bytes=0-0,abc", FULL),  # parsing stops at the element nginx ignores the header for
        ("bytes=5-,abc", UNSAT),
        ("bytes=5-6,0-1", FULL),
        ("bytes=5-3", UNSAT),
    ],
)
def test_empty_file_like_nginx(header: str, expected: RangeDecision) -> None:
    assert evaluate_range(header, 0) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", partial((0, 0))),
        ("bytes=0-", partial((0, 0))),
        ("bytes=-1", partial((0, 0))),
        ("bytes=-0", UNSAT),
        ("bytes=1-", UNSAT),
        ("bytes=-5", partial((0, 0))),
        ("bytes=0-0,0-0", FULL),
        ("bytes=0-0,-1", FULL),
    ],
)
def test_one_byte_file_like_nginx(header: str, expected: RangeDecision) -> None:
    assert evaluate_range(header, 1) == expected


def test_range_count_cap() -> None:
    at_cap = "bytes=" + ",".join(f"{i}-{i}" for i in range(MAX_RANGES))
    decision = evaluate_range(at_cap, 1000)
    assert decision.kind is RangeKind.PARTIAL
    assert len(decision.ranges) == MAX_RANGES
    # stock nginx (no max_ranges) would serve these 101 ranges; we ignore the header.
    over_cap = at_cap + f",{MAX_RANGES}-{MAX_RANGES}"
    assert evaluate_range(over_cap, 1000) == FULL
    # The cap counts satisfiable ranges only, and decides as soon as it is passed.
    assert evaluate_range(at_cap + ",5000-6000", 1000).kind is RangeKind.PARTIAL
    assert evaluate_range(over_cap + ",abc", 1000) == FULL


def test_huge_numbers_do_not_hit_int_limits() -> None:
    assert evaluate_range("bytes=" + "0" * 5000 + "1-2", 100) == partial((1, 2))
    assert evaluate_range("bytes=" + "0" * 5000 + "-", 100) == partial((0, 99))
    assert evaluate_range("bytes=" + "1" * 5000 + "-", 100) == UNSAT
    assert evaluate_range("bytes=-" + "9" * 5000, 100) == UNSAT


def test_summed_length_overflow_rejects() -> None:
    # nginx: a summed length past 2**63-1 (off_t) is a 416; merely past the size, a 200.
    assert evaluate_range("bytes=0-,0-", 2**61) == FULL
    assert evaluate_range("bytes=0-,0-", 2**62) == UNSAT


# A reference model for one well-formed range-spec (RFC 9110 §14.1.2, nginx for size 0).
def model(spec: tuple[int | None, int | None], size: int) -> RangeDecision:
    first, last = spec
    if first is None:
        assert last is not None
        if size == 0:
            return FULL
        if last == 0:
            return UNSAT
        return partial((max(0, size - last), size - 1))
    if size == 0 and first == 0:
        return FULL
    if first >= size or (last is not None and last < first):
        return UNSAT
    end = size - 1 if last is None else min(last, size - 1)
    return partial((first, end))


def render(spec: tuple[int | None, int | None]) -> str:
    first, last = spec
    return f"{'' if first is None else first}-{'' if last is None else last}"


offsets = st.integers(min_value=0, max_value=2**63 - 1) | st.integers(0, 300)
sizes = st.integers(min_value=0, max_value=2**40) | st.integers(0, 300)
specs: st.SearchStrategy[tuple[int | None, int | None]] = st.one_of(
    st.tuples(offsets, offsets), st.tuples(offsets, st.none()), st.tuples(st.none(), offsets)
)


@given(specs, sizes)
def test_single_range_matches_model(spec: tuple[int | None, int | None], size: int) -> None:
    assert evaluate_range(f"bytes={render(spec)}", size) == model(spec, size)


def model_set(spec_list: Sequence[tuple[int | None, int | None]], size: int) -> RangeDecision:
    ranges: list[ByteRange] = []
    for spec in spec_list:
        single = model(spec, size)
        if single == FULL:
            return FULL
        ranges.extend(single.ranges)
        if len(ranges) > MAX_RANGES:
            return FULL
    if not ranges:
        return UNSAT
    if sum(r.length for r in ranges) > size:
        return FULL
    return RangeDecision(RangeKind.PARTIAL, tuple(ranges))


@given(st.lists(specs, min_size=1, max_size=8), sizes, st.sampled_from([",", ", ", " , ", ",,"]))
def test_range_set_matches_model(
    spec_list: list[tuple[int | None, int | None]], size: int, separator: str
) -> None:
    header = "bytes=" + separator.join(render(spec) for spec in spec_list)
    assert evaluate_range(header, size) == model_set(spec_list, size)


def check_invariants(decision: RangeDecision, size: int) -> None:
    if decision.kind is not RangeKind.PARTIAL:
        assert decision.ranges == ()
        return
    assert 1 <= len(decision.ranges) <= MAX_RANGES
    for byte_range in decision.ranges:
        assert 0 <= byte_range.start <= byte_range.end < size
    assert sum(r.length for r in decision.ranges) <= size


@given(st.text(max_size=60), sizes)
def test_any_text_is_safe(header: str, size: int) -> None:
    check_invariants(evaluate_range(header, size), size)


@given(st.text(alphabet="0123456789-, \t", max_size=40), sizes)
def test_any_range_set_is_safe(range_set: str, size: int) -> None:
    check_invariants(evaluate_range("bytes=" + range_set, size), size)


# --- multipart/byteranges (§14.6) ---

# nginx 1.22.1, `Range: bytes=0-1,-3` on bytes(range(100)), Content-Length 231.
NGINX_MULTIPART = (
    b"\r\n--00000000000000000007\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Range: bytes 0-1/100\r\n\r\n\x00\x01"
    b"\r\n--00000000000000000007\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Range: bytes 97-99/100\r\n\r\nabc"
    b"\r\n--00000000000000000007--\r\n"
)


def assemble(plan: Sequence[bytes | ByteRange], data: bytes) -> bytes:
    return b"".join(
        part if isinstance(part, bytes) else data[part.start : part.end + 1] for part in plan
    )


def test_multipart_layout_matches_nginx() -> None:
    data = bytes(range(100))
    decision = evaluate_range("bytes=0-1,-3", 100)
    plan, length = multipart_plan(
        decision.ranges, 100, "application/octet-stream", "00000000000000000007"
    )
    body = assemble(plan, data)
    assert body == NGINX_MULTIPART
    assert length == len(body) == 231
    assert [type(part) for part in plan] == [bytes, ByteRange, bytes, ByteRange, bytes]


def test_multipart_without_content_type() -> None:
    plan, _ = multipart_plan([ByteRange(0, 0), ByteRange(2, 3)], 10, "", "b")
    assert plan[0] == b"\r\n--b\r\nContent-Range: bytes 0-0/10\r\n\r\n"


def test_multipart_content_type() -> None:
    assert multipart_content_type("abc123") == "multipart/byteranges; boundary=abc123"


@pytest.mark.parametrize(
    ("ranges", "content_type", "boundary", "message"),
    [
        ([ByteRange(0, 1)], "text/plain", "", "boundary"),
        ([ByteRange(0, 1)], "text/plain", "x" * 71, "boundary"),
        ([ByteRange(0, 1)], "text/plain", "a b", "boundary"),
        ([ByteRange(0, 1)], "text/plain", 'a"b', "boundary"),
        ([ByteRange(0, 1)], "text/plain", "a'b", "boundary"),
        ([ByteRange(0, 1)], "text/plain\r\nX-Evil: 1", "b", "line break"),
        ([], "text/plain", "b", "at least one"),
        ([ByteRange(0, 10)], "text/plain", "b", "within"),
        ([ByteRange(5, 4)], "text/plain", "b", "within"),
        ([ByteRange(-1, 4)], "text/plain", "b", "within"),
    ],
)
def test_multipart_rejects_bad_input(
    ranges: list[ByteRange], content_type: str, boundary: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        multipart_plan(ranges, 10, content_type, boundary)


boundaries = st.text(alphabet=string.ascii_letters + string.digits + "+_-.", min_size=1).map(
    lambda b: b[:70]
)


@st.composite
def file_and_ranges(draw: st.DrawFn) -> tuple[bytes, list[ByteRange]]:
    size = draw(st.integers(min_value=1, max_value=200))
    data = draw(st.text(alphabet=string.ascii_letters, min_size=size, max_size=size)).encode()
    count = draw(st.integers(min_value=1, max_value=6))
    ranges = []
    for _ in range(count):
        start = draw(st.integers(0, size - 1))
        end = draw(st.integers(start, size - 1))
        ranges.append(ByteRange(start, end))
    return data, ranges


@given(file_and_ranges(), boundaries)
def test_multipart_plan_length_and_parse(
    case: tuple[bytes, list[ByteRange]], boundary: str
) -> None:
    data, ranges = case
    size = len(data)
    plan, length = multipart_plan(ranges, size, "text/plain", boundary)
    assert length == sum(len(p) if isinstance(p, bytes) else p.length for p in plan)
    body = assemble(plan, data)
    assert len(body) == length

    # A generic MIME parser sees one part per range, in order, with the right data.
    header = f"Content-Type: {multipart_content_type(boundary)}\r\n\r\n".encode()
    message = email.message_from_bytes(header + body, policy=email.policy.HTTP)
    parts = message.get_payload()
    assert isinstance(parts, list)
    assert len(parts) == len(ranges)
    for part, byte_range in zip(parts, ranges, strict=True):
        assert part["Content-Type"] == "text/plain"
        assert part["Content-Range"] == byte_range.content_range(size)
        assert part.get_payload(decode=True) == data[byte_range.start : byte_range.end + 1]


@pytest.mark.parametrize("size", [1, 2, 100, 4096, 2**40])
def test_the_one_range_fast_path_agrees_with_the_general_parser(size: int) -> None:
    """`bytes=a-b` and `bytes=a-` take a shortcut; with a trailing space (OWS, stripped)
    the same header goes through the general parser. Both must answer alike."""
    values = sorted({0, 1, 2, size - 2, size - 1, size, size + 1, size // 2, 10**17, 10**18 - 1})
    for first in (v for v in values if v >= 0):
        for last in [*(str(v) for v in values if v >= 0), ""]:
            header = f"bytes={first}-{last}"
            assert evaluate_range(header, size) == evaluate_range(header + " ", size), header
