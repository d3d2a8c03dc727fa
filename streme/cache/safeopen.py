"""Open a file only if it really lies inside the cache directory.

How this works: the path is opened first (read-only, close-on-exec, non-blocking so a
FIFO cannot hang the server), then the *opened* file's real path is read back from
`/proc/self/fd` and must be under the cache root's real path. Symlinks may point within
the cache, never out of it, and there is no window between a check and the open for a
name to be swapped.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("streme.cache")

OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK


def open_inside(real_root: str, path: str) -> tuple[int, os.stat_result] | None:
    """An open descriptor of `path` and its `fstat`, or None (nothing left open) when it
    cannot be opened or leads outside `real_root` (the cache root's realpath)."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError:
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not (real.startswith(real_root) and real[len(real_root) : len(real_root) + 1] == "/"):
        log.warning("refusing %s: it leads outside the cache directory (%s)", path, real)
        os.close(fd)
        return None
    return fd, st
