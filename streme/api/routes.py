"""The API's routes, each behind the access check (access.py), counted in the stats.

In a worker process (`--workers N`) every API route hands its connection to the engine's
process, which has the swarm, the sweep and every process's counters: one answer,
whichever process the client reached.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from streme.api.access import Access
from streme.api.cache_api import CacheAPI
from streme.api.parts import Parts
from streme.api.stats_api import StatsAPI
from streme.api.torrent_api import TorrentAPI
from streme.http.messages import HAND_OFF, Answer, Handler, Request, Response
from streme.http.routing import Router
from streme.stats import Stats

ApiHandler = Callable[[Request, dict[str, str]], "Response | Awaitable[Response]"]

# pattern -> {method: name of the handler}
ROUTES: dict[str, dict[str, str]] = {
    "/api/stats": {"GET": "stats.stats"},
    "/metrics": {"GET": "stats.metrics"},
    "/api/cache": {"GET": "cache.list"},
    "/api/cache/prune": {"POST": "cache.prune"},
    "/api/cache/{infohash}": {"GET": "cache.get", "DELETE": "cache.delete"},
    "/api/cache/{infohash}/pin": {"PUT": "cache.pin", "DELETE": "cache.pin"},
    "/api/torrents": {"GET": "torrents.list"},
    "/api/torrents/{infohash}": {"GET": "torrents.get"},
    "/api/files/{infohash}": {"GET": "torrents.files"},
    "/api/prefetch": {"POST": "torrents.prefetch"},
}
# The one route taking a large body (a .torrent).
UPLOAD_PATH = "/api/prefetch"


class OperatorAPI:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.access = Access(parts.config.api.token, parts.config.api.cors_origin)
        self.cache = CacheAPI(parts)
        self.torrents = TorrentAPI(parts, self.cache)
        self.stats = StatsAPI(parts)

    def handler(self, name: str) -> ApiHandler:
        part, method = name.split(".")
        fn: ApiHandler = getattr(getattr(self, part), method)
        return fn

    async def stop(self) -> None:
        await self.torrents.stop()


def guarded(fn: ApiHandler, route: str, access: Access, stats: Stats) -> Handler:
    """`fn` behind the access check, with the CORS headers, counted by outcome."""

    def finish(response: Response) -> Response:
        stats.count((route, response.error or "ok", ""))
        response.headers.extend(access.cors_headers())
        return response

    async def later(pending: Awaitable[Response]) -> Answer:
        return finish(await pending)

    def handle(request: Request, params: dict[str, str]) -> Answer | Awaitable[Answer]:
        refused = access.refusal(request)
        if refused is not None:
            return finish(refused)
        result = fn(request, params)
        if inspect.isawaitable(result):
            return later(result)
        assert isinstance(result, Response)
        return finish(result)

    return handle


def hand_off(request: Request, params: dict[str, str]) -> Answer:
    return HAND_OFF


def add_api_routes(router: Router[Handler], api: OperatorAPI | None) -> None:
    """Every API route onto `router`; `api` None (a worker): each one is handed off."""
    for pattern, methods in ROUTES.items():
        route = "metrics" if pattern == "/metrics" else "api"
        for method, name in methods.items():
            if api is None:
                router.add(pattern, hand_off, methods=(method,))
                continue
            handler = guarded(api.handler(name), route, api.access, api.parts.handlers.stats)
            router.add(pattern, handler, methods=(method,))
        if api is not None and api.access.cors_origin:
            allow = ", ".join(sorted({*methods, "OPTIONS"}))
            router.add(pattern, _preflight(api.access, allow), methods=("OPTIONS",))


def _preflight(access: Access, allow: str) -> Callable[[Request, dict[str, str]], Any]:
    def preflight(request: Request, params: dict[str, str]) -> Response:
        return access.preflight(allow)

    return preflight
