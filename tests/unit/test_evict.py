"""Eviction planning: table-driven cases and properties of `plan_evictions`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streme.cache.evict import (
    Candidate,
    Eviction,
    Limits,
    Plan,
    Reason,
    plan_evictions,
)

NOW = 1_000_000.0
DAY = 86_400.0


def ih(n: int) -> str:
    return f"{n:040x}"


def cand(
    n: int,
    size: int,
    last_used: float,
    *,
    downloaded: bool = True,
    pinned: bool = False,
    in_use: bool = False,
    published: bool = True,
) -> Candidate:
    return Candidate(ih(n), size, last_used, downloaded, pinned, in_use, published)


def limits(
    max_size: int = 0,
    min_free: int = 0,
    free: int = 1_000,
    incomplete_max_age: float = math.inf,
    evict_hand_placed: bool = False,
) -> Limits:
    return Limits(max_size, min_free, free, incomplete_max_age, NOW, evict_hand_placed)


@dataclass(frozen=True)
class Case:
    id: str
    candidates: list[Candidate]
    limits: Limits
    evicted: list[tuple[int, Reason]]
    satisfied: bool = True


CASES = [
    Case("nothing to do", [cand(1, 100, 1.0), cand(2, 100, 2.0)], limits(max_size=500), []),
    Case("no limits at all", [cand(1, 100, 1.0)], limits(), []),
    Case(
        "LRU order under the size cap",
        [cand(1, 100, 30.0), cand(2, 100, 10.0), cand(3, 100, 20.0), cand(4, 100, 40.0)],
        limits(max_size=200),
        [(2, Reason.SIZE_CAP), (3, Reason.SIZE_CAP)],
    ),
    Case(
        "ties broken by infohash",
        [cand(3, 100, 5.0), cand(1, 100, 5.0), cand(2, 100, 5.0)],
        limits(max_size=150),
        [(1, Reason.SIZE_CAP), (2, Reason.SIZE_CAP)],
    ),
    Case(
        "usage exactly at the cap is fine",
        [cand(1, 100, 1.0), cand(2, 100, 2.0)],
        limits(max_size=200),
        [],
    ),
    Case(
        "pinned, in use and hand-placed are kept; usage still counts them",
        [
            cand(1, 100, 1.0, pinned=True),
            cand(2, 100, 2.0, in_use=True),
            cand(3, 100, 3.0, downloaded=False),
            cand(4, 100, 4.0),
            cand(5, 100, 5.0),
        ],
        limits(max_size=300),
        [(4, Reason.SIZE_CAP), (5, Reason.SIZE_CAP)],
    ),
    Case(
        "runs out of evictable titles",
        [cand(1, 100, 1.0, pinned=True), cand(2, 100, 2.0)],
        limits(max_size=50),
        [(2, Reason.SIZE_CAP)],
        satisfied=False,
    ),
    Case(
        "hand-placed evicted with the flag, in LRU order",
        [cand(1, 100, 1.0, downloaded=False), cand(2, 100, 2.0)],
        limits(max_size=150, evict_hand_placed=True),
        [(1, Reason.SIZE_CAP)],
    ),
    Case(
        "free space: evict until min_free holds",
        [cand(1, 100, 1.0), cand(2, 100, 2.0), cand(3, 100, 3.0)],
        limits(min_free=250, free=100),
        [(1, Reason.FREE_SPACE), (2, Reason.FREE_SPACE)],
    ),
    Case(
        "both limits: SIZE_CAP while over the cap, then FREE_SPACE",
        [cand(1, 100, 1.0), cand(2, 100, 2.0), cand(3, 100, 3.0), cand(4, 100, 4.0)],
        limits(max_size=300, min_free=300, free=50),
        [(1, Reason.SIZE_CAP), (2, Reason.FREE_SPACE), (3, Reason.FREE_SPACE)],
    ),
    Case(
        "age: unpublished and too old go even within the limits",
        [
            cand(1, 100, NOW - 2 * DAY, published=False),
            cand(2, 100, NOW - 2 * DAY),
            cand(3, 100, NOW - 10.0, published=False),
        ],
        limits(incomplete_max_age=DAY),
        [(1, Reason.AGE)],
    ),
    Case(
        "age: exactly the maximum age stays",
        [cand(1, 100, NOW - DAY, published=False)],
        limits(incomplete_max_age=DAY),
        [],
    ),
    Case(
        "age: protected partial downloads stay",
        [
            cand(1, 100, 0.0, published=False, in_use=True),
            cand(2, 100, 0.0, published=False, pinned=True),
            cand(3, 100, 0.0, published=False, downloaded=False),
        ],
        limits(incomplete_max_age=DAY),
        [],
    ),
    Case(
        "age evictions count towards the limits before LRU",
        [
            cand(1, 100, 1.0),
            cand(2, 100, NOW - 2 * DAY, published=False),
            cand(3, 100, 3.0),
        ],
        limits(max_size=150, incomplete_max_age=DAY),
        [(2, Reason.AGE), (1, Reason.SIZE_CAP)],
    ),
    Case("empty", [], limits(max_size=1, min_free=10, free=0), [], satisfied=False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cases(case: Case) -> None:
    plan = plan_evictions(case.candidates, case.limits)
    assert [(e.infohash, e.reason) for e in plan.evictions] == [
        (ih(n), reason) for n, reason in case.evicted
    ]
    assert plan.satisfied is case.satisfied
    freed = sum(e.bytes for e in plan.evictions)
    assert plan.usage_after == sum(c.bytes for c in case.candidates) - freed
    assert plan.free_after == case.limits.free + freed


def test_eviction_records_what_went() -> None:
    plan = plan_evictions([cand(1, 123, 7.0)], limits(max_size=100))
    assert plan == Plan((Eviction(ih(1), 123, Reason.SIZE_CAP, 7.0),), 0, 1_123, True)


def test_duplicate_infohashes_rejected() -> None:
    with pytest.raises(ValueError, match="distinct"):
        plan_evictions([cand(1, 1, 1.0), cand(1, 2, 2.0)], limits())


candidates_st = st.lists(
    st.builds(
        cand,
        st.integers(0, 10_000),
        st.integers(0, 1_000),
        st.floats(0.0, NOW, allow_nan=False),
        downloaded=st.booleans(),
        pinned=st.booleans(),
        in_use=st.booleans(),
        published=st.booleans(),
    ),
    max_size=20,
    unique_by=lambda c: c.infohash,
)
limits_st = st.builds(
    limits,
    max_size=st.integers(0, 10_000),
    min_free=st.integers(0, 10_000),
    free=st.integers(0, 10_000),
    incomplete_max_age=st.one_of(st.just(math.inf), st.floats(0.0, NOW, allow_nan=False)),
    evict_hand_placed=st.booleans(),
)


def is_evictable(c: Candidate, lim: Limits) -> bool:
    return not c.pinned and not c.in_use and (c.downloaded or lim.evict_hand_placed)


def holds(usage: int, free: int, lim: Limits) -> bool:
    return (lim.max_size == 0 or usage <= lim.max_size) and free >= lim.min_free


@given(candidates_st, limits_st)
def test_properties(candidates: list[Candidate], lim: Limits) -> None:
    plan = plan_evictions(candidates, lim)
    by_hash = {c.infohash: c for c in candidates}
    evicted = [by_hash[e.infohash] for e in plan.evictions]
    evictable = sorted(
        (c for c in candidates if is_evictable(c, lim)), key=lambda c: (c.last_used, c.infohash)
    )

    # Never evicts a protected title; each at most once; records its bytes and last use.
    assert all(is_evictable(c, lim) for c in evicted)
    assert len(set(plan.evictions)) == len(plan.evictions)
    for e in plan.evictions:
        assert (e.bytes, e.last_used) == (by_hash[e.infohash].bytes, by_hash[e.infohash].last_used)

    # AGE is exactly the abandoned partial downloads, and comes first.
    aged = {e.infohash for e in plan.evictions if e.reason is Reason.AGE}
    assert aged == {
        c.infohash
        for c in evictable
        if not c.published and lim.now - c.last_used > lim.incomplete_max_age
    }
    assert [e.reason is Reason.AGE for e in plan.evictions] == sorted(
        (e.reason is Reason.AGE for e in plan.evictions), reverse=True
    )

    # The others are a prefix of the remaining evictable titles in LRU order.
    lru = [e.infohash for e in plan.evictions if e.reason is not Reason.AGE]
    rest = [c.infohash for c in evictable if c.infohash not in aged]
    assert lru == rest[: len(lru)]

    # Exact arithmetic and the satisfied flag.
    freed = sum(e.bytes for e in plan.evictions)
    assert plan.usage_after == sum(c.bytes for c in candidates) - freed
    assert plan.free_after == lim.free + freed
    assert plan.satisfied == holds(plan.usage_after, plan.free_after, lim)
    if not plan.satisfied:
        assert len(plan.evictions) == len(evictable)

    # Minimal: undoing the last LRU eviction breaks a limit, with the reason it names.
    lru_evictions = [e for e in plan.evictions if e.reason is not Reason.AGE]
    if lru_evictions:
        last = lru_evictions[-1]
        usage_before = plan.usage_after + last.bytes
        free_before = plan.free_after - last.bytes
        assert not holds(usage_before, free_before, lim)
        over_cap = lim.max_size > 0 and usage_before > lim.max_size
        assert last.reason is (Reason.SIZE_CAP if over_cap else Reason.FREE_SPACE)
    elif not aged:
        assert plan.satisfied == holds(sum(c.bytes for c in candidates), lim.free, lim)
