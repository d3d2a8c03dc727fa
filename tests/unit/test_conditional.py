"""Preconditions, entity-tag lists and If-Range (RFC 9110 §8.8, §13)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streme.http.conditional import (
    Precondition,
    evaluate_preconditions,
    if_range_allows_range,
    make_etag,
)
from streme.http.dates import format_http_date

PROCEED = Precondition.PROCEED
NOT_MODIFIED = Precondition.NOT_MODIFIED
FAILED = Precondition.PRECONDITION_FAILED

ETAG = make_etag(1_795_482_000_123_456_789, 2_097_152)
LAST_MODIFIED = 1_795_482_000
LM = format_http_date(LAST_MODIFIED)
BEFORE = format_http_date(LAST_MODIFIED - 10)
AFTER = format_http_date(LAST_MODIFIED + 10)


def evaluate(
    method: str = "GET",
    *,
    etag: str = ETAG,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
) -> Precondition:
    return evaluate_preconditions(
        method,
        etag=etag,
        last_modified=LAST_MODIFIED,
        if_match=if_match,
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
        if_unmodified_since=if_unmodified_since,
    )


def test_make_etag() -> None:
    assert make_etag(0x1234, 0x64) == '"1234-64"'
    assert ETAG == '"18ead55dc1f76d15-200000"'
    assert make_etag(1, 2) != make_etag(1, 3) != make_etag(2, 2)


def test_no_preconditions() -> None:
    assert evaluate() is PROCEED
    assert evaluate("PUT") is PROCEED


@pytest.mark.parametrize(
    ("if_match", "expected"),
    [
        (ETAG, PROCEED),
        ("*", PROCEED),
        (" * ", PROCEED),
        ('"x"', FAILED),
        (f"W/{ETAG}", FAILED),  # strong comparison: a weak tag never matches
        (f'"x", {ETAG}', PROCEED),
        (f'"x",{ETAG},"y"', PROCEED),
        (f'  ,, "x" ,\t{ETAG} ,', PROCEED),  # OWS and empty elements (§5.6.1.2)
        ("", FAILED),  # an empty list matches nothing
        ("garbage", FAILED),
        (ETAG[1:-1], FAILED),  # unquoted
        (f'{ETAG} "x"', FAILED),  # missing comma: invalid, matches nothing
        (f"{ETAG}, garbage", FAILED),
        (f"*, {ETAG}", FAILED),  # "*" only on its own
        (f"w/{ETAG}", FAILED),  # W/ is case-sensitive
    ],
)
def test_if_match(if_match: str, expected: Precondition) -> None:
    assert evaluate(if_match=if_match) is expected
    assert evaluate("PUT", if_match=if_match) is expected


def test_if_match_against_weak_etag() -> None:
    weak = f"W/{ETAG}"
    assert evaluate(etag=weak, if_match=weak) is FAILED
    assert evaluate(etag=weak, if_match=ETAG) is FAILED
    assert evaluate(etag=weak, if_match="*") is PROCEED
    assert evaluate(etag=weak, if_none_match=ETAG) is NOT_MODIFIED
    assert evaluate(etag=weak, if_none_match=weak) is NOT_MODIFIED


@pytest.mark.parametrize(
    ("if_unmodified_since", "expected"),
    [
        (LM, PROCEED),
        (AFTER, PROCEED),
        (BEFORE, FAILED),
        ("garbage", PROCEED),  # §13.1.4: invalid dates are ignored (nginx: 412)
        (f"{LM}, {LM}", PROCEED),  # a list is not a valid date: ignored
        ("Tuesday, 24-Nov-26 01:00:00 GMT", PROCEED),
        ("Tue Nov 24 00:59:59 2026", FAILED),
    ],
)
def test_if_unmodified_since(if_unmodified_since: str, expected: Precondition) -> None:
    assert evaluate(if_unmodified_since=if_unmodified_since) is expected


def test_if_match_takes_precedence_over_if_unmodified_since() -> None:
    # §13.2.2 step 2 only runs without If-Match (nginx checks both and answers 412 here).
    assert evaluate(if_match=ETAG, if_unmodified_since=BEFORE) is PROCEED
    assert evaluate(if_match='"x"', if_unmodified_since=AFTER) is FAILED


@pytest.mark.parametrize(
    ("if_none_match", "get", "put"),
    [
        (ETAG, NOT_MODIFIED, FAILED),
        (f"W/{ETAG}", NOT_MODIFIED, FAILED),  # weak comparison
        ("*", NOT_MODIFIED, FAILED),
        ('"x"', PROCEED, PROCEED),
        (f'"x", W/{ETAG}', NOT_MODIFIED, FAILED),
        ("", PROCEED, PROCEED),
        ("garbage", PROCEED, PROCEED),
        (f"{ETAG} garbage", PROCEED, PROCEED),
    ],
)
def test_if_none_match(if_none_match: str, get: Precondition, put: Precondition) -> None:
    assert evaluate("GET", if_none_match=if_none_match) is get
    assert evaluate("HEAD", if_none_match=if_none_match) is get
    assert evaluate("PUT", if_none_match=if_none_match) is put
    assert evaluate("DELETE", if_none_match=if_none_match) is put


@pytest.mark.parametrize(
    ("if_modified_since", "expected"),
    [
        (LM, NOT_MODIFIED),
        (AFTER, NOT_MODIFIED),  # not newer than the date: 304 (nginx `if_modified_since before`)
        (BEFORE, PROCEED),
        ("garbage", PROCEED),
        (LM.lower(), PROCEED),
        (f"{LM}, {LM}", PROCEED),
        ("Sun, 06 Nov 1994 08:49:37 GMT", PROCEED),
    ],
)
def test_if_modified_since(if_modified_since: str, expected: Precondition) -> None:
    assert evaluate("GET", if_modified_since=if_modified_since) is expected
    assert evaluate("HEAD", if_modified_since=if_modified_since) is expected
    assert evaluate("POST", if_modified_since=if_modified_since) is PROCEED  # GET/HEAD only


def test_if_none_match_takes_precedence_over_if_modified_since() -> None:
    # §13.1.3: If-Modified-Since is ignored when If-None-Match is present. nginx instead
    # wants both to say "not modified" and answers 200 to the first case.
    assert evaluate(if_none_match=ETAG, if_modified_since=BEFORE) is NOT_MODIFIED
    assert evaluate(if_none_match='"x"', if_modified_since=LM) is PROCEED


def test_full_order() -> None:
    # Step 1 fails first, whatever else is present.
    assert evaluate(if_match='"x"', if_none_match=ETAG, if_modified_since=LM) is FAILED
    # Step 1 passes, step 3 decides.
    assert evaluate(if_match=ETAG, if_none_match=ETAG) is NOT_MODIFIED
    assert evaluate("PUT", if_match=ETAG, if_none_match=ETAG) is FAILED
    # Step 2 fails before step 3/4 can answer 304.
    assert evaluate(if_unmodified_since=BEFORE, if_none_match=ETAG) is FAILED
    assert evaluate(if_unmodified_since=BEFORE, if_modified_since=LM) is FAILED
    # Step 2 passes, step 4 decides.
    assert evaluate(if_unmodified_since=LM, if_modified_since=LM) is NOT_MODIFIED


@pytest.mark.parametrize(
    ("etag", "header", "expected"),
    [
        ('"a,b"', '"a,b"', True),  # etagc includes ","
        ('"a,b"', '"a", "b"', False),
        ('"a"', '"a,b"', False),
        ('"a"', '"x,y", "a"', True),
        ('"a"', '"x, "a"', False),  # `"x, "` is a tag, then `a"` is garbage
        ('""', '""', True),  # an empty opaque tag is valid
        ('"a"', '"a b"', False),  # SP is not an etagc
        ('"é"', '"é"', True),  # obs-text
        ('"a"', 'W/"a"', True),
        ('"a"', 'W/ "a"', False),
    ],
)
def test_entity_tag_list_grammar(etag: str, header: str, expected: bool) -> None:
    outcome = evaluate(etag=etag, if_none_match=header)
    assert (outcome is NOT_MODIFIED) is expected


etagc = st.characters(
    codec="latin-1", exclude_characters='"\x7f', exclude_categories=("Cc", "Zs")
).filter(lambda c: c != " ")
opaque_tags = st.text(etagc, max_size=8).map(lambda text: f'"{text}"')
ows = st.sampled_from(["", " ", "\t", "  "])


@given(
    opaque_tags,
    st.lists(st.tuples(st.booleans(), opaque_tags), max_size=5),
    st.lists(ows, min_size=12, max_size=12),
    st.booleans(),
)
def test_entity_tag_lists_match_model(
    own: str, tags: list[tuple[bool, str]], spacing: list[str], empty_elements: bool
) -> None:
    separator = ",," if empty_elements else ","
    header = separator.join(
        f"{spacing[i]}{'W/' if weak else ''}{tag}{spacing[-1 - i]}"
        for i, (weak, tag) in enumerate(tags)
    )
    weak_match = any(tag == own for _, tag in tags)
    strong_match = any(tag == own and not weak for weak, tag in tags)
    assert (evaluate(etag=own, if_none_match=header) is NOT_MODIFIED) is weak_match
    assert (evaluate(etag=own, if_match=header) is PROCEED) is strong_match


@given(
    st.one_of(st.none(), st.text(max_size=30)),
    st.one_of(st.none(), st.text(max_size=30)),
    st.one_of(st.none(), st.text(max_size=30)),
    st.one_of(st.none(), st.text(max_size=30)),
    st.sampled_from(["GET", "HEAD", "PUT", "POST"]),
)
def test_any_headers_are_safe(
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
    method: str,
) -> None:
    outcome = evaluate(
        method,
        if_match=if_match,
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
        if_unmodified_since=if_unmodified_since,
    )
    assert isinstance(outcome, Precondition)
    if method not in ("GET", "HEAD"):
        assert outcome is not NOT_MODIFIED


@pytest.mark.parametrize(
    ("if_range", "expected"),
    [
        (None, True),
        (ETAG, True),
        (f" {ETAG} ", True),
        (f"W/{ETAG}", False),  # weak tags never match (§13.1.5)
        ('"x"', False),
        (f"{ETAG}, {ETAG}", False),  # one validator, not a list
        (LM, True),
        ("Tuesday, 24-Nov-26 01:00:00 GMT", True),
        (BEFORE, False),
        (AFTER, False),  # exact match only
        ("garbage", False),
        ("", False),
        (ETAG[1:-1], False),
    ],
)
def test_if_range(if_range: str | None, expected: bool) -> None:
    assert if_range_allows_range(if_range, etag=ETAG, last_modified=LAST_MODIFIED) is expected


def test_if_range_with_weak_own_etag_never_matches() -> None:
    weak = f"W/{ETAG}"
    assert not if_range_allows_range(weak, etag=weak, last_modified=LAST_MODIFIED)
    assert not if_range_allows_range(ETAG, etag=weak, last_modified=LAST_MODIFIED)


@given(st.text(max_size=40))
def test_if_range_never_raises(value: str) -> None:
    assert if_range_allows_range(value, etag=ETAG, last_modified=LAST_MODIFIED) in (True, False)
