"""`GET /api/stats` (JSON) and `GET /metrics` (Prometheus text), from one `StatsView`.

How this works: the request counters of every process (`stats.merge`: this one's and the
workers' latest reports), the engine's transfer totals and rates, the recorded titles'
bytes and the filesystem's free space now make one `StatsView`. `/api/stats` encodes
it; `/metrics` hands the same numbers to `prometheus_client` through a collector that is
asked only when scraped (`prometheus_client`'s registry and text exposition; no metric
object is touched on the request path), so the two never disagree.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streme import __version__
from streme.api.parts import Parts
from streme.api.views import CacheUsage, StatsView
from streme.cache.usage import filesystem_space
from streme.config import min_free_bytes
from streme.http.messages import Request, Response, json_response
from streme.stats import TTFB_BUCKETS, StatsSnapshot, merge, stream_outcomes

PROMETHEUS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class StatsAPI:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self._view: tuple[StatsView, StatsSnapshot] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    async def view(self) -> tuple[StatsView, StatsSnapshot]:
        parts = self.parts
        snapshot = merge([parts.handlers.stats.snapshot(), *parts.worker_stats()])
        total, free = await asyncio.to_thread(filesystem_space, parts.cache_root)
        engine = parts.engine
        torrents = engine.snapshot() if engine is not None else []
        downloaded, uploaded = engine.transfer_totals() if engine is not None else (0, 0)
        sweeper = parts.sweeper
        titles, usage = await parts.recorder.run(lambda store: store.totals())
        other = {
            f"{r.route} {r.outcome if not r.reason else r.reason}": r.count
            for r in snapshot.requests
            if r.route != "stream"
        }
        view = StatsView(
            version=__version__,
            uptime=round(time.time() - parts.started, 3),
            processes=parts.processes,
            requests=stream_outcomes(snapshot),
            other_requests=other,
            bytes_served=dict(snapshot.bytes_served),
            downloaded=downloaded,
            uploaded=uploaded,
            download_rate=sum(t.download_rate for t in torrents),
            upload_rate=sum(t.upload_rate for t in torrents),
            active_streams=snapshot.active_streams + sum(t.readers for t in torrents),
            active_torrents=len(torrents),
            cache=CacheUsage(
                bytes=usage,
                free=free,
                cap=parts.config.cache.max_size,
                min_free=min_free_bytes(parts.config.cache, total),
                titles=titles,
                evictions=dict(sweeper.evictions),
            ),
        )
        return view, snapshot

    async def stats(self, request: Request, params: dict[str, str]) -> Response:
        view, _ = await self.view()
        return json_response(200, view)

    async def metrics(self, request: Request, params: dict[str, str]) -> Response:
        self._view = await self.view()
        try:
            text = generate_latest(self.registry)
        finally:
            self._view = None
        return Response(200, [(b"Content-Type", PROMETHEUS_TYPE)], text)

    def families(self) -> Iterator[Metric]:
        """The metrics of the view being scraped (see `metrics`)."""
        if self._view is None:
            return
        view, snapshot = self._view
        requests = CounterMetricFamily(
            "streme_requests",
            "Requests by route and outcome",
            labels=["route", "outcome", "reason"],
        )
        for r in snapshot.requests:
            requests.add_metric([r.route, r.outcome, r.reason], r.count)
        yield requests
        served = CounterMetricFamily(
            "streme_bytes_served", "Response body bytes by source", labels=["source"]
        )
        for source, n in snapshot.bytes_served.items():
            served.add_metric([source], n)
        yield served
        evictions = CounterMetricFamily(
            "streme_evictions", "Titles removed from the cache by reason", labels=["reason"]
        )
        for reason, n in view.cache.evictions.items():
            evictions.add_metric([reason], n)
        yield evictions
        transfer = CounterMetricFamily(
            "streme_swarm_bytes", "Payload bytes exchanged with the swarm", labels=["direction"]
        )
        transfer.add_metric(["download"], view.downloaded)
        transfer.add_metric(["upload"], view.uploaded)
        yield transfer
        ttfb = HistogramMetricFamily(
            "streme_time_to_first_byte_seconds",
            "Time from a request to its first body byte, by source",
            labels=["source"],
        )
        for source, h in snapshot.ttfb.items():
            cumulative, buckets = 0, []
            for bound, n in zip((*TTFB_BUCKETS, float("inf")), h.counts, strict=True):
                cumulative += n
                buckets.append((_bound(bound), cumulative))
            ttfb.add_metric([source], buckets, h.total)
        yield ttfb
        gauges = (
            ("streme_cache_bytes", "Bytes of the recorded titles", view.cache.bytes),
            ("streme_cache_free_bytes", "Free bytes on the cache's filesystem", view.cache.free),
            ("streme_cache_cap_bytes", "cache.max_size (0: none)", view.cache.cap),
            ("streme_active_streams", "Responses being sent", view.active_streams),
            ("streme_active_torrents", "Torrents in the session", view.active_torrents),
            ("streme_swarm_download_rate_bytes", "Download rate, bytes/s", view.download_rate),
            ("streme_swarm_upload_rate_bytes", "Upload rate, bytes/s", view.upload_rate),
            ("streme_uptime_seconds", "Seconds since the server started", view.uptime),
        )
        for name, text, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class _Collector(Collector):
    def __init__(self, api: StatsAPI) -> None:
        self.api = api

    def collect(self) -> Iterator[Metric]:
        return self.api.families()
