"""Route handlers: where the HTTP core and the cache meet.

`GET|HEAD /stream/proxy/{infohash}[?file=N]` validates the infohash and file index,
asks the cache index, and answers from the cached file with no P2P at all; `GET /health`
says the server is up. The original server's log lines are kept verbatim so operators
can grep for them. Every GET that sends content is counted in the usage records (an
in-memory batch, written off the request path), and `serving` holds each title with a
cache-hit response in flight, which the cache sweep never evicts.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Coroutine
from time import perf_counter
from typing import Any
from urllib.parse import parse_qs

from streme.cache.index import CacheIndex, LookupResult, LookupStatus
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.cache.lookup import episode_file
from streme.cache.mediatypes import DEFAULT_VIDEO_EXTENSIONS
from streme.cache.records import UsageRecorder
from streme.http.fileresponse import file_response
from streme.http.messages import (
    HAND_OFF,
    Answer,
    Handler,
    Request,
    Response,
    StreamBody,
    error_response,
    json_response,
)
from streme.http.routing import Router
from streme.logbuffer import LineLog
from streme.magnet import BadMagnet, magnet_query
from streme.stats import HIT, MISS_STREAMED, Stats

# The original's per-request lines, at `info`, queued rather than written on the spot.
lines = LineLog("streme.stream")
CHECKING = "Checking for cached file for %s"
HIT_LINES = (
    CHECKING,
    "Found cached video file for %s",
    "Using cached file for %s - no P2P needed",
)

# What answers a cache miss instead of 404 (the swarm, when P2P is on).
MissHandler = Callable[[Request, str, int | None], Coroutine[Any, Any, Response]]

# What DLNA renderers (smart TVs) look for on a stream: sent by peerflix and Stremio's
# server too; several TVs refuse a stream without them. OP=01: byte seeks (Range);
# CI=0: not transcoded; FLAGS: streaming transfer mode, background transfer, DLNA 1.5.
DLNA_HEADERS = (
    (b"transferMode.dlna.org", b"Streaming"),
    (
        b"contentFeatures.dlna.org",
        b"DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000",
    ),
)

FILE_INDEX_PARAMS = ("file", "fileIdx", "fileIndex")
MAX_FILE_INDEX = 1_000_000


class BadFileIndex(ValueError):
    pass


def parse_file_index(query: dict[str, str]) -> int | None:
    """`file=N` (aliases fileIdx, fileIndex): a 0-based decimal index, or None if absent."""
    for name in FILE_INDEX_PARAMS:
        raw = query.get(name)
        if raw is None:
            continue
        if not raw.isascii() or not raw.isdigit() or int(raw) >= MAX_FILE_INDEX:
            raise BadFileIndex(
                f"{name} must be a file index from 0 to {MAX_FILE_INDEX - 1}, got {raw[:32]!r}"
            )
        return int(raw)
    return None


class BadEpisode(ValueError):
    pass


def parse_episode(query: dict[str, str]) -> tuple[int | None, int] | None:
    """`episode=E` with an optional `season=S` (numbers from 0): (S or None, E); None
    without `episode`."""
    raw_episode, raw_season = query.get("episode"), query.get("season")
    if raw_episode is None:
        if raw_season is not None:
            raise BadEpisode("season= needs episode= too")
        return None
    numbers = []
    for name, raw in (("season", raw_season), ("episode", raw_episode)):
        if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
            raise BadEpisode(f"{name} must be a number, got {raw[:32]!r}")
        numbers.append(None if raw is None else int(raw))
    season, episode = numbers
    assert episode is not None
    return season, episode


def episode_name(season: int | None, episode: int) -> str:
    return f"episode {episode}" if season is None else f"season {season} episode {episode}"


def token_matches(given: str | None, expected: str) -> bool:
    """Compared in constant time (hmac.compare_digest), as bytes."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


STREAM_TOKEN_MISSING = "this server needs ?token= on stream URLs (http.stream_token)"


def lacks_stream_token(request: Request, expected: str) -> bool:
    """`http.stream_token` is set and the request's `?token=` is missing or wrong."""
    return bool(expected) and not token_matches(request.query.get("token"), expected)


