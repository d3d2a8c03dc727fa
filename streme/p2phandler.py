"""Answering a cache miss from the swarm: metadata, file choice, HTTP semantics, reader.

A cache miss with P2P enabled lands here. The torrent is added (once) and its metadata
awaited; the file is `file=N` or the largest video. HEAD needs only the metadata: no
piece is downloaded for it. The content of an infohash never changes, so the ETag is
strong (`"<infohash>-<N>"`), and there is no Last-Modified. Status and headers come from
the same planner as a cache hit's (`http.representation`), told that this source cannot
send several ranges in one response: those get the whole file (200), which §14.2 allows,
since interleaving them from the swarm would cost more than it saves.
"""

from __future__ import annotations

import logging

from streme.cache.lookup import default_torrent_files, episode_file
from streme.cache.mediatypes import content_type_for
from streme.cache.torrentmeta import TorrentMeta
from streme.config import P2PConfig
from streme.handlers import episode_name, parse_episode
from streme.http.messages import Request, Response, StreamBody, error_response
from streme.http.ranges import ByteRange
from streme.http.representation import Representation, plan
from streme.magnet import query_trackers
from streme.p2perrors import p2p_error_response
from streme.torrent.buffer import BufferAborted
from streme.torrent.engine import Engine
from streme.torrent.errors import CoolingDown, P2PError
from streme.torrent.stream import RangeReader

log = logging.getLogger("streme.p2p")


async def stream_from_swarm(
    engine: Engine,
    config: P2PConfig,
    video_extensions: list[str],
    request: Request,
    infohash: str,
    file_index: int | None,
) -> Response:
    # A magnet's or a Stremio app's `tr=`, only with p2p.allow_client_trackers.
    trackers = query_trackers(request.query_string) if config.allow_client_trackers else ()
    try:
        torrent = await engine.torrent(infohash, trackers)
    except P2PError as exc:
        if not isinstance(exc, CoolingDown):
            log.warning("No P2P stream for %s: %s", infohash, exc)
        return p2p_error_response(exc)
    meta = torrent.meta
    assert meta is not None
    wanted = parse_episode(request.query) if file_index is None else None  # checked by the route
    if wanted is not None:
        chosen_episode = episode_file(meta, video_extensions, *wanted)
        if chosen_episode is None:
            season, episode = wanted
            which = episode_name(season, episode)
            return error_response(404, "episode_not_found", f"{infohash} has no {which}")
        file_index = chosen_episode.index
    if file_index is None:
        videos = default_torrent_files(meta, video_extensions)
        chosen = videos[0] if videos else max(meta.files, key=lambda f: (f.length, -f.index))
        file_index = chosen.index
    elif file_index >= len(meta.files):
        return error_response(
            404,
            "file_not_found",
            f"file={file_index} is out of range: the torrent has {len(meta.files)} file(s)",
        )
    file = meta.files[file_index]
    size = file.length
    name = file.path[-1] if file.path else meta.name
    rep = Representation(
        size, content_type_for(name), f'"{infohash}-{file_index}"', None, multipart=False
    )
    planned = plan(request.method, request.headers, rep)
    if planned.error is not None:
        return error_response(planned.status, *planned.error, planned.headers)
    if not planned.body:
        return Response(planned.status, planned.headers, b"")
    (only,) = planned.body
    assert isinstance(only, ByteRange)
    # The reader marks the file wanted when the body is sent (never for a HEAD).
    reader = RangeReader(torrent, file_index, only.start, only.end, config, engine.new_reader_id())
    return Response(
        planned.status, planned.headers, StreamBody(only.length, reader.chunks, reader.close)
    )


class SwarmFiles:
    """A torrent's metadata and small files (subtitles) read whole from the swarm."""

    def __init__(self, engine: Engine, config: P2PConfig) -> None:
        self.engine = engine
        self.config = config

    async def metadata(self, infohash: str) -> TorrentMeta:
        meta = (await self.engine.torrent(infohash)).meta
        assert meta is not None
        return meta

    async def read(self, infohash: str, index: int, size: int) -> bytes:
        """File `index` (`size` bytes) whole, through a reader like a stream's."""
        if size == 0:
            return b""
        engine = self.engine
        torrent = await engine.torrent(infohash)
        reader = RangeReader(torrent, index, 0, size - 1, self.config, engine.new_reader_id())
        try:
            return b"".join([chunk async for chunk in reader.chunks()])
        except BufferAborted as exc:  # the producer's failure, as the route reports it
            cause = exc.__cause__
            raise cause if isinstance(cause, P2PError) else P2PError(str(exc)) from exc
        finally:
            reader.close()
