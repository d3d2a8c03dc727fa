"""What the server has done since it started: request outcomes, bytes served, time to
first byte. Pure: plain numbers, no I/O, no clock of its own.

How this works: the request path only adds to numbers (`count`, `served`, `first_byte`:
a dict increment, an addition, a bisect into a short tuple), so a cache hit pays about a
microsecond for its statistics and nothing is formatted until someone asks. `snapshot()`
copies the numbers into a `StatsSnapshot` (msgspec, so a worker process can send its own to
the engine's process, see streme/worker.py); `merge` adds snapshots up. The JSON of
`/api/stats` and the Prometheus text of `/metrics` are both built from one merged
snapshot, so they cannot disagree.

Outcomes of the stream route: `hit` (answered from the cache), `miss_streamed` (answered
from the swarm), `miss_failed` with the P2P error's code as the reason (`no_peers`,
`metadata_timeout`, ...), `rejected` with the error's code (a bad infohash, no such file,
not cached with P2P off). Other routes count their outcome as `ok` or the error's code.
"""

from __future__ import annotations

from bisect import bisect_left

import msgspec

# Upper bounds (seconds) of the time-to-first-byte buckets: a cache hit answers in well
# under a millisecond; a swarm stream's first byte waits for metadata and peers.
TTFB_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
SOURCES = ("cache", "swarm")

HIT = ("stream", "hit", "")
MISS_STREAMED = ("stream", "miss_streamed", "")


class Histogram(msgspec.Struct):
    """Observations per bucket (`counts[i]`: at most `TTFB_BUCKETS[i]`, the last one:
    above every bound), not cumulative; and their sum in seconds."""

    counts: list[int]
    total: float = 0.0

    @classmethod
    def empty(cls) -> Histogram:
        return cls([0] * (len(TTFB_BUCKETS) + 1))

    @property
    def count(self) -> int:
        return sum(self.counts)


class RequestCount(msgspec.Struct, array_like=True):
    route: str
    outcome: str
    reason: str
    count: int


class StatsSnapshot(msgspec.Struct):
    requests: list[RequestCount]
    bytes_served: dict[str, int]  # by source
    ttfb: dict[str, Histogram]  # by source
    active_streams: int = 0  # cache-hit responses in flight (the swarm's are the engine's)


class Stats:
    """The live counters of one process."""

    __slots__ = ("bytes_served", "requests", "serving", "ttfb")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.bytes_served = dict.fromkeys(SOURCES, 0)
        self.ttfb = {source: Histogram.empty() for source in SOURCES}
        self.serving = 0  # cache-hit responses in flight

    def count(self, key: tuple[str, str, str]) -> None:
        """One request with this (route, outcome, reason)."""
        self.requests[key] = self.requests.get(key, 0) + 1

    def served(self, source: str, nbytes: int) -> None:
        self.bytes_served[source] += nbytes

    def first_byte(self, source: str, seconds: float) -> None:
        histogram = self.ttfb[source]
        histogram.counts[bisect_left(TTFB_BUCKETS, seconds)] += 1
        histogram.total += seconds

    def snapshot(self) -> StatsSnapshot:
        return StatsSnapshot(
            requests=[RequestCount(*key, n) for key, n in sorted(self.requests.items())],
            bytes_served=dict(self.bytes_served),
            ttfb={s: Histogram(list(h.counts), h.total) for s, h in self.ttfb.items()},
            active_streams=self.serving,
        )


def merge(snapshots: list[StatsSnapshot]) -> StatsSnapshot:
    """The sum of several processes' snapshots."""
    requests: dict[tuple[str, str, str], int] = {}
    bytes_served = dict.fromkeys(SOURCES, 0)
    ttfb = {source: Histogram.empty() for source in SOURCES}
    active = 0
    for snap in snapshots:
        for r in snap.requests:
            key = (r.route, r.outcome, r.reason)
            requests[key] = requests.get(key, 0) + r.count
        for source, n in snap.bytes_served.items():
            bytes_served[source] = bytes_served.get(source, 0) + n
        for source, h in snap.ttfb.items():
            into = ttfb.setdefault(source, Histogram.empty())
            into.counts = [a + b for a, b in zip(into.counts, h.counts, strict=True)]
            into.total += h.total
        active += snap.active_streams
    return StatsSnapshot(
        requests=[RequestCount(*key, n) for key, n in sorted(requests.items())],
        bytes_served=bytes_served,
        ttfb=ttfb,
        active_streams=active,
    )


class StreamOutcomes(msgspec.Struct):
    """The stream route's requests for `/api/stats`."""

    hit: int
    miss_streamed: int
    miss_failed: dict[str, int]  # by reason
    rejected: dict[str, int]  # by reason
    hit_ratio: float | None  # hits / (hits + misses); None before the first


def stream_outcomes(snapshot: StatsSnapshot) -> StreamOutcomes:
    counts = {"hit": 0, "miss_streamed": 0}
    failed: dict[str, int] = {}
    rejected: dict[str, int] = {}
    for r in snapshot.requests:
        if r.route != "stream":
            continue
        if r.outcome in counts:
            counts[r.outcome] += r.count
        elif r.outcome == "miss_failed":
            failed[r.reason] = failed.get(r.reason, 0) + r.count
        else:
            rejected[r.reason] = rejected.get(r.reason, 0) + r.count
    misses = counts["miss_streamed"] + sum(failed.values())
    looked = counts["hit"] + misses
    return StreamOutcomes(
        hit=counts["hit"],
        miss_streamed=counts["miss_streamed"],
        miss_failed=failed,
        rejected=rejected,
        hit_ratio=counts["hit"] / looked if looked else None,
    )
