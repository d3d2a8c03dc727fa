"""The cache-lookup benchmark: a cache directory crowded with 100,000 other files.

`make_crowded_cache` fills a directory with empty `<random-40-hex>-x.mp4` files plus a
hard link to the bench file (same inode: no extra 64 MiB). `in_process_lookup_us` times
`streme.cache.index.CacheIndex.lookup` hits directly, without HTTP, in both of the
index's modes: with inotify watching (how `streme serve` runs it) and without (the
fallback that stats the directory per lookup).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path


def make_crowded_cache(root: Path, file: Path, count: int) -> None:
    root.mkdir()
    for _ in range(count):
        fd = os.open(root / f"{os.urandom(20).hex()}-x.mp4", os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
    os.link(file, root / file.name)


def in_process_lookup_us(root: Path, infohash: str, count: int) -> dict[str, float] | str:
    """Mean µs per `CacheIndex.lookup` hit (open/check and release included), per mode.

    Returns the reason instead when streme's cache index cannot be imported.
    """
    try:
        from streme.cache.index import CacheIndex
        from streme.cache.mediatypes import DEFAULT_VIDEO_EXTENSIONS
    except ImportError as exc:
        return f"streme.cache.index not importable ({exc})"
    results: dict[str, float] = {}
    loop = asyncio.new_event_loop()  # only to register the inotify fd; never run
    try:
        for mode, watch_loop in (("inotify", loop), ("no_watcher", None)):
            index = CacheIndex(root, video_extensions=DEFAULT_VIDEO_EXTENSIONS, min_size=1 << 20)
            index.start(watch_loop)
            try:
                started = time.perf_counter()
                for _ in range(count):
                    result = index.lookup(infohash)
                    if result.file is None:
                        return f"lookup did not hit: {result.status}"
                    result.file.close()
                results[mode] = (time.perf_counter() - started) / count * 1e6
            finally:
                index.close()
    finally:
        loop.close()
    return results
