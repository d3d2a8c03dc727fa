"""A slow filesystem stalls only the requests that need it, never the event loop.

The server runs as its own process; `strace` attaches to it and delays every `openat`
of one cached file by 3 s (`-e inject=openat:delay_enter=...`), as a sleeping disk or a
stuck NFS server would. While a request for that file waits, other connections get
answered: a title whose descriptor is already open, a title opened for the first time,
and `/health`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import INFOHASH, write_video
from tests.served import serve, stop

SLOW = INFOHASH
WARM = "1" * 40
COLD = "2" * 40
DELAY_S = 3.0

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")


def fetch(url: str) -> tuple[bytes, float]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read()
    return body, time.monotonic() - started


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    cache = tmp_path / "cache"
    cache.mkdir()
    served = serve(cache, {"STREME_P2P_ENABLED": "0"})  # cache hits only: no swarm here
    try:
        yield served.url, served.proc.pid, cache
    finally:
        stop(served)


def test_a_slow_open_delays_only_its_own_request(server: tuple[str, int, Path]) -> None:
    url, pid, cache = server
    slow_data = write_video(cache, f"{SLOW}-slow.mp4", 2 * 1024 * 1024, seed=1)
    warm_data = write_video(cache, f"{WARM}-warm.mp4", 2 * 1024 * 1024, seed=2)
    cold_data = write_video(cache, f"{COLD}-cold.mp4", 2 * 1024 * 1024, seed=3)
    time.sleep(0.3)  # inotify tells the index of the new names
    assert fetch(f"{url}/stream/proxy/{WARM}")[0] == warm_data  # its descriptor stays open

    strace = subprocess.Popen(
        [
            "strace",
            "-f",
            "-p",
            str(pid),
            "-e",
            "trace=openat",
            "-e",
            f"inject=openat:delay_enter={int(DELAY_S * 1_000_000)}",
            "-P",
            str(cache / f"{SLOW}-slow.mp4"),
            "-o",
            os.devnull,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert strace.stderr is not None
        attached = strace.stderr.readline()
        assert "attached" in attached, attached
        time.sleep(0.5)  # every thread of the server is traced

        slow: dict[str, object] = {}

        def fetch_slow() -> None:
            slow["body"], slow["elapsed"] = fetch(f"{url}/stream/proxy/{SLOW}")

        waiting = threading.Thread(target=fetch_slow)
        waiting.start()
        time.sleep(0.3)  # the slow request is in, its open held by strace

        body, warm_s = fetch(f"{url}/stream/proxy/{WARM}")
        assert body == warm_data
        body, cold_s = fetch(f"{url}/stream/proxy/{COLD}")
        assert body == cold_data
        body, health_s = fetch(f"{url}/health")
        assert body == b'{"status":"ok"}'
        waiting.join(timeout=30)

        assert slow["body"] == slow_data
        # The delay was in effect (so the others really overlapped it) ...
        assert isinstance(slow["elapsed"], float)
        assert slow["elapsed"] >= DELAY_S - 0.5
        # ... and did not hold them: each answered well inside it.
        assert max(warm_s, cold_s, health_s) < 1.0, (warm_s, cold_s, health_s)
    finally:
        strace.terminate()
        strace.wait(timeout=10)
        if strace.stderr is not None:
            strace.stderr.close()
