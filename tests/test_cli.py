"""The `streme` command as users run it: help, config errors, serving, and SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from streme.cli import build_parser, cli_overrides, main
from streme.config import build_config
from tests.conftest import INFOHASH, write_video
from tests.served import serve, stop

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
        "--cache-max-size",
        "--cache-min-free",
    ):
        assert flag in out.stdout
    assert "STREME_" in out.stdout
    assert "TORRENT_DOWNLOAD_PATH" in out.stdout
    for name in (
        "CACHE_CLEANUP_INTERVAL",
        "STREME_CACHE_MAX_SIZE",
        "STREME_CACHE_MIN_FREE",
        "STREME_CACHE_CLEANUP_INTERVAL",
        "STREME_CACHE_INCOMPLETE_MAX_AGE",
        "STREME_CACHE_EVICT_HAND_PLACED",
        "STREME_P2P_IDLE_TIMEOUT",
    ):
        assert name in out.stdout
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


def test_bad_static_peer_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREME_P2P_STATIC_PEERS", "127.0.0.1:6881,nonsense")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "p2p.static_peers" in err
    assert "nonsense" in err


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--cache-max-size", "lots", "cache.max_size"),
        ("--cache-max-size", "-1GiB", "cache.max_size"),
        ("--cache-min-free", "150%", "cache.min_free"),
        ("--cache-min-free", "some", "cache.min_free"),
    ],
)
def test_bad_cache_flags_exit_2(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, field: str
) -> None:
    assert main(["serve", f"{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert field in err
    assert value in err


def test_cache_flags_set_the_settings() -> None:
    args = build_parser().parse_args(
        ["serve", "--cache-max-size", "50GiB", "--cache-min-free", "10%"]
    )
    env = {"STREME_CACHE_MAX_SIZE": "1G", "STREME_CACHE_MIN_FREE": "1G"}
    cache = build_config(environ=env, cli=cli_overrides(args)).cache
    assert cache.max_size == 50 * 1024**3  # flags beat the environment
    assert cache.min_free == "10%"
    args = build_parser().parse_args(["serve", "--cache-min-free", "500MiB"])
    assert build_config(environ={}, cli=cli_overrides(args)).cache.min_free == 500 * 1024**2


def test_serve_stream_and_sigterm(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    data = write_video(cache, f"{INFOHASH}-test.mp4", 2 * 1024 * 1024)
    served = serve(cache, {"STREME_P2P_ENABLED": "0"})
    try:
        url = f"{served.url}/stream/proxy/{INFOHASH}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "video/mp4"
            assert resp.read() == data
    finally:
        assert stop(served) == 0
    assert "Using cached file for " + INFOHASH + " - no P2P needed" in served.log()


def test_port_in_use_exits_1(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        out = run("serve", "--port", str(port), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 1
    assert "cannot listen" in out.stderr
