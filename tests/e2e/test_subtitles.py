"""Subtitles as WebVTT at `/subtitles/{ih}/{n}.vtt`, listed by the API (`FileView.vtt`):
beside a hand-placed video, inside a cached torrent, and read from a libtorrent seeder.
An SRT with CRLF line ends and non-ASCII text comes out as UTF-8 WebVTT."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.api.apiclient import call
from tests.conftest import RunningServer, write_video
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, make_torrent, p2p_settings, random_bytes

KiB = 1024
SRT = "1\r\n00:00:00,500 --> 00:00:02,000\r\nGrüße aus Köln — ¿qué tal?\r\n\r\n".encode()
VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nGrüße aus Köln — ¿qué tal?\n".encode()
FRENCH_VTT = b"WEBVTT\n\n00:01.000 --> 00:02.000\nBonjour\n"
FILM = {
    "Film (2020)/Film.2020.1080p.mkv": random_bytes(1200 * KiB, 7),
    "Film (2020)/Film.2020.1080p.en.srt": SRT,
    "Film (2020)/Subs/French.vtt": FRENCH_VTT,
}


def vtt(server: RunningServer, url: str) -> tuple[int, dict[str, str], object]:
    return call(server.port, "GET", url)


def test_beside_a_hand_placed_video(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    ih = "a" * 40
    write_video(cache_dir, f"{ih}.mp4", 2 * 1024 * KiB)
    (cache_dir / f"{ih}.srt").write_bytes(SRT)
    (cache_dir / f"{ih}.fr.vtt").write_bytes(FRENCH_VTT)
    (cache_dir / f"{'b' * 40}.srt").write_bytes(b"another title's")
    server = make_server()
    status, _, entry = call(server.port, "GET", f"/api/cache/{ih}")
    assert status == 200
    subtitles = [f for f in entry["files"] if f["vtt"]]
    assert [(f["path"], f["vtt"]) for f in subtitles] == [
        (f"{ih}.fr.vtt", f"/subtitles/{ih}/0.vtt"),
        (f"{ih}.srt", f"/subtitles/{ih}/1.vtt"),
    ]
    status, headers, body = vtt(server, f"/subtitles/{ih}/1.vtt")
    assert (status, headers["content-type"], body) == (200, "text/vtt; charset=utf-8", VTT)
    assert vtt(server, f"/subtitles/{ih}/0.vtt")[2] == FRENCH_VTT
    # A reload is a 304 by its ETag.
    etag = headers["etag"]
    status, _, _ = call(
        server.port, "GET", f"/subtitles/{ih}/1.vtt", headers={"If-None-Match": etag}
    )
    assert status == 304
    status, _, error = vtt(server, f"/subtitles/{ih}/2.vtt")
    assert (status, error["error"]) == (404, "subtitle_not_found")
    status, _, error = vtt(server, f"/subtitles/{ih}/x.vtt")
    assert (status, error["error"]) == (404, "not_found")
    status, _, error = vtt(server, "/subtitles/nothex/0.vtt")
    assert (status, error["error"]) == (400, "invalid_infohash")


def test_in_a_cached_torrent(
    make_server: Callable[..., RunningServer], cache_dir: Path, tmp_path: Path
) -> None:
    blob, ih = make_torrent(tmp_path / "build", FILM)
    shutil.copytree(tmp_path / "build" / "Film (2020)", cache_dir / ih / "Film (2020)")
    (cache_dir / f"{ih}.torrent").write_bytes(blob)
    server = make_server()
    status, _, files = call(server.port, "GET", f"/api/files/{ih}")
    assert status == 200
    by_path = {f["path"]: f for f in files}
    srt = by_path["Film.2020.1080p.en.srt"]
    assert srt["vtt"] == f"/subtitles/{ih}/{srt['index']}.vtt"
    assert by_path["Film.2020.1080p.mkv"]["vtt"] is None
    assert [f["path"] for f in files if f["default"]] == ["Film.2020.1080p.mkv"]
    assert vtt(server, srt["vtt"])[2] == VTT
    assert vtt(server, by_path["Subs/French.vtt"]["vtt"])[2] == FRENCH_VTT
    video = by_path["Film.2020.1080p.mkv"]["index"]
    status, _, error = vtt(server, f"/subtitles/{ih}/{video}.vtt")
    assert (status, error["error"]) == (404, "subtitle_not_found")


def test_from_the_swarm(
    make_server: Callable[..., RunningServer], tracker: Tracker, tmp_path: Path
) -> None:
    seeder = make_seeder(tmp_path / "seed", FILM, 64 * KiB, tracker=tracker)
    try:
        server = make_server(p2p=p2p_settings(tracker))
        status, _, files = call(server.port, "GET", f"/api/files/{seeder.infohash}")
        assert status == 200, files
        urls = {f["path"]: f["vtt"] for f in files if f["vtt"]}
        assert vtt(server, urls["Film.2020.1080p.en.srt"])[2] == VTT
        assert vtt(server, urls["Subs/French.vtt"])[2] == FRENCH_VTT
    finally:
        seeder.stop()


def test_p2p_off_and_not_cached(make_server: Callable[..., RunningServer]) -> None:
    server = make_server()
    status, _, error = vtt(server, f"/subtitles/{'c' * 40}/0.vtt")
    assert (status, error["error"]) == (404, "not_cached")
