"""`streme fetch` as a user runs it: its own process, downloading from a real libtorrent
seeder on loopback that it finds through the session's opentracker (the P2P settings
reach it through the environment). A .torrent file and one file of it; a magnet,
interrupted with SIGINT and resumed; an unknown torrent's exit status; and the parts
that need no swarm (usage errors, a title already cached, the progress lines)."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from streme.cache.records import Origin, RecordStore
from streme.cache.torrentmeta import parse_torrent
from streme.cli import main
from streme.progress import BarReporter, DownloadProgress, LineReporter, progress_line
from tests.conftest import write_video
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, random_bytes, sha256

STREME = [sys.executable, "-m", "streme"]
MiB = 1024 * 1024
UNITS = {"B": 1, "KiB": 1024, "MiB": MiB, "GiB": 1024 * MiB}
PROGRESS = re.compile(
    r"^fetch [0-9a-f]{40}: ([\d.]+ \w+) of ([\d.]+ \w+) \((\d+)%\), [\d.]+ \w+/s, \d+ peers?$"
)
DOWNLOADED = re.compile(r"downloaded ([\d.]+ \w+) this run")


def size(text: str) -> float:
    number, unit = text.split()
    return float(number) * UNITS[unit]


def downloaded(stderr: str) -> float:
    found = DOWNLOADED.search(stderr)
    assert found, stderr
    return size(found.group(1))


def fetch_env(tracker: Tracker, **extra: str) -> dict[str, str]:
    """This environment without any STREME_ setting of the caller's, plus loopback-only P2P
    with the session's tracker, and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREME_")}
    env.pop("TORRENT_DOWNLOAD_PATH", None)
    return {
        **env,
        "STREME_P2P_LISTEN_INTERFACES": "127.0.0.1:0",
        "STREME_P2P_DHT": "0",
        "STREME_P2P_LSD": "0",
        "STREME_P2P_UPNP": "0",
        "STREME_P2P_NATPMP": "0",
        "STREME_P2P_TRACKERS": tracker.announce,
        "STREME_P2P_METADATA_TIMEOUT": "20",
        **extra,
    }


