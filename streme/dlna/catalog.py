"""The cache's titles for the media server, read the way `/playlist.m3u` reads them
(the usage records, each described by the operator API's cache object) and turned into a
`content.Library`. One listing serves the Browse requests of the next `LISTING_TTL`
seconds (a TV pages through the root with several requests); `update_id` (the
ContentDirectory's SystemUpdateID) goes up whenever the listing differs from the last."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from streme.api.cache_api import CacheAPI
from streme.api.views import CacheEntry
from streme.dlna.content import Library, build_library

LISTING_TTL = 2.0


async def cache_entries(cache: CacheAPI) -> list[CacheEntry]:
    """Every title in the records, described (files, complete) by the cache API."""
    await cache.parts.recorder.flush()
    records = await cache.parts.recorder.run(lambda store: store.titles())
    return await cache.describe_many(list(records.values()))


class Catalog:
    def __init__(
        self,
        cache: CacheAPI,
        *,
        name: str,
        base_url: str,
        stream_token: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.name = name
        self.base_url = base_url
        self.stream_token = stream_token
        self.clock = clock
        self.update_id = 1
        self._library: Library | None = None
        self._listed_at = 0.0
        self._lock = asyncio.Lock()

    async def library(self) -> Library:
        async with self._lock:  # concurrent requests share one listing
            if self._library is not None and self.clock() - self._listed_at < LISTING_TTL:
                return self._library
            library = build_library(
                self.name,
                await cache_entries(self.cache),
                base_url=self.base_url,
                stream_token=self.stream_token,
                video_extensions=self.cache.parts.config.cache.video_extensions,
            )
            if self._library is not None and library.titles != self._library.titles:
                self.update_id += 1
            self._library, self._listed_at = library, self.clock()
            return library
