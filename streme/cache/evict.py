"""Which titles to evict from the cache, and why. Pure: no I/O, no clock, no logging.

How this works (`plan_evictions`):
1. Protected titles are never evicted: pinned ones, ones in use (being served or
   downloaded right now), and hand-placed ones (`downloaded=False`, put there by the
   operator) unless `Limits.evict_hand_placed`. The rest are *evictable*.
2. Age first: every evictable title without served files (`published=False`, a partial
   download) whose `now - last_used` exceeds `incomplete_max_age` goes, reason AGE: an
   abandoned download. This happens whatever the limits say (`math.inf` turns it off).
3. Then least recently used first (ascending `last_used`, ties by infohash), titles go
   while usage exceeds `max_size` (when it is above 0; reason SIZE_CAP) or the free space is
   below `min_free` (reason FREE_SPACE; SIZE_CAP when both hold). Usage is the sum of every
   candidate's bytes, protected ones included; each eviction lowers usage and raises the
   free space by its bytes.
4. Eviction stops as soon as both limits hold, so nothing more than needed goes. When the
   evictable titles run out first, the plan is not `satisfied`.
Infohashes must be unique among the candidates (ValueError otherwise).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Reason(enum.Enum):
    SIZE_CAP = "size cap"
    FREE_SPACE = "free space"
    AGE = "age"


@dataclass(frozen=True, slots=True)
class Candidate:
    infohash: str
    bytes: int
    last_used: float  # last served, or when added if never served
    downloaded: bool  # streme downloaded it (False: hand-placed by the operator)
    pinned: bool
    in_use: bool  # being served or downloaded right now
    published: bool  # has served files (False: only a partial download)


@dataclass(frozen=True, slots=True)
class Limits:
    max_size: int  # bytes the cache may use; 0 = no cap
    min_free: int  # bytes that must stay free on the filesystem
    free: int  # bytes free now
    incomplete_max_age: float  # seconds an unpublished download may sit unused
    now: float
    evict_hand_placed: bool = False


@dataclass(frozen=True, slots=True)
class Eviction:
    infohash: str
    bytes: int
    reason: Reason
    last_used: float


@dataclass(frozen=True, slots=True)
class Plan:
    evictions: tuple[Eviction, ...]
    usage_after: int
    free_after: int
    satisfied: bool  # usage_after <= max_size (or no cap) and free_after >= min_free


def is_evictable(candidate: Candidate, limits: Limits) -> bool:
    """Rule 1: neither pinned nor in use, and downloaded by streme unless hand-placed may go."""
    return (
        not candidate.pinned
        and not candidate.in_use
        and (candidate.downloaded or limits.evict_hand_placed)
    )


def is_abandoned(candidate: Candidate, limits: Limits) -> bool:
    """Rule 2: an unpublished (partial) download unused for longer than the maximum age."""
    return not candidate.published and limits.now - candidate.last_used > limits.incomplete_max_age


def lru_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Least recently used first; ties by infohash."""
    return sorted(candidates, key=lambda c: (c.last_used, c.infohash))


def _over_cap(usage: int, limits: Limits) -> bool:
    return limits.max_size > 0 and usage > limits.max_size


def plan_evictions(candidates: Sequence[Candidate], limits: Limits) -> Plan:
    """The evictions that bring the cache within `limits`, following the module's rules."""
    if len({c.infohash for c in candidates}) != len(candidates):
        raise ValueError("candidates must have distinct infohashes")
    usage = sum(c.bytes for c in candidates)
    free = limits.free
    evictions: list[Eviction] = []

    def evict(candidate: Candidate, reason: Reason) -> None:
        nonlocal usage, free
        evictions.append(Eviction(candidate.infohash, candidate.bytes, reason, candidate.last_used))
        usage -= candidate.bytes
        free += candidate.bytes

    remaining: list[Candidate] = []
    for candidate in lru_order([c for c in candidates if is_evictable(c, limits)]):
        if is_abandoned(candidate, limits):
            evict(candidate, Reason.AGE)
        else:
            remaining.append(candidate)
    for candidate in remaining:
        if _over_cap(usage, limits):
            evict(candidate, Reason.SIZE_CAP)
        elif free < limits.min_free:
            evict(candidate, Reason.FREE_SPACE)
        else:
            break
    satisfied = not _over_cap(usage, limits) and free >= limits.min_free
    return Plan(tuple(evictions), usage_after=usage, free_after=free, satisfied=satisfied)
