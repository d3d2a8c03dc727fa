"""Answering a cache miss from the swarm: metadata, file choice, HTTP semantics, reader.

A cache miss with P2P enabled lands here. The torrent is added (once) and its metadata
awaited; the file is `file=N` or the largest video. HEAD needs only the metadata: no
piece is downloaded for it. The content of an infohash never changes, so the ETag is
strong (`"<infohash>-<N>"`). Ranges follow RFC 9110 like cache hits; several ranges are
answered with the whole file (200), which §14.2 allows, since interleaving them from the
swarm would cost more than it saves.
"""

from __future__ import annotations

import logging

from streme.cache.lookup import default_torrent_files
from streme.cache.mediatypes import content_type_for
from streme.config import P2PConfig
from streme.http.conditional import Precondition, evaluate_preconditions, if_range_allows_range
from streme.http.messages import Request, Response, StreamBody, error_response
from streme.http.ranges import RangeKind, evaluate_range, unsatisfied_content_range
from streme.torrent.engine import Engine
from streme.torrent.errors import CoolingDown, P2PError
from streme.torrent.stream import RangeReader

log = logging.getLogger("streme.p2p")

# The HTTP answer to each P2P failure code (`streme.torrent.errors`); others are 502.
STATUS_FOR_CODE = {
    "metadata_timeout": 504,
    "no_peers": 504,
    "stalled": 504,
    "cooldown": 503,
    "capacity": 503,
    "shutting_down": 503,
    "disk_full": 507,
}


async def stream_from_swarm(
    engine: Engine,
    config: P2PConfig,
    video_extensions: list[str],
    request: Request,
    infohash: str,
    file_index: int | None,
) -> Response:
    try:
        torrent = await engine.torrent(infohash)
    except CoolingDown as exc:
        retry = [(b"Retry-After", str(exc.retry_after).encode())]
        return error_response(STATUS_FOR_CODE[exc.code], exc.code, str(exc), retry)
    except P2PError as exc:
        log.warning("No P2P stream for %s: %s", infohash, exc)
        return error_response(STATUS_FOR_CODE.get(exc.code, 502), exc.code, str(exc))
    meta = torrent.meta
    assert meta is not None
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
    etag = f'"{infohash}-{file_index}"'
    headers = request.headers
    outcome = evaluate_preconditions(
        request.method,
        etag=etag,
        last_modified=0,
        if_match=headers.get("if-match"),
        if_none_match=headers.get("if-none-match"),
        if_modified_since=None,
        if_unmodified_since=None,
    )
    if outcome is Precondition.NOT_MODIFIED:
        return Response(304, [(b"ETag", etag.encode())])
    if outcome is Precondition.PRECONDITION_FAILED:
        return error_response(412, "precondition_failed", "a precondition header did not hold")
    range_header = headers.get("range")
    if range_header is not None and not if_range_allows_range(
        headers.get("if-range"), etag=etag, last_modified=0
    ):
        range_header = None
    decision = evaluate_range(range_header, size)
    out = [
        (b"Content-Type", content_type_for(name).encode("latin-1")),
        (b"Accept-Ranges", b"bytes"),
        (b"ETag", etag.encode()),
    ]
    if decision.kind is RangeKind.UNSATISFIABLE:
        return error_response(
            416,
            "range_not_satisfiable",
            f"no requested range overlaps the {size}-byte file",
            [(b"Content-Range", unsatisfied_content_range(size).encode())],
        )
    status, start, end = 200, 0, size - 1
    if decision.kind is RangeKind.PARTIAL and len(decision.ranges) == 1:
        only = decision.ranges[0]
        status, start, end = 206, only.start, only.end
        out.append((b"Content-Range", only.content_range(size).encode()))
    if size == 0:
        return Response(status, out, b"")
    # The reader marks the file wanted when the body is sent (never for a HEAD).
    reader = RangeReader(torrent, file_index, start, end, config, engine.new_reader_id())
    return Response(status, out, StreamBody(end - start + 1, reader.chunks, reader.close))
