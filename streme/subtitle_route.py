"""`GET /subtitles/{infohash}/{n}.vtt`: a title's subtitle file as WebVTT, for `<track>`.

How this works: `n` names the subtitle the API lists (`FileView.vtt`). For a torrent (its
`.torrent` in the cache, else the swarm's metadata) `n` is the `.srt`/`.vtt` file's index
in the torrent; its bytes come from the cache, else from the swarm (a small file: read
whole, like a stream of it). For a hand-placed video without a `.torrent`, the subtitles
are the files beside it named like it (`Movie.mkv` -> `Movie.srt`, `Movie.en.vtt`),
numbered in name order. The bytes are converted in memory (subtitles.py) and answered
like a page: ETag, conditional requests, ranges. Open like the stream route
(`http.stream_token` applies); CORS as on streams.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from streme.cache.index import CacheIndex, LookupStatus
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.cache.torrentmeta import TorrentMeta
from streme.handlers import STREAM_TOKEN_MISSING, lacks_stream_token
from streme.http.conditional import make_etag
from streme.http.fileresponse import bytes_response
from streme.http.messages import HAND_OFF, Answer, Request, Response, error_response
from streme.http.representation import Header
from streme.p2perrors import p2p_error_response
from streme.subtitles import VTT_TYPE, is_subtitle, to_webvtt
from streme.torrent.errors import P2PError

if TYPE_CHECKING:  # not at run time: it would load libtorrent into a cache-only server
    from streme.p2phandler import SwarmFiles

# A subtitle larger than this is not one (a film's are ~100 KiB).
MAX_SUBTITLE_BYTES = 8 * 1024 * 1024
SUFFIX = ".vtt"


def subtitles_by_stem(listing: list[str]) -> dict[str, list[str]]:
    """A folder's subtitle files by each video stem they may belong to: `Film.en.srt`
    under `Film` and `Film.en`."""
    by_stem: dict[str, list[str]] = {}
    for name in listing:
        if is_subtitle(name):
            parts = os.path.splitext(name)[0].split(".")
            for end in range(1, len(parts) + 1):
                by_stem.setdefault(".".join(parts[:end]), []).append(name)
    return by_stem


def sidecars(video_path: str, by_stem: dict[str, list[str]] | None = None) -> list[str]:
    """The subtitle files beside a video, named like it (`<stem>.srt`, `<stem>.en.vtt`),
    in name order. `by_stem`: the folder's `subtitles_by_stem`, when the caller has it."""
    folder, name = os.path.split(video_path)
    if by_stem is None:
        try:
            by_stem = subtitles_by_stem(os.listdir(folder))
        except OSError:
            return []
    stem = os.path.splitext(name)[0]
    return [os.path.join(folder, n) for n in sorted(by_stem.get(stem, ()))]


def torrent_subtitles(meta: TorrentMeta) -> list[int]:
    """The indexes of the torrent's subtitle files."""
    return [f.index for f in meta.files if is_subtitle(f.path[-1] if f.path else meta.name)]


class SubtitleError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class SubtitleRoute:
    def __init__(
        self,
        index: CacheIndex,
        *,
        swarm: SwarmFiles | None,
        hand_off: bool,
        stream_token: str,
        cors_origin: str,
    ) -> None:
        self.index = index
        self.swarm = swarm  # None: P2P off, or a worker process (`hand_off`)
        self.hand_off = hand_off
        self.stream_token = stream_token
        self._extra: list[Header] = [(b"Cache-Control", b"no-cache")]
        if cors_origin:
            self._extra.append((b"Access-Control-Allow-Origin", cors_origin.encode()))

    def _error(self, status: int, code: str, message: str) -> Response:
        return error_response(status, code, message, self._extra[1:])

    async def serve(self, request: Request, params: dict[str, str]) -> Answer:
        if lacks_stream_token(request, self.stream_token):
            return self._error(401, "stream_token", STREAM_TOKEN_MISSING)
        try:
            infohash = parse_infohash(params["infohash"])
        except InvalidInfohash as exc:
            return self._error(400, "invalid_infohash", str(exc))
        name = params["name"]
        number = name.removesuffix(SUFFIX)
        if not name.endswith(SUFFIX) or not number.isascii() or not number.isdigit():
            return self._error(404, "not_found", f"no route for {request.path}")
        try:
            found = await self._find(infohash, int(number))
        except SubtitleError as exc:
            return self._error(exc.status, exc.code, str(exc))
        except P2PError as exc:
            return p2p_error_response(exc)
        if found is None:
            return HAND_OFF
        data, file_name, etag = found
        # Off the loop: a film's SRT (~150 KiB) takes ~20 ms to convert.
        converted = await asyncio.to_thread(to_webvtt, data, file_name)
        return bytes_response(request, converted, VTT_TYPE, etag, self._extra)

    async def _find(self, infohash: str, n: int) -> tuple[bytes, str, str] | None:
        """(bytes, file name, ETag) of subtitle `n`; None: ask the engine's process."""
        index = self.index
        meta = await index.metadata_async(infohash)
        if meta is not None:
            return await self._torrent_file(infohash, meta, n)
        result = await index.lookup_async(infohash)
        if result.file is not None:  # hand-placed: the files beside the video
            result.file.release()
            beside = await asyncio.to_thread(sidecars, result.file.path)
            if n >= len(beside):
                raise SubtitleError(
                    404, "subtitle_not_found", f"{infohash} has {len(beside)} subtitle file(s)"
                )
            return await asyncio.to_thread(_read_sidecar, beside[n])
        if self.swarm is not None:
            return await self._torrent_file(infohash, await self.swarm.metadata(infohash), n)
        if self.hand_off:
            return None
        raise SubtitleError(404, "not_cached", f"{infohash} is not in the cache and P2P is off")

    async def _torrent_file(
        self, infohash: str, meta: TorrentMeta, n: int
    ) -> tuple[bytes, str, str] | None:
        if n not in torrent_subtitles(meta):
            raise SubtitleError(
                404, "subtitle_not_found", f"file {n} of {infohash} is not a subtitle file"
            )
        file = meta.files[n]
        if file.length > MAX_SUBTITLE_BYTES:
            raise SubtitleError(
                422, "subtitle_too_large", f"file {n} is {file.length} bytes: not a subtitle"
            )
        name = file.path[-1] if file.path else meta.name
        etag = f'"{infohash}-{n}-vtt1"'  # a torrent's file never changes (1: the converter)
        result = await self.index.lookup_async(infohash, n)
        if result.status is LookupStatus.HIT and result.file is not None:
            cached = result.file
            try:
                data = await asyncio.to_thread(os.pread, cached.fd, cached.size, 0)
            finally:
                cached.release()
            return data, name, etag
        if result.file is not None:
            result.file.release()
        if self.swarm is not None:
            return await self.swarm.read(infohash, n, file.length), name, etag
        if self.hand_off:
            return None
        raise SubtitleError(404, "not_cached", f"file {n} of {infohash} is not in the cache")


def _read_sidecar(path: str) -> tuple[bytes, str, str]:
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_size > MAX_SUBTITLE_BYTES:
            raise SubtitleError(
                422, "subtitle_too_large", f"{os.path.basename(path)} is not a subtitle file"
            )
        data = f.read()
    etag = make_etag(st.st_mtime_ns, st.st_size)[:-1] + '-vtt1"'
    return data, os.path.basename(path), etag
