"""Nothing may depend on the seeder being libtorrent: stream from aria2 on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.nginx import free_port
from tests.torrent.swarm import make_seeder, p2p_settings, random_bytes, sha256
from tests.torrent.test_p2p_stream import fetch

ARIA2C = shutil.which("aria2c")
pytestmark = pytest.mark.skipif(
    ARIA2C is None, reason="aria2 not installed (make test installs it)"
)
SIZE = 4 * 1024 * 1024 + 5


@pytest.fixture
def aria2_seed(tmp_path: Path) -> Iterator[tuple[str, int, bytes]]:
    assert ARIA2C is not None
    data = random_bytes(SIZE, 9)
    made = make_seeder(tmp_path / "seed", {"movie.mp4": data})  # only to make the .torrent
    made.stop()
    torrent = tmp_path / "movie.torrent"
    torrent.write_bytes(made.torrent)
    port = free_port()
    proc = subprocess.Popen(
        [
            ARIA2C,
            "--seed-ratio=0.0",
            "--seed-time=600",
            "--check-integrity=true",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            f"--listen-port={port}",
            "--interface=127.0.0.1",
            "--quiet=true",
            f"--dir={tmp_path / 'seed'}",
            str(torrent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        yield made.infohash, port, data
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_stream_from_aria2_seeder(
    make_server: Callable[..., RunningServer], aria2_seed: tuple[str, int, bytes]
) -> None:
    infohash, port, data = aria2_seed
    server = make_server(p2p=p2p_settings(f"127.0.0.1:{port}"))
    status, _, body = fetch(server, f"/stream/proxy/{infohash}")
    assert status == 200
    assert sha256(body) == sha256(data)
    start = SIZE // 2 + 3
    status, _, body = fetch(server, f"/stream/proxy/{infohash}", {"Range": f"bytes={start}-"})
    assert status == 206
    assert sha256(body) == sha256(data[start:])
