"""Conditional requests: validators, preconditions and If-Range (RFC 9110 §8.8, §13).

How this works: a file's validators are a strong ETag built from its mtime (ns) and size,
and its Last-Modified time in whole seconds. `evaluate_preconditions` walks the four
precondition fields in the order §13.2.2 fixes, and returns what to answer: PROCEED,
NOT_MODIFIED (304) or PRECONDITION_FAILED (412). Range handling comes after that:
`if_range_allows_range` says whether a Range header may be honoured at all (§13.1.5).

Entity-tag lists (If-Match / If-None-Match, §13.1.1-2) are tokenised by the §8.8.3
grammar: `W/` (case-sensitive) marks a weak tag, and the opaque tag runs from DQUOTE to the
next DQUOTE, so a comma inside quotes is part of the tag (etagc = %x21 / %x23-7E /
obs-text). OWS and empty elements between tags are skipped (§5.6.1.2). A field that does
not match the grammar (`garbage`, `"a" "b"`, unquoted tags) is treated as listing no tag
at all: If-Match then fails (412), If-None-Match then passes. `*` alone matches, since
there always is a current representation here.

Differences from nginx 1.22 (which does not follow the §13.2.2 order), all RFC-mandated:
- nginx evaluates If-Unmodified-Since even when If-Match is present, and answers 412 when
  it is not a valid date; here it is skipped when If-Match is present (§13.2.2 step 2) and
  ignored when invalid (§13.1.4).
- nginx requires If-None-Match and If-Modified-Since to both say "not modified" for a 304;
  here If-Modified-Since is ignored when If-None-Match is present (§13.1.3).
"""

from __future__ import annotations

import enum
import re

from streme.http.dates import parse_http_date

# §8.8.3: entity-tag = [ weak ] opaque-tag; weak = %s"W/"; opaque-tag = DQUOTE *etagc DQUOTE
_ENTITY_TAG = re.compile(r'(W/)?("[\x21\x23-\x7e\x80-\xff]*")')
_OWS = " \t"  # §5.6.3
_SKIP_IN_LIST = " \t,"  # OWS and empty list elements (§5.6.1.2)
_SAFE_METHODS_FOR_304 = frozenset(("GET", "HEAD"))


class Precondition(enum.Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not_modified"  # 304
    PRECONDITION_FAILED = "precondition_failed"  # 412


def make_etag(mtime_ns: int, size: int) -> str:
    """Strong ETag (§8.8.3) of a file version: `"<mtime_ns hex>-<size hex>"`."""
    return f'"{mtime_ns:x}-{size:x}"'


def _list_matches(field: str, etag: str, *, weak: bool) -> bool:
    """Whether an If-Match/If-None-Match value matches `etag` (§8.8.3.2 comparison).

    `weak` selects weak comparison (opaque tags equal) over strong comparison (opaque tags
    equal and neither tag weak). An invalid field matches nothing.
    """
    value = field.strip(_OWS)
    if value == "*":
        return True
    own_is_weak = etag.startswith("W/")
    if own_is_weak and not weak:
        return False  # a weak validator never matches strongly
    own = etag[2:] if own_is_weak else etag
    matched = False
    pos = 0
    end = len(value)
    while True:
        while pos < end and value[pos] in _SKIP_IN_LIST:
            pos += 1
        if pos == end:
            return matched
        tag = _ENTITY_TAG.match(value, pos)
        if tag is None:
            return False
        if tag[2] == own and (weak or tag[1] is None):
            matched = True
        pos = tag.end()
        while pos < end and value[pos] in _OWS:
            pos += 1
        if pos < end and value[pos] != ",":
            return False


def evaluate_preconditions(
    method: str,
    *,
    etag: str,
    last_modified: int,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
) -> Precondition:
    """The outcome of a request's preconditions, evaluated in the §13.2.2 order.

    `last_modified` is the representation's modification time in epoch seconds.
    """
    # Step 1: If-Match (§13.1.1), strong comparison.
    if if_match is not None:
        if not _list_matches(if_match, etag, weak=False):
            return Precondition.PRECONDITION_FAILED
    # Step 2: If-Unmodified-Since (§13.1.4), only without If-Match; invalid dates ignored.
    elif if_unmodified_since is not None:
        date = parse_http_date(if_unmodified_since)
        if date is not None and last_modified > date:
            return Precondition.PRECONDITION_FAILED
    # Step 3: If-None-Match (§13.1.2), weak comparison.
    if if_none_match is not None:
        if _list_matches(if_none_match, etag, weak=True):
            if method in _SAFE_METHODS_FOR_304:
                return Precondition.NOT_MODIFIED
            return Precondition.PRECONDITION_FAILED
    # Step 4: If-Modified-Since (§13.1.3), GET/HEAD only, without If-None-Match.
    elif if_modified_since is not None and method in _SAFE_METHODS_FOR_304:
        date = parse_http_date(if_modified_since)
        if date is not None and last_modified <= date:
            return Precondition.NOT_MODIFIED
    return Precondition.PROCEED


def if_range_allows_range(if_range: str | None, *, etag: str, last_modified: int | None) -> bool:
    """Whether a Range header may be honoured given If-Range (§13.1.5).

    Absent: yes. An entity-tag: only on a strong match (a weak tag never matches). An
    HTTP-date: only if it equals Last-Modified exactly (never when there is none). Anything
    else: no (send the whole representation). The date form assumes Last-Modified is a
    strong validator here.
    """
    if if_range is None:
        return True
    value = if_range.strip(_OWS)
    if value.startswith(('"', "W/")):
        tag = _ENTITY_TAG.fullmatch(value)
        return tag is not None and tag[1] is None and tag[2] == etag
    date = parse_http_date(value)
    return date is not None and last_modified is not None and date == last_modified
