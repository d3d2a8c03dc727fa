"""The cache-lookup benchmark: a cache directory crowded with 100,000 other files."""

from __future__ import annotations

import os
import time
from pathlib import Path

from streme.cache.index import CacheIndex
from streme.cache.mediatypes import DEFAULT_VIDEO_EXTENSIONS


def make_crowded_cache(root: Path, file: Path, infohash: str, count: int) -> None:
    """`count` empty files named with other infohashes, plus a hard link to the bench file."""
    root.mkdir()
    for i in range(count):
        fd = os.open(root / f"{i:040x}-other.mp4", os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
    os.link(file, root / f"{infohash}-bench.mp4")


def in_process_lookup_us(root: Path, infohash: str, count: int) -> float:
    """Mean microseconds per `CacheIndex.lookup` hit, including open, checks and close."""
    index = CacheIndex(root, video_extensions=DEFAULT_VIDEO_EXTENSIONS, min_size=1024 * 1024)
    index.start()
    try:
        started = time.perf_counter()
        for _ in range(count):
            result = index.lookup(infohash)
            assert result.file is not None
            result.file.close()
        return (time.perf_counter() - started) / count * 1e6
    finally:
        index.close()
