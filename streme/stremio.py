"""Stremio-style routes, so streme can stand where an app expects Stremio's streaming
server (the routes of its open engine, enginefs). docs/stremio.md lists what is covered.

- `GET /{infohash}/{file}`: `file` a number (as `/stream/proxy/{ih}?file=N`), `-1` (the
  guess: the default file, or `?season=&episode=`'s), or a file's name in the torrent;
- `GET|POST /{infohash}/create`: join the swarm (or find the title in the cache) and
  answer its statistics; with `guessFileIdx` (`{}`, `true`, or `{season, episode}`) also
  `guessedFileIdx`. `peerSearch.sources`' trackers only with `p2p.allow_client_trackers`;
- `GET /{infohash}/stats.json`, `/{infohash}/{file}/stats.json`, `/stats.json`;
- `GET /{infohash}/remove`: the torrent leaves the session, keeping what it downloaded
  (refused with 409 while a response streams from it).

How this works: every stream goes through the stream route's handler with the file
index put into the query, so cache hits, the swarm, ranges, tokens and statistics are
the same as on `/stream/proxy`. Metadata comes from the cache's `.torrent`, else from
the swarm. Statistics keep enginefs' field names; what streme does not track is absent.
Open like the stream route (`http.stream_token` applies); CORS per `api.cors_origin`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import msgspec

from streme.api.access import Access
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.cache.torrentmeta import TorrentFile, TorrentMeta
from streme.config import Config
from streme.handlers import (
    FILE_INDEX_PARAMS,
    STREAM_TOKEN_MISSING,
    StreamHandlers,
    lacks_stream_token,
)
from streme.http.messages import (
    HAND_OFF,
    Answer,
    Handler,
    Request,
    Response,
    error_response,
    json_response,
)
from streme.http.routing import Router
from streme.magnet import tracker_urls
from streme.p2perrors import p2p_error_response
from streme.stremio_stats import guess_file, swarm_progress, torrent_stats
from streme.torrent.errors import P2PError

if TYPE_CHECKING:  # not at run time: it would load libtorrent into a cache-only server
    from streme.torrent.engine import Engine

GUESS = "-1"


class _PeerSearch(msgspec.Struct):
    sources: list[str] = []


class _CreateBody(msgspec.Struct):
    """What Stremio's apps post to `/create` (other fields ignored)."""

    peerSearch: _PeerSearch | None = None
    guessFileIdx: dict[str, Any] | bool | None = None


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class StremioRoutes:
    def __init__(
        self,
        handlers: StreamHandlers,
        config: Config,
        engine: Engine | None,
        *,
        hand_off: bool,
    ) -> None:
        self.handlers = handlers
        self.index = handlers.index
        self.exts = config.cache.video_extensions
        self.allow_client_trackers = config.p2p.allow_client_trackers
        self.engine = engine
        self.hand_off = hand_off  # a worker: what needs the swarm goes to the first process
        self.stream_token = config.http.stream_token
        origin = config.api.cors_origin
        self._cors = [(b"Access-Control-Allow-Origin", origin.encode())] if origin else []

    # -- helpers -------------------------------------------------------------------------
    def _json(self, status: int, payload: object) -> Response:
        return json_response(status, payload, self._cors)

    def _error(self, status: int, code: str, message: str) -> Response:
        return error_response(status, code, message, list(self._cors))

    def _check(self, request: Request, raw: str) -> str | Response:
        """The infohash, or the refusal (a first segment that is no infohash: 404)."""
        if lacks_stream_token(request, self.stream_token):
            return self._error(401, "stream_token", STREAM_TOKEN_MISSING)
        try:
            return parse_infohash(raw)
        except InvalidInfohash:
            return self._error(404, "not_found", f"no route for {request.path}")

    async def _metadata(
        self, infohash: str, trackers: tuple[str, ...] = (), *, join: bool = True
    ) -> TorrentMeta | None:
        """The cache's `.torrent`; for a title placed by hand without one, its one video
        as file 0 (`hand_placed`); else the swarm's metadata, joining the swarm for it
        unless `join` is false (None: none of these). Raises P2PError when the swarm
        cannot give it."""
        meta = await self.index.metadata_async(infohash)
        if meta is None:
            meta = await self._hand_placed(infohash)
        engine = self.engine
        if meta is None and engine is not None:
            meta = (
                (await engine.torrent(infohash, trackers)).meta
                if join
                else engine.metadata(infohash)
            )
        return meta

    async def _hand_placed(self, infohash: str) -> TorrentMeta | None:
        found = await self.index.lookup_async(infohash)
        if found.file is None:
            return None
        found.file.release()
        name = os.path.basename(found.file.path)
        return TorrentMeta(infohash, name, False, (TorrentFile(0, 0, (), found.file.size),))

    # -- streams -------------------------------------------------------------------------
    async def play(self, request: Request, params: dict[str, str]) -> Answer:
        infohash = self._check(request, params["infohash"])
        if isinstance(infohash, Response):
            return infohash
        file = params["file"]
        query = {k: v for k, v in request.query.items() if k not in FILE_INDEX_PARAMS}
        if file.isascii() and file.isdigit():
            query["file"] = file
            if file == "0" and await self._hand_placed_only(infohash):
                del query["file"]  # its one file, which has no index without a .torrent
        elif file != GUESS:  # a file's name
            try:
                meta = await self._metadata(infohash)
            except P2PError as exc:
                return p2p_error_response(exc)
            if meta is None:
                return HAND_OFF if self.hand_off else self._no_metadata(infohash)
            named = [f.index for f in meta.files if f.path and f.path[-1] == file]
            named += [f.index for f in meta.files if "/".join(f.path) == file]
            if not meta.multi_file and meta.name == file:
                named.append(0)
            if not named:
                return self._error(404, "file_not_found", f"{infohash} has no file named {file!r}")
            if not await self._hand_placed_only(infohash):
                query["file"] = str(named[0])
        answer = self.handlers.stream(
            dataclasses.replace(request, _query=query), {"infohash": infohash}
        )
        return answer if isinstance(answer, Answer) else await answer

    async def _hand_placed_only(self, infohash: str) -> bool:
        """In the cache without a `.torrent`: its files have no indexes."""
        if not self.index.names_of(infohash):
            return False
        return await self.index.metadata_async(infohash) is None

    def _no_metadata(self, infohash: str) -> Response:
        return self._error(
            404,
            "not_cached",
            f"{infohash}'s files are unknown: its .torrent is not in the cache and P2P is off",
        )

    # -- engine routes -------------------------------------------------------------------
    async def create(self, request: Request, params: dict[str, str]) -> Answer:
        infohash = self._check(request, params["infohash"])
        if isinstance(infohash, Response):
            return infohash
        if self.hand_off:
            return HAND_OFF
        try:
            body = msgspec.json.decode(request.body or b"{}", type=_CreateBody)
        except msgspec.DecodeError as exc:
            return self._error(400, "invalid_body", f"the body is not the JSON expected: {exc}")
        sources = body.peerSearch.sources if body.peerSearch is not None else []
        trackers = tracker_urls(sources) if self.allow_client_trackers else ()
        try:
            meta = await self._metadata(infohash, trackers)
        except P2PError as exc:
            return p2p_error_response(exc)
        if meta is None:
            return self._no_metadata(infohash)
        stats = await self._stats(infohash, meta, None)
        guess = body.guessFileIdx
        if guess is not None and guess is not False:
            wanted = guess if isinstance(guess, dict) else {}
            season, episode = _number(wanted.get("season")), _number(wanted.get("episode"))
            stats["guessedFileIdx"] = guess_file(meta, self.exts, season, episode)
        return self._json(200, stats)

    async def remove(self, request: Request, params: dict[str, str]) -> Answer:
        infohash = self._check(request, params["infohash"])
        if isinstance(infohash, Response):
            return infohash
        if self.hand_off:
            return HAND_OFF
        engine = self.engine
        if engine is not None and infohash in engine.in_use():
            leaving = engine.leave(infohash, "removed (Stremio's /remove)")
            if leaving is None and engine.torrent_snapshot(infohash) is not None:
                return self._error(
                    409, "in_use", f"{infohash} is being streamed; it leaves when nobody reads it"
                )
            if leaving is not None:
                await leaving
        return self._json(200, {})

    async def stats(self, request: Request, params: dict[str, str]) -> Answer:
        infohash = self._check(request, params["infohash"])
        if isinstance(infohash, Response):
            return infohash
        if self.hand_off:
            return HAND_OFF
        raw = params.get("file")
        file = int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
        meta = await self._metadata(infohash, join=False)
        if meta is None:
            return self._json(200, None)  # as enginefs answers for a torrent it does not have
        return self._json(200, await self._stats(infohash, meta, file))

    async def all_stats(self, request: Request, params: dict[str, str]) -> Answer:
        if self.hand_off:
            return HAND_OFF
        engine = self.engine
        answer: dict[str, object] = {}
        for snapshot in engine.snapshot() if engine is not None else []:
            meta = engine.metadata(snapshot.infohash) if engine is not None else None
            if meta is not None:
                answer[snapshot.infohash] = await self._stats(snapshot.infohash, meta, None)
        return self._json(200, answer)

    async def _stats(self, infohash: str, meta: TorrentMeta, file: int | None) -> dict[str, Any]:
        """enginefs' statistics of a torrent (and of one of its files)."""
        engine = self.engine
        snapshot = engine.torrent_snapshot(infohash) if engine is not None else None
        progress = 0.0
        if file is not None and file < len(meta.files):
            from_swarm = swarm_progress(snapshot, file)
            progress = from_swarm if from_swarm is not None else await self._on_disk(infohash, file)
        return torrent_stats(meta, snapshot, file, progress)

    async def _on_disk(self, infohash: str, file: int) -> float:
        """1 when the file is served from the cache, else 0."""
        by_index = None if await self._hand_placed_only(infohash) else file
        found = await self.index.lookup_async(infohash, by_index)
        if found.file is None:
            return 0.0
        found.file.release()
        return 1.0


def add_stremio_routes(router: Router[Handler], routes: StremioRoutes, access: Access) -> None:
    """These patterns start with a capture: tried after every other route (routing.py)."""
    if access.cors_origin:  # a web app's POST of JSON is preflighted

        def preflight(request: Request, params: dict[str, str]) -> Response:
            return access.preflight("GET, OPTIONS, POST")

        router.add("/{infohash}/create", preflight, methods=("OPTIONS",))
    router.add("/stats.json", routes.all_stats)
    router.add("/{infohash}/stats.json", routes.stats)
    router.add("/{infohash}/{file}/stats.json", routes.stats)
    router.add("/{infohash}/create", routes.create, methods=("GET", "POST"))
    router.add("/{infohash}/remove", routes.remove)
    router.add("/{infohash}/{file}", routes.play)
