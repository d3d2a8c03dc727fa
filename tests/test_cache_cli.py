"""`streme cache ls|rm|pin|unpin|prune` and `streme stats` as a user runs them: the
command as its own process, against a real server (in this process, P2P off) on
loopback (one started as `streme serve`, for the API token); its output, its exit
status, and no server at all."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from streme import apicommands
from streme.cli import build_parser
from tests.conftest import RunningServer, wait_until, write_video
from tests.served import serve, stop

STREME = [sys.executable, "-m", "streme"]
MiB = 1024 * 1024
A = "a" * 40
B = "b" * 40


def streme(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREME_")}
    return subprocess.run(
        [*STREME, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, **(env or {})},
    )


@pytest.fixture
def two_titles(make_server: Callable[..., RunningServer], cache_dir: Path) -> RunningServer:
    write_video(cache_dir, f"{A}.mp4", 2 * MiB)
    write_video(cache_dir, f"Movie [{B}].mkv", 3 * MiB, seed=3)
    server = make_server()
    assert wait_until(lambda: server.app.sweeper.last is not None)
    return server


def test_ls_table_and_json(two_titles: RunningServer) -> None:
    url = two_titles.base_url
    out = streme("cache", "ls", "--url", url, "--sort", "size")
    assert out.returncode == 0, out.stderr
    header, first, second, total = out.stdout.splitlines()
    assert header.split() == ["INFOHASH", "SIZE", "HITS", "LAST", "SERVED", "STATE", "NAME"]
    assert first.startswith(B)  # the larger one first
    assert f"Movie [{B}].mkv" in first
    assert second.startswith(A)
    assert "never" in second
    assert total.startswith("2 titles, ")

    out = streme("cache", "ls", "--url", url, "--json")
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout)
    assert page["total"] == 2
    assert {t["infohash"] for t in page["titles"]} == {A, B}
    assert page["next"] is None

    # The default address is the config's http.host and http.port.
    out = streme("cache", "ls", env={"STREME_HTTP_PORT": str(two_titles.port)})
    assert out.returncode == 0, out.stderr
    assert A in out.stdout


def test_ls_follows_every_page(
    two_titles: RunningServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(apicommands, "PAGE", 1)  # one title per request
    args = build_parser().parse_args(["cache", "ls", "--json", "--url", two_titles.base_url])
    assert apicommands.run(args) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(t["infohash"] for t in listed["titles"]) == [A, B]


def test_pin_unpin_rm_prune(two_titles: RunningServer, cache_dir: Path) -> None:
    url = two_titles.base_url
    out = streme("cache", "pin", A.upper(), "--url", url)
    assert (out.returncode, out.stdout.strip()) == (0, f"{A} pinned"), out.stderr
    listed = streme("cache", "ls", "--url", url).stdout
    assert next(line for line in listed.splitlines() if line.startswith(A)).count("pinned") == 1
    out = streme("cache", "unpin", A, "--url", url)
    assert (out.returncode, out.stdout.strip()) == (0, f"{A} unpinned"), out.stderr
    assert "pinned" not in streme("cache", "ls", "--url", url).stdout

    out = streme("cache", "prune", "--dry-run", "--url", url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("would evict 0 titles, 0 B")
    out = streme("cache", "prune", "--url", url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("evicted 0 titles")

    out = streme("cache", "rm", A, "--url", url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"removed {A}, ")
    assert not (cache_dir / f"{A}.mp4").exists()
    out = streme("cache", "rm", A, "--url", url)
    assert out.returncode == 1
    assert out.stderr.strip() == f"streme: {A} is not in the cache (HTTP 404 not_cached)"
    out = streme("cache", "rm", "xyz", "--url", url)
    assert out.returncode == 2
    assert "40 hex digits" in out.stderr


def test_rm_in_use_needs_force(make_server: Callable[..., RunningServer], cache_dir: Path) -> None:
    write_video(cache_dir, f"{A}.mp4", 32 * MiB)
    server = make_server()
    # A client that reads nothing: its response stays in flight, the title in use.
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(f"GET /stream/proxy/{A} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert wait_until(lambda: A in server.call(lambda: dict(server.app.handlers.serving)))
        out = streme("cache", "rm", A, "--url", server.base_url)
        assert out.returncode == 1
        assert "is in use" in out.stderr
        assert "(HTTP 409 in_use) (--force deletes it anyway)" in out.stderr
        assert (cache_dir / f"{A}.mp4").exists()
        out = streme("cache", "rm", A, "--force", "--url", server.base_url)
        assert out.returncode == 0, out.stderr
        assert "(forced: it was in use)" in out.stdout


def test_stats(two_titles: RunningServer) -> None:
    url = two_titles.base_url
    out = streme("stats", "--url", url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("streme ")
    assert f"at {url}" in lines[0]
    assert any(line.startswith("cache: ") and "in 2 titles" in line for line in lines)
    out = streme("stats", "--json", "--url", url)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["cache"]["titles"] == 2
    assert "requests" in stats


def test_no_server_answers() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    for args in (["cache", "ls"], ["cache", "pin", A], ["stats"]):
        out = streme(*args, "--url", url)
        assert out.returncode == 1
        assert out.stdout == ""
        assert out.stderr.strip() == (
            f"streme: no streme server answers at {url}: connection refused; "
            "start one with `streme serve` or pass --url"
        )


def test_not_the_api(make_server: Callable[..., RunningServer]) -> None:
    """A URL that answers, but not with the API's JSON, says so (exit 1)."""
    server = make_server()
    out = streme("stats", "--url", server.base_url + "/stream/proxy/" + A)
    assert out.returncode == 1
    assert "HTTP 404" in out.stderr


def test_help_documents_every_flag() -> None:
    top = streme("--help")
    for command in ("serve", "fetch", "cache", "stats", "pin", "unpin"):
        assert command in top.stdout
    cache = streme("cache", "--help").stdout
    for action in ("ls", "rm", "pin", "unpin", "prune"):
        assert action in cache
    flags = {
        ("cache", "ls"): ["--json", "--sort", "--url", "--config", "--timeout"],
        ("cache", "rm"): ["--force", "--url"],
        ("cache", "pin"): ["--url"],
        ("cache", "unpin"): ["--url"],
        ("cache", "prune"): ["--dry-run", "--url"],
        ("stats",): ["--json", "--url", "--config", "--timeout"],
    }
    for command, expected in flags.items():
        out = streme(*command, "--help")
        assert out.returncode == 0
        for flag in expected:
            assert flag in out.stdout, (command, flag)
        assert "STREME_API_TOKEN" in out.stdout
    bare = streme("cache")
    assert bare.returncode == 2


def test_token_from_the_environment(tmp_path: Path) -> None:
    """With api.token set on the server, the command sends STREME_API_TOKEN as a Bearer
    token; without it the API's 401 is shown, with where the token comes from."""
    cache = tmp_path / "cache"
    cache.mkdir()
    write_video(cache, f"{A}.mp4", 2 * MiB)
    served = serve(cache, {"STREME_P2P_ENABLED": "0", "STREME_API_TOKEN": "s3cret"})
    try:
        out = streme("cache", "ls", "--url", served.url)
        assert out.returncode == 1
        assert "(HTTP 401 unauthorized)" in out.stderr
        assert "STREME_API_TOKEN" in out.stderr
        out = streme("cache", "ls", "--url", served.url, env={"STREME_API_TOKEN": "s3cret"})
        assert out.returncode == 0, out.stderr
        assert A in out.stdout
    finally:
        assert stop(served) == 0
