"""M3U playlists (`/playlist/{infohash}.m3u`, `/playlist.m3u`) opened by ffprobe: every URL
of a multi-file torrent's playlist plays, and the whole cache's lists every title."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from streme.cache.torrentmeta import parse_torrent
from tests.api.apiclient import call
from tests.conftest import RunningServer
from tests.torrent.swarm import make_torrent

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(
    FFMPEG is None or FFPROBE is None, reason="ffmpeg not installed (make test installs it)"
)
HAND = "5" * 40


def clip(path: Path, seconds: int, tone: int) -> bytes:
    """A small real H.264 + AAC MP4 from ffmpeg's test sources."""
    assert FFMPEG is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    video = f"testsrc=duration={seconds}:size=160x120:rate=10"
    audio = f"sine=frequency={tone}:duration={seconds}"
    args = ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-c:v", "libx264"]
    args += ["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)]
    subprocess.run([FFMPEG, "-v", "error", *args], check=True, timeout=60)
    return path.read_bytes()


def probe_duration(url: str) -> float:
    assert FFPROBE is not None
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return float(out.stdout.strip())


def test_playlists_open_in_ffprobe(
    make_server: Callable[..., RunningServer], cache_dir: Path, tmp_path: Path
) -> None:
    build = tmp_path / "build"
    episodes = {
        "Show S01/Show.S01E01.mp4": clip(build / "Show S01/Show.S01E01.mp4", 2, 440),
        "Show S01/Show.S01E02.mp4": clip(build / "Show S01/Show.S01E02.mp4", 3, 550),
        "Show S01/Show.S01E01.en.srt": b"1\n00:00:00,000 --> 00:00:01,000\nHello\n",
    }
    blob, infohash = make_torrent(build, episodes)
    shutil.copytree(build / "Show S01", cache_dir / infohash / "Show S01")
    (cache_dir / f"{infohash}.torrent").write_bytes(blob)
    clip(cache_dir / f"{HAND}-film.mp4", 1, 660)
    server = make_server(cache={"min_size": 1024})

    status, headers, body = call(server.port, "GET", f"/playlist/{infohash}.m3u")
    assert status == 200
    assert headers["content-type"] == "audio/x-mpegurl"
    lines = body.decode().splitlines()
    assert lines[0] == "#EXTM3U"
    entries = list(zip(lines[1::2], lines[2::2], strict=True))
    base = f"http://127.0.0.1:{server.port}"
    videos = [f for f in parse_torrent(blob).files if f.path[-1].endswith(".mp4")]
    assert entries == [  # the torrent's order; the .srt is not a video
        (f"#EXTINF:-1,{f.path[-1]}", f"{base}/stream/proxy/{infohash}?file={f.index}")
        for f in videos
    ]
    durations = [probe_duration(url) for _, url in entries]
    assert sorted(round(d) for d in durations) == [2, 3]

    status, _, body = call(server.port, "GET", "/playlist.m3u")
    assert status == 200
    text = body.decode()
    assert text.count("#EXTINF") == 3  # two episodes and the hand-placed film
    assert f"{base}/stream/proxy/{HAND}\n" in text
    for line in text.splitlines():
        if line.startswith("http://"):
            assert probe_duration(line) > 0

    status, _, error = call(server.port, "GET", f"/playlist/{'6' * 40}.m3u")
    assert (status, error["error"]) == (404, "not_cached")
    status, _, error = call(server.port, "GET", "/playlist/nope.m3u")
    assert (status, error["error"]) == (400, "invalid_infohash")


def test_playlist_carries_the_stream_token(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    (cache_dir / f"{HAND}-film.mp4").write_bytes(b"\0" * 2 * 1024 * 1024)
    server = make_server(stream_token="s3 cret")
    status, _, error = call(server.port, "GET", f"/playlist/{HAND}.m3u")
    assert (status, error["error"]) == (401, "stream_token")
    status, _, body = call(server.port, "GET", f"/playlist/{HAND}.m3u?token=s3%20cret")
    assert status == 200
    url = body.decode().splitlines()[2]
    assert url == f"http://127.0.0.1:{server.port}/stream/proxy/{HAND}?token=s3%20cret"
    assert call(server.port, "GET", url.split(str(server.port), 1)[1])[0] == 200
