"""Freed piece-sized blocks go back to the OS (streme.memory), in a fresh interpreter each:
with glibc's dynamic mmap threshold they stay resident, fragmented by small blocks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streme.memory import return_large_blocks

PROGRAM = """
import sys
from streme.memory import return_large_blocks
if sys.argv[1] == "fixed":
    assert return_large_blocks()
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
warm = bytes(1 << 20)  # a first big block freed: the dynamic threshold rises to it
del warm
pieces, small = [], []
for i in range(200):  # 50 MiB of 256 KiB pieces, each followed by a small heap block
    pieces.append(bytes([i % 256]) * 262144)
    small.append(bytes(2000) + bytes([i % 256]))
held = rss_kib()
del pieces
print((held - rss_kib()) // 1024)  # MiB given back
"""


def given_back_mib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_pieces_leave_the_resident_set() -> None:
    assert return_large_blocks()  # glibc here
    assert given_back_mib("fixed") >= 45
    assert given_back_mib("dynamic") < 10  # what the fix is for
