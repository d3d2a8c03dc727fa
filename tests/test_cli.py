"""The `streme` command as users run it: help, config errors, serving, and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import INFOHASH, write_video

STREME = [sys.executable, "-m", "streme"]
# These servers only serve the cache: P2P off, so no DHT or other traffic leaves loopback.
CACHE_ONLY = {**os.environ, "STREME_P2P_ENABLED": "0"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREME, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**CACHE_ONLY, **(env or {})},
    )


def test_help_documents_every_flag() -> None:
    out = run("serve", "--help")
    assert out.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--cache-dir",
        "--config",
        "--log-level",
        "--access-log",
        "--no-zero-copy",
    ):
        assert flag in out.stdout
    assert "STREME_" in out.stdout
    assert "TORRENT_DOWNLOAD_PATH" in out.stdout
    top = run("--help")
    assert top.returncode == 0
    assert "serve" in top.stdout


def test_bad_values_exit_2_and_name_the_field(tmp_path: Path) -> None:
    out = run("serve", "--port", "99999")
    assert out.returncode == 2
    assert "http.port" in out.stderr
    out = run("serve", env={"CACHE_CLEANUP_INTERVAL": "soon"})
    assert out.returncode == 2
    assert "cache.cleanup_interval" in out.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[cache]\nmin_size = -1\n")
    out = run("serve", "--config", str(bad))
    assert out.returncode == 2
    assert "cache.min_size" in out.stderr


def test_serve_stream_and_sigterm(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    data = write_video(cache, f"{INFOHASH}-test.mp4", 2 * 1024 * 1024)
    proc = subprocess.Popen(
        [*STREME, "serve", "--port", "0", "--cache-dir", str(cache)],
        env=CACHE_ONLY,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 20
        lines = []
        while time.monotonic() < deadline and url is None:
            line = proc.stderr.readline()
            lines.append(line)
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
        assert url is not None, lines
        with urllib.request.urlopen(f"{url}/stream/proxy/{INFOHASH}", timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "video/mp4"
            assert resp.read() == data
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        rest = proc.stderr.read()
        assert "Using cached file for " + INFOHASH + " - no P2P needed" in "".join(lines) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_port_in_use_exits_1(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = run("serve", "--port", str(port), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 1
    assert "cannot listen" in out.stderr
