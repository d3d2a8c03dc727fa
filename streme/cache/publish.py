"""Publishing a finished download into the cache: the on-disk layout of a downloaded title.

How this works: libtorrent downloads `<infohash>` into `<cache>/.incomplete/<infohash>/`,
which the cache index never serves. When files are complete and flushed, `publish`
writes the metadata as `<cache>/<infohash>.torrent` (through a temporary name and a
rename) and hard-links each finished file into `<cache>/<infohash>/<its path>` under a
temporary dot-name, renamed into place: a reader of the cache sees the whole file or
nothing, and the next request for it is a cache hit with no P2P. A marker
(`.streme/downloaded/<infohash>`) says streme downloaded the title, so it may be evicted
even if the usage records are lost. Linking, not moving:
libtorrent keeps its storage under readers that are still streaming it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from streme.cache.usage import mark_downloaded

log = logging.getLogger("streme.cache")


def incomplete_root(cache_root: str) -> str:
    return os.path.join(cache_root, ".incomplete")


def download_pending(cache_root: str, infohash: str) -> bool:
    """A download of the torrent stopped before every wanted file was published: its
    resume data (`.incomplete/<infohash>.resume`) is there. Blocking (a stat)."""
    return os.path.exists(os.path.join(incomplete_root(cache_root), f"{infohash}.resume"))


def download_dir(cache_root: str, infohash: str) -> str:
    """Where libtorrent keeps the torrent's files while they download."""
    return os.path.join(incomplete_root(cache_root), infohash)


def publish(
    cache_root: str, infohash: str, info_section: bytes, files: Iterable[tuple[int, str]]
) -> list[int]:
    """Link the finished `files` (index, path relative to the download directory) into
    the cache; return the indices now published (a file that fails is logged, skipped)."""
    final = os.path.join(cache_root, f"{infohash}.torrent")
    try:
        mark_downloaded(cache_root, infohash)  # the sweep may evict it; hand-placed stays
        if not os.path.exists(final):
            tmp = os.path.join(incomplete_root(cache_root), f".{infohash}.{time.time_ns()}")
            with open(tmp, "wb") as f:
                f.write(b"d4:info" + info_section + b"e")
            os.replace(tmp, final)
    except OSError as exc:  # a full disk: publish nothing now, the files stay downloaded
        log.error("could not publish %s: %s", infohash, exc)
        return []
    source_root = download_dir(cache_root, infohash)
    target_root = os.path.join(cache_root, infohash)
    published: list[int] = []
    for index, rel in files:
        src = os.path.join(source_root, rel)
        dst = os.path.join(target_root, rel)
        tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.{time.time_ns()}")
        try:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.link(src, tmp)
            os.replace(tmp, dst)
        except OSError as exc:
            log.error("could not save %s to the cache: %s", dst, exc)
            continue
        published.append(index)
        log.info("Saved %s to the cache for future use: %s", infohash, dst)
    return published