class StreamHandlers:
    def __init__(
        self,
        index: CacheIndex,
        on_miss: MissHandler | None = None,
        recorder: UsageRecorder | None = None,
        *,
        hand_off_misses: bool = False,
        worker: int | None = None,
        stats: Stats | None = None,
        stream_token: str = "",
        cors_origin: str = "",
        video_extensions: list[str] | None = None,
    ) -> None:
        self.index = index
        self.video_extensions = video_extensions or list(DEFAULT_VIDEO_EXTENSIONS)
        self.stats = stats if stats is not None else Stats()
        self.stream_token = stream_token  # http.stream_token: `?token=` on stream routes
        # api.cors_origin, on every stream response when set.
        self._cors = [(b"Access-Control-Allow-Origin", cors_origin.encode())] if cors_origin else []
        self.on_miss = on_miss
        # In a worker process: a miss goes to the engine's process with its connection.
        self.hand_off_misses = hand_off_misses
        self.worker = worker  # this process's number with --workers N (0: the engine's)
        self.recorder = recorder
        self.serving: dict[str, int] = {}  # infohash -> cache-hit responses in flight

    def _served(self, request: Request, infohash: str, response: Response) -> None:
        """Count a GET that sends content in the usage records (batched, no I/O here)."""
        if self.recorder is None or request.method != "GET" or response.status not in (200, 206):
            return
        self.recorder.served(infohash, response.content_length)

    def _serve_until_released(
        self, infohash: str, release: Callable[[], None]
    ) -> Callable[[], None]:
        """Hold `infohash` in `serving` (never evicted) until the response lets go."""
        self.serving[infohash] = self.serving.get(infohash, 0) + 1
        stats = self.stats
        stats.serving += 1

        def released() -> None:
            release()
            stats.serving -= 1
            left = self.serving[infohash] - 1
            if left:
                self.serving[infohash] = left
            else:
                del self.serving[infohash]

        return released

    async def _from_swarm(
        self, on_miss: MissHandler, request: Request, infohash: str, file_index: int | None
    ) -> Response:
        response = await on_miss(request, infohash, file_index)
        stats = self.stats
        if response.error:
            outcome = "miss_failed" if response.status >= 500 else "rejected"
            stats.count(("stream", outcome, response.error))
        else:
            stats.count(MISS_STREAMED)
            if response.status < 300:
                response.headers.extend(DLNA_HEADERS)
            if isinstance(response.body, StreamBody) and request.method == "GET":
                self._observe_swarm(response.body, request.received)
        self._served(request, infohash, response)
        self._with_cors(response)
        return response

    def _observe_swarm(self, body: StreamBody, received: float) -> None:
        """Count a swarm stream's bytes as they go out, and time its first one."""
        produce, stats = body.open, self.stats

        async def observed() -> AsyncIterator[bytes]:
            first = True
            async for chunk in produce():
                if first:
                    stats.first_byte("swarm", perf_counter() - received)
                    first = False
                stats.served("swarm", len(chunk))
                yield chunk

        body.open = observed

    def _with_cors(self, response: Response) -> Response:
        if self._cors:
            response.headers.extend(self._cors)
        return response

    def _rejected(self, status: int, code: str, message: str) -> Response:
        self.stats.count(("stream", "rejected", code))
        return self._with_cors(error_response(status, code, message))

    def health(self, request: Request, params: dict[str, str]) -> Response:
        if self.worker is None:
            return json_response(200, {"status": "ok"})
        return json_response(200, {"status": "ok", "worker": self.worker})

    def stream(
        self, request: Request, params: dict[str, str]
    ) -> Answer | Coroutine[Any, Any, Answer]:
        if lacks_stream_token(request, self.stream_token):
            return self._rejected(401, "stream_token", STREAM_TOKEN_MISSING)
        try:
            infohash = parse_infohash(params["infohash"])
        except InvalidInfohash as exc:
            return self._rejected(400, "invalid_infohash", str(exc))
        try:
            file_index = parse_file_index(request.query)
            episode = parse_episode(request.query)
        except BadFileIndex as exc:
            return self._rejected(400, "invalid_file_index", str(exc))
        except BadEpisode as exc:
            return self._rejected(400, "invalid_episode", str(exc))
        if episode is not None and file_index is None:
            return self._by_episode(request, infohash, *episode)

        result = self.index.lookup_now(infohash, file_index)
        if result is None:  # the answer needs the filesystem: off the event loop
            lines.info(CHECKING, infohash)
            return self._looked_up(request, infohash, file_index)
        if result.status is LookupStatus.HIT:  # the common case: its three lines at once
            lines.info_lines(HIT_LINES, infohash)
        else:
            lines.info(CHECKING, infohash)
        return self._answer(request, infohash, file_index, result)

    def magnet(
        self, request: Request, params: dict[str, str]
    ) -> Answer | Coroutine[Any, Any, Answer]:
        """`/stream/magnet?xt=urn:btih:...&dn=...`: the stream route for the magnet's
        infohash (`file=`, `season=`/`episode=` as there; its `tr=` per
        p2p.allow_client_trackers, read by the swarm's side)."""
        try:
            infohash, _trackers = magnet_query(parse_qs(request.query_string))
        except BadMagnet as exc:
            return self._rejected(400, "invalid_magnet", str(exc))
        return self.stream(request, {"infohash": infohash})

    async def _by_episode(
        self, request: Request, infohash: str, season: int | None, episode: int
    ) -> Answer:
        """`?season=&episode=`: the file from the cache's `.torrent`; without one, the
        swarm chooses from the torrent's metadata (p2phandler)."""
        meta = await self.index.metadata_async(infohash)
        if meta is not None:
            chosen = episode_file(meta, self.video_extensions, season, episode)
            if chosen is None:
                which = episode_name(season, episode)
                return self._rejected(404, "episode_not_found", f"{infohash} has no {which}")
            return await self._looked_up(request, infohash, chosen.index)
        lines.info(CHECKING, infohash)
        if self.on_miss is not None:
            return await self._from_swarm(self.on_miss, request, infohash, None)
        if self.hand_off_misses:
            return HAND_OFF
        message = f"choosing an episode of {infohash} needs {infohash}.torrent in the cache"
        return self._rejected(404, "not_cached", message)

    async def _looked_up(self, request: Request, infohash: str, file_index: int | None) -> Answer:
        result = await self.index.lookup_async(infohash, file_index)
        if result.status is LookupStatus.HIT:
            lines.info_lines(HIT_LINES[1:], infohash)
        answer = self._answer(request, infohash, file_index, result)
        return answer if isinstance(answer, Answer) else await answer

    def _answer(
        self,
        request: Request,
        infohash: str,
        file_index: int | None,
        result: LookupResult,
    ) -> Answer | Coroutine[Any, Any, Response]:
        """The response to a lookup's result (the caller has logged a hit's lines)."""
        if result.status is LookupStatus.HIT:
            cached = result.file
            assert cached is not None
            response = file_response(
                request,
                fd=cached.fd,
                size=cached.size,
                mtime_ns=cached.mtime_ns,
                content_type=cached.content_type,
                release=self._serve_until_released(infohash, cached.release),
            )
            stats = self.stats
            stats.count(HIT)
            if request.method == "GET" and response.status in (200, 206):
                stats.served("cache", response.content_length)
                stats.first_byte("cache", perf_counter() - request.received)
            if response.status < 300:
                response.headers.extend(DLNA_HEADERS)
            self._served(request, infohash, response)
            return self._with_cors(response)
        if result.status is LookupStatus.FILE_NOT_FOUND:
            return self._rejected(404, "file_not_found", result.detail)
        lines.info("No cached file found for infoHash: %s", infohash)
        if self.on_miss is not None:
            return self._from_swarm(self.on_miss, request, infohash, file_index)
        if self.hand_off_misses:
            return HAND_OFF
        message = (
            f"{infohash} is not in the cache and P2P is disabled "
            "(p2p.enabled, STREME_P2P_ENABLED=1)"
        )
        if result.detail:
            message = f"{message}: {result.detail}"
        return self._rejected(404, "not_cached", message)


def build_router(handlers: StreamHandlers) -> Router[Handler]:
    router: Router[Handler] = Router()
    router.add("/health", handlers.health, methods=("GET",))
    router.add("/stream/proxy/{infohash}", handlers.stream, methods=("GET",))
    router.add("/stream/magnet", handlers.magnet, methods=("GET",))
    return router
