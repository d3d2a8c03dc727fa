"""M3U playlists for players: `GET /playlist/{infohash}.m3u` (every video file of one
title) and `GET /playlist.m3u` (every title in the cache).

How this works: a title's files are the ones `/api/cache` lists (its `.torrent`'s files,
or the file the cache index serves for a hand-placed title), videos only, each as
`#EXTINF:-1,<name>` and an absolute stream URL built from the request's `Host` (so VLC,
mpv, ffmpeg or a TV can open the list wherever it was fetched from). With
`http.stream_token` set, each URL carries the token the playlist was asked with. Like the
stream route, playlists are open to players (no API token).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from streme.api.cache_api import CacheAPI
from streme.api.views import FileView
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.cache.lookup import is_video
from streme.handlers import STREAM_TOKEN_MISSING, lacks_stream_token
from streme.http.messages import Request, Response, error_response

M3U_TYPE = b"audio/x-mpegurl"
SUFFIX = ".m3u"
# A Host header that can go into a URL as it is: a name or IPv4 address, or [IPv6], and
# an optional port.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def m3u(entries: list[tuple[str, str]]) -> bytes:
    """The playlist of (name, url) entries."""
    lines = ["#EXTM3U"]
    for name, url in entries:
        title = " ".join(name.split())  # one line, whatever the file was called
        lines += [f"#EXTINF:-1,{title}", url]
    return ("\n".join(lines) + "\n").encode()


class Playlists:
    def __init__(self, cache: CacheAPI, video_extensions: list[str], stream_token: str) -> None:
        self.cache = cache
        self.exts = tuple(video_extensions)
        self.stream_token = stream_token

    def _refused(self, request: Request) -> Response | None:
        if lacks_stream_token(request, self.stream_token):
            return error_response(401, "stream_token", STREAM_TOKEN_MISSING)
        host = request.headers.get("host", "")
        if not _HOST.match(host):
            return error_response(
                400, "bad_host", "a playlist needs a Host header like tv.lan:7000"
            )
        return None

    def _entries(self, request: Request, files: list[FileView]) -> list[tuple[str, str]]:
        base = f"http://{request.headers['host']}"
        token = f"token={quote(self.stream_token)}" if self.stream_token else ""
        entries = []
        for file in files:
            if not is_video(file.path, self.exts):
                continue
            url = base + file.url
            if token:
                url += ("&" if "?" in url else "?") + token
            entries.append((file.path.rsplit("/", 1)[-1], url))
        return entries

    async def title(self, request: Request, params: dict[str, str]) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        name = params["name"]
        if not name.endswith(SUFFIX):
            return error_response(404, "not_found", f"no route for {request.path}")
        try:
            infohash = parse_infohash(name.removesuffix(SUFFIX))
        except InvalidInfohash as exc:
            return error_response(400, "invalid_infohash", str(exc))
        record = await self.cache.record(infohash)
        if record is None:
            return error_response(404, "not_cached", f"{infohash} is not in the cache")
        entry = await self.cache.describe(record)
        return playlist_response(self._entries(request, entry.files))

    async def everything(self, request: Request, params: dict[str, str]) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        await self.cache.parts.recorder.flush()
        records = await self.cache.parts.recorder.run(lambda store: store.titles())
        entries: list[tuple[str, str]] = []
        ordered = sorted(records.values(), key=lambda r: (r.name.lower(), r.infohash))
        for entry in await self.cache.describe_many(ordered):
            if entry.complete:
                entries += self._entries(request, entry.files)
        return playlist_response(entries)


def playlist_response(entries: list[tuple[str, str]]) -> Response:
    return Response(200, [(b"Content-Type", M3U_TYPE)], m3u(entries))
