"""The counters (streme/stats.py): counting, the histogram's buckets, merging processes."""

from __future__ import annotations

import msgspec

from streme.stats import (
    HIT,
    MISS_STREAMED,
    TTFB_BUCKETS,
    Stats,
    StatsSnapshot,
    merge,
    stream_outcomes,
)


def test_counts_and_bytes() -> None:
    stats = Stats()
    stats.count(HIT)
    stats.count(HIT)
    stats.count(MISS_STREAMED)
    stats.count(("stream", "miss_failed", "no_peers"))
    stats.count(("stream", "rejected", "invalid_infohash"))
    stats.count(("api", "ok", ""))
    stats.served("cache", 100)
    stats.served("swarm", 7)
    snap = stats.snapshot()
    outcomes = stream_outcomes(snap)
    assert (outcomes.hit, outcomes.miss_streamed) == (2, 1)
    assert outcomes.miss_failed == {"no_peers": 1}
    assert outcomes.rejected == {"invalid_infohash": 1}
    assert outcomes.hit_ratio == 2 / 4  # rejected requests were never looked up
    assert snap.bytes_served == {"cache": 100, "swarm": 7}


def test_no_lookups_no_ratio() -> None:
    assert stream_outcomes(Stats().snapshot()).hit_ratio is None


def test_histogram_buckets_by_upper_bound() -> None:
    stats = Stats()
    stats.first_byte("cache", TTFB_BUCKETS[0])  # on the bound: in that bucket (le)
    stats.first_byte("cache", TTFB_BUCKETS[0] * 1.01)
    stats.first_byte("cache", TTFB_BUCKETS[-1] * 2)  # above every bound: the last one
    counts = stats.snapshot().ttfb["cache"].counts
    assert counts[0] == 1
    assert counts[1] == 1
    assert counts[-1] == 1
    assert sum(counts) == 3
    assert stats.snapshot().ttfb["swarm"].count == 0


def test_merge_adds_processes_and_survives_the_wire() -> None:
    a, b = Stats(), Stats()
    a.count(HIT)
    b.count(HIT)
    b.count(("stream", "miss_failed", "metadata_timeout"))
    a.served("cache", 5)
    b.served("cache", 6)
    a.first_byte("cache", 0.0003)
    b.first_byte("cache", 0.0003)
    b.serving = 2
    wire = msgspec.json.encode(b.snapshot())  # a worker's report
    merged = merge([a.snapshot(), msgspec.json.decode(wire, type=StatsSnapshot)])
    outcomes = stream_outcomes(merged)
    assert outcomes.hit == 2
    assert outcomes.miss_failed == {"metadata_timeout": 1}
    assert merged.bytes_served["cache"] == 11
    assert merged.ttfb["cache"].count == 2
    assert abs(merged.ttfb["cache"].total - 0.0006) < 1e-12
    assert merged.active_streams == 2
