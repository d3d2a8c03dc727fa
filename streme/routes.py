"""Every route of the server, in one table: which handler answers what.

The stream route and /health (handlers.py), the operator's API and /metrics (api/), the
playlists, the web page, subtitles, then Stremio's routes, whose patterns start with a
capture and are only tried when nothing else matches (http/routing.py). In a worker
process (`--workers N`) the routes that need the records, the swarm or every process's
counters hand their connection to the first process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streme.api.access import Access
from streme.api.routes import OperatorAPI, add_api_routes, hand_off
from streme.config import Config
from streme.handlers import StreamHandlers, build_router
from streme.http.messages import Handler
from streme.http.routing import Router
from streme.playlist import Playlists
from streme.stremio import StremioRoutes, add_stremio_routes
from streme.subtitle_route import SubtitleRoute
from streme.webpage import WebPage, add_page_routes

if TYPE_CHECKING:
    from streme.torrent.engine import Engine


def all_routes(
    config: Config,
    handlers: StreamHandlers,
    api: OperatorAPI | None,
    engine: Engine | None,
    *,
    in_worker: bool,
) -> Router[Handler]:
    router = build_router(handlers)
    add_api_routes(router, api)
    add_playlist_routes(router, api, config)
    add_page_routes(router, WebPage())
    hand_off_misses = in_worker and config.p2p.enabled
    swarm = None
    if engine is not None:
        from streme.p2phandler import SwarmFiles  # loads libtorrent: only with P2P on

        swarm = SwarmFiles(engine, config.p2p)
    subtitles = SubtitleRoute(
        handlers.index,
        swarm=swarm,
        hand_off=hand_off_misses,
        stream_token=config.http.stream_token,
        cors_origin=config.api.cors_origin,
    )
    router.add("/subtitles/{infohash}/{name}", subtitles.serve)
    stremio = StremioRoutes(handlers, config, engine, hand_off=hand_off_misses)
    add_stremio_routes(router, stremio, Access("", config.api.cors_origin))
    return router


def add_playlist_routes(router: Router[Handler], api: OperatorAPI | None, config: Config) -> None:
    """`/playlist.m3u` and `/playlist/{infohash}.m3u`; a worker hands them to the first
    process, which has the records."""
    routes = ("/playlist.m3u", "/playlist/{name}")
    if api is None:
        for pattern in routes:
            router.add(pattern, hand_off)
        return
    playlists = Playlists(api.cache, config.cache.video_extensions, config.http.stream_token)
    router.add(routes[0], playlists.everything)
    router.add(routes[1], playlists.title)