def fetch(
    cache: Path, source: str, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`streme fetch SOURCE --cache-dir CACHE ARGS` to the end (killed after `timeout`)."""
    return subprocess.run(
        [*STREME, "fetch", source, "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_fetch_one_file_of_a_torrent_file(tmp_path: Path, tracker: Tracker) -> None:
    files = {
        "show/episode1.mp4": random_bytes(3 * MiB + 123, 1),
        "show/episode2.mp4": random_bytes(2 * MiB + 7, 2),
        "show/notes.txt": b"not a video\n",
    }
    seeder = make_seeder(tmp_path / "seed", files, tracker=tracker)
    cache = tmp_path / "cache"
    torrent = tmp_path / "show.torrent"
    torrent.write_bytes(seeder.torrent)
    meta = parse_torrent(seeder.torrent)
    index = next(f.index for f in meta.files if f.path == ("episode2.mp4",))
    try:
        out = fetch(cache, str(torrent), fetch_env(tracker), "--file", str(index))
    finally:
        seeder.stop()
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert any(PROGRESS.match(line) for line in lines), out.stderr
    assert "(100%)" in next(line for line in reversed(lines) if PROGRESS.match(line))
    landed = cache / seeder.infohash / "show" / "episode2.mp4"
    assert out.stdout.splitlines() == [str(landed)]
    assert sha256(landed.read_bytes()) == sha256(files["show/episode2.mp4"])
    assert not (cache / seeder.infohash / "show" / "episode1.mp4").exists()
    assert not (cache / ".incomplete" / seeder.infohash).exists()  # out of the session
    store = RecordStore(str(cache))
    store.open()
    try:
        record = store.get(seeder.infohash)
    finally:
        store.close()
    assert record is not None
    assert (record.origin, record.name) == (Origin.DOWNLOADED, "show")

    # Again: in the cache already, so no swarm (the seeder is gone) and the same answer.
    again = fetch(cache, str(torrent), fetch_env(tracker), "--file", str(index), timeout=30)
    assert again.returncode == 0, again.stderr
    assert "already in the cache" in again.stderr
    assert again.stdout == out.stdout


def test_interrupt_then_resume(tmp_path: Path, tracker: Tracker) -> None:
    total = 24 * MiB
    data = random_bytes(total, 3)
    seeder = make_seeder(
        tmp_path / "seed",
        {"movie.mp4": data},
        piece_length=256 * 1024,
        upload_limit=4 * MiB,  # 6 s for the whole file: time to interrupt it
        tracker=tracker,
    )
    cache = tmp_path / "cache"
    magnet = f"magnet:?xt=urn:btih:{seeder.infohash}&tr={quote(tracker.announce, safe='')}"
    env = fetch_env(tracker)
    try:
        proc = subprocess.Popen(
            [*STREME, "fetch", magnet, "--cache-dir", str(cache)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stderr is not None
        stderr = proc.stderr
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True)
        reader.start()
        seen: list[str] = []
        try:
            deadline = time.monotonic() + 30
            while True:  # until a progress line shows some bytes down, not all
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                seen.append(line)
                match = PROGRESS.match(line.rstrip("\n"))
                if match and 0 < size(match.group(1)) < total:
                    break
            proc.send_signal(signal.SIGINT)
            status = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        reader.join(timeout=10)
        stderr.close()
        while not lines.empty():
            seen.append(lines.get())
        first = "".join(seen)
        assert status == 130, first
        assert "tracker(s) are ignored" in first
        assert "run the same command" in first
        assert (cache / ".incomplete" / f"{seeder.infohash}.resume").exists()
        assert not (cache / seeder.infohash).exists()  # nothing published yet

        again = fetch(cache, magnet, env)
    finally:
        seeder.stop()
    assert again.returncode == 0, again.stderr
    landed = cache / seeder.infohash / "movie.mp4"
    assert again.stdout.splitlines() == [str(landed)]
    assert sha256(landed.read_bytes()) == sha256(data)
    before, after = downloaded(first), downloaded(again.stderr)
    assert before > 0
    # The second run fetched only what the first had not verified (a piece or two in
    # flight at the interrupt come again).
    assert after < total - before + 4 * 256 * 1024, (before, after)


@pytest.mark.parametrize(
    ("timeouts", "status", "code"),
    [
        ({"METADATA_TIMEOUT": "2", "NO_PEERS_TIMEOUT": "30"}, 4, "metadata_timeout"),
        ({"METADATA_TIMEOUT": "30", "NO_PEERS_TIMEOUT": "2"}, 3, "no_peers"),
    ],
)
def test_unknown_torrent_fails_with_its_status(
    tmp_path: Path, tracker: Tracker, timeouts: dict[str, str], status: int, code: str
) -> None:
    env = fetch_env(tracker, **{f"STREME_P2P_{k}": v for k, v in timeouts.items()})
    started = time.monotonic()
    out = fetch(tmp_path / "cache", "5" * 40, env, timeout=30)
    assert out.returncode == status, out.stderr
    assert f"({code})" in out.stderr
    assert out.stdout == ""
    assert time.monotonic() - started < 15


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "nonsense"]) == 2
    assert "expected a magnet link, a .torrent file or an infohash" in capsys.readouterr().err
    assert main(["fetch", str(tmp_path / "missing.torrent")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"not bencode")
    assert main(["fetch", str(bad)]) == 2
    assert "not a valid .torrent" in capsys.readouterr().err
    assert main(["fetch", "magnet:?dn=nothing"]) == 2
    assert "xt=urn:btih" in capsys.readouterr().err


def test_already_cached_needs_no_p2p(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREME_P2P_ENABLED", "0")
    cache = tmp_path / "cache"
    cache.mkdir()
    infohash = "c" * 40
    assert main(["fetch", infohash, "--cache-dir", str(cache)]) == 2  # not there, P2P off
    assert "P2P is off" in capsys.readouterr().err
    write_video(cache, f"{infohash}.mkv", 2 * MiB)
    assert main(["fetch", infohash.upper(), "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr()
    assert "already in the cache" in out.err
    assert out.out.splitlines() == [str(cache / f"{infohash}.mkv")]


def test_help_documents_flags_and_exit_statuses() -> None:
    out = subprocess.run([*STREME, "fetch", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for flag in ("--file", "--cache-dir", "--config", "--log-level"):
        assert flag in out.stdout
    for status in ("0 ", "2 ", "3 ", "4 ", "5 ", "6 ", "130 "):
        assert f"\n  {status}" in out.stdout
    assert "STREME_P2P_ALLOW_CLIENT_TRACKERS" in out.stdout


def test_progress_lines() -> None:
    ih = "d" * 40
    going = DownloadProgress("downloading", 12_900_000, 100 * MiB, 4_300_000, 3)
    line = f"fetch {ih}: 12.3 MiB of 100.0 MiB (12%), 4.1 MiB/s, 3 peers"
    assert progress_line(ih, going) == line
    waiting = DownloadProgress("metadata", 0, 0, 0, 1)
    assert progress_line(ih, waiting) == f"fetch {ih}: waiting for the metadata, 1 peer"
    now = [0.0]
    stream = io.StringIO()
    lines = LineReporter(ih, stream, interval=2.0, clock=lambda: now[0])
    for t in (0.0, 0.5, 1.9, 2.0, 3.0, 4.1):
        now[0] = t
        lines.update(going)
    done = DownloadProgress("complete", 100 * MiB, 100 * MiB, 0, 3)
    lines.update(done)
    lines.update(done)
    assert len(stream.getvalue().splitlines()) == 4  # at 0, 2.0 and 4.1 s, and when done
    # The bar (a terminal's) draws the same numbers without failing.
    from rich.console import Console

    terminal = io.StringIO()
    bar = BarReporter(ih, Console(file=terminal, force_terminal=True, width=120))
    bar.update(waiting)
    bar.update(going)
    bar.update(done)
    bar.close()
    assert "100.0/100.0 MiB" in terminal.getvalue()
