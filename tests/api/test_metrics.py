"""`/metrics` against `/api/stats` after a scripted mix of requests: cache hits, a miss
streamed from a libtorrent seeder, a miss that fails (no metadata), bad requests. The
Prometheus text is parsed with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.api.apiclient import call
from tests.conftest import RunningServer, write_video
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, p2p_settings, random_bytes

MiB = 1024 * 1024
CACHED = "c" * 40


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_match_stats(
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    cached = write_video(cache_dir, f"{CACHED}.mp4", 2 * MiB)
    data = random_bytes(3 * MiB + 5, 17)
    seeder = make_seeder(tmp_path / "seed", {"clip.mp4": data}, 256 * 1024, tracker=tracker)
    try:
        server = make_server(p2p=p2p_settings(tracker, metadata_timeout=1))
        port = server.port
        for _ in range(3):
            assert call(port, "GET", f"/stream/proxy/{CACHED}")[0] == 200
        assert (
            call(port, "GET", f"/stream/proxy/{CACHED}", headers={"Range": "bytes=0-99"})[0] == 206
        )
        status, headers, body = call(port, "GET", f"/stream/proxy/{seeder.infohash}")
        assert (status, body) == (200, data)
        assert headers["transfermode.dlna.org"] == "Streaming"  # from the swarm too
        assert call(port, "GET", f"/stream/proxy/{'d' * 40}")[0] == 504  # no metadata in 1 s
        assert call(port, "GET", "/stream/proxy/not-a-hash")[0] == 400
        assert call(port, "GET", f"/stream/proxy/{CACHED}?file=x")[0] == 400
        assert call(port, "GET", "/api/cache/zz")[0] == 400

        status, _, stats = call(port, "GET", "/api/stats")
        status, headers, text = call(port, "GET", "/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        got = samples(text.decode())
    finally:
        seeder.stop()

    def requests(outcome: str, reason: str = "", route: str = "stream") -> float:
        key = (("outcome", outcome), ("reason", reason), ("route", route))
        return got.get(("streme_requests_total", key), 0.0)

    outcomes = stats["requests"]
    assert outcomes["hit"] == 4 == requests("hit")
    assert outcomes["miss_streamed"] == 1 == requests("miss_streamed")
    assert outcomes["miss_failed"] == {"metadata_timeout": 1}
    assert requests("miss_failed", "metadata_timeout") == 1
    assert outcomes["rejected"] == {"invalid_infohash": 1, "invalid_file_index": 1}
    assert requests("rejected", "invalid_infohash") == 1
    assert requests("rejected", "invalid_file_index") == 1
    assert stats["other_requests"] == {"api invalid_infohash": 1}
    assert requests("invalid_infohash", route="api") == 1
    assert outcomes["hit_ratio"] == 4 / 6

    cache_bytes = 3 * len(cached) + 100
    assert stats["bytes_served"] == {"cache": cache_bytes, "swarm": len(data)}
    assert got[("streme_bytes_served_total", (("source", "cache"),))] == cache_bytes
    assert got[("streme_bytes_served_total", (("source", "swarm"),))] == len(data)
    # One first byte timed per GET with a body: 4 from the cache, 1 from the swarm.
    assert got[("streme_time_to_first_byte_seconds_count", (("source", "cache"),))] == 4
    assert got[("streme_time_to_first_byte_seconds_count", (("source", "swarm"),))] == 1
    inf = (("le", "+Inf"), ("source", "cache"))
    assert got[("streme_time_to_first_byte_seconds_bucket", inf)] == 4
    assert got[("streme_swarm_bytes_total", (("direction", "download"),))] >= len(data)
    assert stats["downloaded"] >= len(data)
    assert got[("streme_cache_free_bytes", ())] > 0
    assert got[("streme_active_torrents", ())] == stats["active_torrents"]
