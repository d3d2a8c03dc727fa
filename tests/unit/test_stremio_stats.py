"""Stremio's guess and statistics, as data (streme/stremio_stats.py)."""

from __future__ import annotations

from streme.cache.mediatypes import DEFAULT_VIDEO_EXTENSIONS
from streme.cache.torrentmeta import TorrentFile, TorrentMeta
from streme.stremio_stats import guess_file, swarm_progress, torrent_stats
from streme.torrent.snapshot import FileProgress, TorrentSnapshot

EXTS = list(DEFAULT_VIDEO_EXTENSIONS)
PACK = TorrentMeta(
    "ab" * 20,
    "Show.S01",
    True,
    (
        TorrentFile(0, 0, ("Show.S01.nfo",), 10),
        TorrentFile(1, 1, ("Sample", "Show.S01E02.sample.mkv"), 900),
        TorrentFile(2, 2, ("Show.S01E02.mkv",), 600),
        TorrentFile(3, 3, ("Show.S01E01.mkv",), 700),
    ),
)


def snapshot(files: tuple[FileProgress, ...]) -> TorrentSnapshot:
    return TorrentSnapshot(
        infohash=PACK.infohash,
        name=PACK.name,
        state="downloading",
        readers=1,
        wanted_files=(2,),
        published_files=(),
        progress=0.5,
        total_done=300,
        downloaded=300,
        uploaded=7,
        download_rate=1000,
        upload_rate=10,
        peers=3,
        pending_deadlines=0,
        reader_stats=(),
        files=files,
    )


def test_guess_file() -> None:
    assert guess_file(PACK, EXTS, None, None) == 3  # the largest that is not the sample
    assert guess_file(PACK, EXTS, 1, 2) == 2
    assert guess_file(PACK, EXTS, None, 2) == 2
    assert guess_file(PACK, EXTS, 1, 9) == 3  # not found: the default, as enginefs does
    nothing = TorrentMeta("cd" * 20, "x", True, (TorrentFile(0, 0, ("a.nfo",), 1),))
    assert guess_file(nothing, EXTS, None, None) is None


def test_torrent_stats_of_a_torrent_and_a_file() -> None:
    stats = torrent_stats(PACK, None)
    assert stats["infoHash"] == PACK.infohash
    assert [f["offset"] for f in stats["files"]] == [0, 10, 910, 1510]
    assert stats["files"][1]["path"] == "Show.S01/Sample/Show.S01E02.sample.mkv"
    assert stats["files"][1]["name"] == "Show.S01E02.sample.mkv"
    assert (stats["peers"], stats["downloadSpeed"]) == (0, 0)
    assert "streamLen" not in stats
    live = snapshot((FileProgress(2, "Show.S01E02.mkv", 600, 150),))
    one = torrent_stats(PACK, live, 2, 0.25)
    assert (one["streamLen"], one["streamName"], one["streamProgress"]) == (
        600,
        "Show.S01E02.mkv",
        0.25,
    )
    assert (one["peers"], one["downloaded"], one["uploadSpeed"]) == (3, 300, 10)
    assert "streamLen" not in torrent_stats(PACK, live, 99)


def test_swarm_progress() -> None:
    live = snapshot((FileProgress(2, "Show.S01E02.mkv", 600, 150),))
    assert swarm_progress(live, 2) == 0.25
    assert swarm_progress(live, 3) is None  # not wanted in the session
    assert swarm_progress(None, 2) is None
