"""`streme serve --workers 2`: two processes on one port, the first owning the swarm.

Each test runs the real command. A connection's process is read from `/health`
(`"worker": N`), so a test can pick a connection the kernel gave to the worker and send
its next request there.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import INFOHASH, write_video
from tests.served import Served, connection_on, serve, stop

CACHE_ONLY = {"STREME_P2P_ENABLED": "0"}


def start(cache: Path, env: dict[str, str], *args: str) -> Served:
    return serve(cache, env, "--workers", "2", *args)


def worker_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def get(conn: http.client.HTTPConnection, path: str, **headers: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def as_env(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    path = tmp_path / "cache"
    path.mkdir()
    return path


def test_both_processes_serve_cache_hits_then_stop_on_sigterm(cache: Path) -> None:
    data = write_video(cache, f"{INFOHASH}-movie.mp4", 3 * 1024 * 1024, seed=4)
    served = start(cache, CACHE_ONLY, "--access-log")
    try:
        (worker_pid,) = worker_pids(served.proc.pid)
        for number in (0, 1):
            conn = connection_on(served.port, number)
            status, body = get(conn, f"/stream/proxy/{INFOHASH}")
            assert (status, sha(body)) == (200, sha(data))
            status, body = get(conn, f"/stream/proxy/{INFOHASH}", Range="bytes=1000-2999")
            assert (status, body) == (206, data[1000:3000])
            conn.close()
    finally:
        assert stop(served) == 0
    assert not alive(worker_pid)
    log = served.log()
    assert re.search(r"\[w0\] INFO streme\.access: .* 206 2000", log), log
    assert re.search(r"\[w1\] INFO streme\.access: .* 206 2000", log), log


def test_a_crashed_worker_is_started_again(cache: Path) -> None:
    data = write_video(cache, f"{INFOHASH}-movie.mp4", 2 * 1024 * 1024, seed=5)
    served = start(cache, CACHE_ONLY)
    try:
        (first,) = worker_pids(served.proc.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 15
        again: list[int] = []
        while time.monotonic() < deadline:
            again = [pid for pid in worker_pids(served.proc.pid) if pid != first]
            if again:
                break
            time.sleep(0.05)
        assert again, served.log()
        conn = connection_on(served.port, 1)  # the new worker has the port again
        assert get(conn, f"/stream/proxy/{INFOHASH}") == (200, data)
        conn.close()
    finally:
        assert stop(served) == 0
    assert f"worker 1 (pid {first}) exited with status -9" in served.log()


def test_a_worker_sends_a_miss_with_its_connection_to_the_engine(
    cache: Path, tmp_path: Path, tracker: object
) -> None:
    from tests.torrent.swarm import make_seeder, p2p_settings, random_bytes

    source = random_bytes(4 * 1024 * 1024, 7)
    seeder = make_seeder(tmp_path / "seed", {"movie.mp4": source}, tracker=tracker)  # type: ignore[arg-type]
    env = {
        f"STREME_P2P_{name.upper()}": (
            ",".join(value)
            if isinstance(value, list)
            else str(int(value) if isinstance(value, bool) else value)
        )
        for name, value in p2p_settings(tracker).items()  # type: ignore[arg-type]
    }
    served = start(cache, env, "--access-log")
    try:
        conn = connection_on(served.port, 1)
        status, body = get(conn, f"/stream/proxy/{seeder.infohash}")
        assert status == 200
        assert sha(body) == sha(source)
        # The connection now belongs to the engine's process.
        assert json.loads(get(conn, "/health")[1])["worker"] == 0
        conn.close()
    finally:
        assert stop(served) == 0
        seeder.stop()
    log = served.log()
    assert re.search(
        rf"\[w1\] .* \"GET /stream/proxy/{seeder.infohash}\" handed to the engine", log
    )
    assert re.search(rf"\[w0\] .* \"GET /stream/proxy/{seeder.infohash}\" 200 {len(source)} ", log)


def test_stats_and_metrics_cover_every_process(cache: Path) -> None:
    write_video(cache, f"{INFOHASH}-movie.mp4", 1024 * 1024, seed=5)
    served = start(cache, CACHE_ONLY)
    try:
        hits = {0: 2, 1: 3}
        for number, count in hits.items():
            conn = connection_on(served.port, number)
            for _ in range(count):
                assert get(conn, f"/stream/proxy/{INFOHASH}")[0] == 200
            conn.close()
        # Asked on the worker's connection: handed to the first process, which sums
        # its own counters and the worker's latest report (sent every second).
        conn = connection_on(served.port, 1)
        deadline = time.monotonic() + 5
        while True:
            status, body = get(conn, "/api/stats")
            stats = json.loads(body)
            if stats["requests"]["hit"] == 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200
        assert stats["processes"] == 2
        assert stats["requests"]["hit"] == 5
        assert stats["bytes_served"]["cache"] == 5 * 1024 * 1024
        status, text = get(conn, "/metrics")
        assert status == 200
        line = 'streme_requests_total{outcome="hit",reason="",route="stream"} 5.0'
        assert line in text.decode().splitlines()
        conn.close()
    finally:
        stop(served)


def test_a_worker_hands_over_the_player_routes(
    cache: Path, tmp_path: Path, tracker: object
) -> None:
    """Stremio's create (with its JSON body), a file by name and a subtitle from the swarm,
    each asked on a worker's connection, answered by the engine's process."""
    from tests.torrent.swarm import make_seeder, p2p_settings, random_bytes

    movie, srt = random_bytes(2 * 1024 * 1024, 8), b"1\r\n00:00:01,000 --> 00:00:02,000\r\nHi\r\n"
    files = {"Film/Film.mp4": movie, "Film/Film.srt": srt}
    seeder = make_seeder(tmp_path / "seed", files, tracker=tracker)  # type: ignore[arg-type]
    env = {f"STREME_P2P_{k.upper()}": as_env(v) for k, v in p2p_settings(tracker).items()}  # type: ignore[arg-type]
    served = start(cache, env)
    ih = seeder.infohash
    try:
        conn = connection_on(served.port, 1)
        body = json.dumps({"guessFileIdx": {}}).encode()
        conn.request("POST", f"/{ih}/create", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        created = json.loads(response.read())
        assert response.status == 200, created
        names = [f["name"] for f in created["files"]]
        assert names[created["guessedFileIdx"]] == "Film.mp4"
        conn.close()
        conn = connection_on(served.port, 1)
        status, got = get(conn, f"/{ih}/Film.mp4")
        assert (status, sha(got)) == (200, sha(movie))
        conn.close()
        conn = connection_on(served.port, 1)
        status, got = get(conn, f"/subtitles/{ih}/{names.index('Film.srt')}.vtt")
        assert (status, got) == (200, b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHi\n")
        conn.close()
    finally:
        assert stop(served) == 0
        seeder.stop()
