"""Cache hits played by a real player: Chromium's `<video>`, to playback and through seeks.

Each container (MP4 with `moov` first and last, WebM, Matroska) is laid out as a cache hit
(`<infohash>-clip.<ext>` in the cache directory), served by an in-process streme, and
played in headless Chromium: it must start, seek to 40 % and 75 % of the clip and play on
after each seek, with no media error, every byte range answered from the right file, and
the duration the player read from the metadata equal to ffprobe's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from streme.torrent.tailhint import index_tail_bytes
from tests.conftest import INFOHASH, RunningServer
from tests.player.browser import Browser, PlaybackError, Timeline
from tests.player.clips import KINDS, Clip, ClipMaker, mp4_boxes

TIMEOUT = 15.0  # per phase: metadata, first playback, each seek


def put_in_cache(clip: Clip, cache_dir: Path, infohash: str = INFOHASH) -> Path:
    """Lay the clip out as a cache hit: hard-linked (or copied) under a hidden name, then
    renamed into place, so the index never sees a partial file."""
    hidden = cache_dir / f".{infohash}-clip{clip.suffix}"
    try:
        os.link(clip.path, hidden)
    except OSError:
        shutil.copyfile(clip.path, hidden)
    target = cache_dir / f"{infohash}-clip{clip.suffix}"
    os.replace(hidden, target)
    return target


def check_served_right_file(timeline: Timeline, url: str, size: int) -> None:
    """Every request went to `url` and every answer describes a file of `size` bytes.

    The player cancels requests it no longer needs (after a seek), some before their
    answer arrived: those have no status."""
    assert any(e.status is not None for e in timeline.requests), timeline.describe()
    for exchange in timeline.requests:
        assert exchange.url == url, timeline.describe()
        if exchange.status is None:
            assert exchange.failure is not None, timeline.describe()
            continue
        assert exchange.status in (200, 206), timeline.describe()
        if exchange.status == 206:
            assert exchange.content_range is not None, timeline.describe()
            match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", exchange.content_range)
            assert match is not None, exchange.content_range
            assert int(match[3]) == size, timeline.describe()
        else:
            assert exchange.content_length == str(size), timeline.describe()


def play_cache_hit(
    kind: str,
    clips: ClipMaker,
    browser: Browser,
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
    **http: object,
) -> Timeline:
    clip = clips.get(kind)
    put_in_cache(clip, cache_dir)
    server = make_server(**http)
    url = server.url(f"/stream/proxy/{INFOHASH}")
    seeks = [round(clip.duration * 0.4, 3), round(clip.duration * 0.75, 3)]
    timeline = browser.play(url, seeks, timeout=TIMEOUT)
    print(timeline.describe())  # shown by pytest when the test fails

    assert timeline.error is None
    assert timeline.time_to_playing is not None
    assert [s.target for s in timeline.seeks] == seeks
    assert all(s.seek_to_playing is not None for s in timeline.seeks), timeline.describe()
    metadata = timeline.first("loadedmetadata")
    assert metadata is not None, timeline.describe()
    assert metadata.duration is not None
    assert abs(metadata.duration - clip.duration) <= 0.5, (metadata.duration, clip.duration)
    assert timeline.video_size == (clip.width, clip.height)
    check_served_right_file(timeline, url, clip.size)
    return timeline


@pytest.mark.parametrize("kind", KINDS)
def test_cache_hit_plays_and_seeks(
    kind: str,
    clips: ClipMaker,
    browser: Browser,
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
) -> None:
    play_cache_hit(kind, clips, browser, make_server, cache_dir)


def test_cache_hit_plays_and_seeks_on_the_copying_path(
    clips: ClipMaker,
    browser: Browser,
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
) -> None:
    # moov at the end: the most range requests (the end first, then each seek).
    timeline = play_cache_hit(
        "mp4-moov-end", clips, browser, make_server, cache_dir, zero_copy=False
    )
    assert len(timeline.requests) >= 2, timeline.describe()


def test_clip_layouts(clips: ClipMaker) -> None:
    """The MP4 clips really differ where the test means them to: `moov` first or last."""
    faststart = mp4_boxes(clips.get("mp4-faststart").path)
    moov_end = mp4_boxes(clips.get("mp4-moov-end").path)
    assert faststart.index("moov") < faststart.index("mdat"), faststart
    assert moov_end.index("mdat") < moov_end.index("moov"), moov_end
    assert clips.get("mp4-moov-end").codecs == ("h264", "aac")
    assert clips.get("mkv").codecs == ("h264", "aac")
    assert clips.get("webm").codecs == ("vp9", "opus")


def test_media_error_is_reported(
    browser: Browser, make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    """Bytes that are no video: the player's MediaError and the event log reach the test."""
    (cache_dir / f"{INFOHASH}-noise.mp4").write_bytes(os.urandom(2 * 1024 * 1024))
    server = make_server()
    url = server.url(f"/stream/proxy/{INFOHASH}")
    with pytest.raises(PlaybackError) as caught:
        browser.play(url, [1.0], timeout=TIMEOUT)
    timeline = caught.value.timeline
    assert timeline.error is not None
    assert timeline.error.code == 4  # MEDIA_ERR_SRC_NOT_SUPPORTED
    assert timeline.phase == "metadata"
    assert "error" in [e.event for e in timeline.events]
    assert "MediaError 4" in str(caught.value)


@pytest.mark.parametrize("kind", ["mp4-moov-end", "mp4-faststart"])
def test_the_tail_hint_agrees_with_ffprobe(clips: ClipMaker, kind: str) -> None:
    """What streme pins at the end of an MP4 (from its first 64 KiB) is exactly the span
    from ffprobe's `moov` box to the end of the file."""
    clip = clips.get(kind)
    size = clip.path.stat().st_size
    trace = subprocess.run(
        ["ffprobe", "-v", "trace", str(clip.path)], capture_output=True, text=True, check=True
    ).stderr
    found = re.search(r"type:'moov' parent:'root' sz: (\d+) (\d+) (\d+)", trace)
    assert found is not None, "ffprobe did not report the moov box"
    # ffprobe gives the offset of the box's contents, after its 8-byte header.
    moov_offset = int(found.group(2)) - 8
    hint = index_tail_bytes(clip.path.read_bytes()[: 64 * 1024], size)
    if moov_offset > size // 2:
        assert hint == size - moov_offset
    else:
        assert hint == 0
