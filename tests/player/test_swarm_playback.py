"""A cache miss played by a real player: Chromium's `<video>` streaming from a loopback swarm.

A libtorrent seeder (its defaults, loopback only) seeds an ffmpeg-made clip and announces
to the session's opentracker; streme runs on its defaults but for loopback (it finds the
seeder through the tracker, uTP accepted, not dialled), with an empty cache. Chromium
plays `/stream/proxy/{infohash}` to `playing`, seeks to 40 % and 75 %, plays on after
each, with no media error. Then the whole file, fetched from the same URL, must equal the
clip byte for byte.

The MP4 with its index at the end is the hard case: the player reads the head, then the
`moov` box at the end, and only then can it play. A capped seeder (4 MiB/s, about four
times the clip's bit rate) shows whether the tail the player needs competes with the rest.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.player.browser import Browser
from tests.player.clips import ClipMaker
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, p2p_settings

TIMEOUT = 20.0  # per phase: metadata, first playback, each seek
MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("kind", "upload_limit"),
    [("mp4-moov-end", 0), ("mp4-moov-end", 4 * MiB), ("mp4-faststart", 4 * MiB), ("mkv", 0)],
    ids=["mp4-moov-end-unlimited", "mp4-moov-end-4MiBps", "mp4-faststart-4MiBps", "mkv-unlimited"],
)
def test_a_cache_miss_plays_and_seeks(
    browser: Browser,
    clips: ClipMaker,
    make_server: Callable[..., RunningServer],
    tracker: Tracker,
    tmp_path: Path,
    kind: str,
    upload_limit: int,
) -> None:
    clip = clips.get(kind)
    data = clip.path.read_bytes()
    seeder = make_seeder(
        tmp_path / "seed",
        {f"clip{clip.suffix}": data},
        piece_length=256 * 1024,
        upload_limit=upload_limit,
        tracker=tracker,
    )
    try:
        server = make_server(p2p=p2p_settings(tracker))
        url = server.url(f"/stream/proxy/{seeder.infohash}")
        timeline = browser.play(url, [clip.duration * 0.4, clip.duration * 0.75], timeout=TIMEOUT)
        assert timeline.error is None, timeline.describe()
        assert timeline.time_to_playing is not None, timeline.describe()
        assert all(s.seek_to_playing is not None for s in timeline.seeks), timeline.describe()
        assert timeline.duration == pytest.approx(clip.duration, abs=0.5)
        with urllib.request.urlopen(url, timeout=60) as response:
            served = response.read()
        assert hashlib.sha256(served).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        seeder.stop()
