"""Large blocks go back to the operating system when they are freed.

How this works: a swarm stream holds its pieces (256 KiB to a few MiB each) in Python
`bytes`, and libtorrent reads each into a buffer of its own first. glibc's malloc serves
such blocks with mmap, but raises that threshold to the size of the largest block freed
(up to 32 MiB): after the first piece is freed, pieces come from malloc's heaps, which
fragment and never shrink while anything above stays in use. Fixing the threshold at
glibc's own starting value keeps piece-sized blocks in mmap: freed, they are returned.

Measured (50 readers that read nothing, 4 MiB buffer each, an unlimited loopback seeder,
`python -m perf.p2p`): RSS grew 289 MiB with the dynamic threshold, 199 MiB with it fixed;
the 200 MiB of buffers is the floor. See docs/decisions/0005-cache-miss-on-defaults.md.
Elsewhere than glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("streme")

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default start; fixing it stops the raising


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold (see the module doc). True if glibc took it."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    taken = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    if not taken:
        log.debug("mallopt(M_MMAP_THRESHOLD) was refused; freed pieces may stay resident")
    return taken
