"""Which file is the video (streme/cache/choice.py), over real-world names."""

from __future__ import annotations

import pytest

from streme.cache.choice import episode_of, is_extra, pick_episode, rank_videos


def parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("Movie.2019.1080p.BluRay.x264-GRP.mkv", False),
        ("Sample/movie.2019.1080p-sample.mkv", True),
        ("movie.2019.1080p.sample.mkv", True),
        ("SAMPLE.mkv", True),
        ("Movie (2019) - Trailer.mp4", True),
        ("Extras/Behind the Scenes.mkv", True),
        ("Featurettes/Making Of.mkv", True),
        ("Movie.Deleted.Scenes.mkv", True),
        ("Bonus/Interview with the director.mp4", True),
        ("The.Sampler.2020.720p.mkv", False),  # a word, not a substring
        ("Extraction.2020.1080p.mkv", False),
        ("Extraordinary.Attorney.Woo.S01E01.mkv", False),
        ("Teasers.and.Tealeaves.mkv", False),
    ],
)
def test_is_extra(path: str, extra: bool) -> None:
    assert is_extra(parts(path)) is extra


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Show.Name.S01E02.1080p.WEB-DL.mkv", (1, 2)),
        ("show.name.s1e2.720p.mkv", (1, 2)),
        ("Show Name - S02 E10 - Title.mkv", (2, 10)),
        ("Show.Name.S03.E04.mkv", (3, 4)),
        ("Show_Name_S01E02E03.mkv", (1, 2)),
        ("Show Name 1x02 Title.avi", (1, 2)),
        ("Show.Name.10x101.mkv", (10, 101)),
        ("Show Name/Season 1/02 - Pilot Part Two.mkv", (1, 2)),
        ("Show Name/Season.02/Episode 5.mkv", (2, 5)),
        ("Show/S03/Show - E07 - Title.mkv", (3, 7)),
        ("Show/Series 4/Show Ep. 9.mp4", (4, 9)),
        ("Movie.2019.1920x1080.mkv", None),  # a resolution, not 19x20
        ("Movie.2019.1080p.mkv", None),
        ("Show Name/Extras/Gag Reel.mkv", None),
    ],
)
def test_episode_of(path: str, expected: tuple[int, int] | None) -> None:
    assert episode_of(parts(path)) == expected


def test_default_is_the_largest_that_is_not_an_extra() -> None:
    files = [
        (parts("Movie/Sample/movie-sample.mkv"), 900, 0),  # a huge sample: still not it
        (parts("Movie/movie.mkv"), 700, 1),
        (parts("Movie/Trailer.mp4"), 800, 2),
        (parts("Movie/movie.cd2.mkv"), 700, 3),
    ]
    assert rank_videos(files) == [1, 3, 0, 2]
    only_extras = [(parts("a/sample.mkv"), 5, 0), (parts("a/trailer.mkv"), 9, 1)]
    assert rank_videos(only_extras)[0] == 1


def test_pick_episode_from_a_season_pack_with_a_sample() -> None:
    pack = [
        (parts("Show.S01.1080p/Show.S01E01.1080p.mkv"), 500, 0),
        (parts("Show.S01.1080p/Show.S01E02.1080p.mkv"), 510, 1),
        (parts("Show.S01.1080p/Sample/Show.S01E02.sample.mkv"), 900, 2),
        (parts("Show.S01.1080p/Show.S02E02.1080p.mkv"), 520, 3),
    ]
    assert pick_episode(pack, 1, 2) == 1
    assert pick_episode(pack, 2, 2) == 3
    assert pick_episode(pack, None, 1) == 0
    assert pick_episode(pack, 1, 3) is None
    folders = [
        (parts("Show/Season 1/01 - Pilot.mkv"), 10, 0),
        (parts("Show/Season 1/02 - Second.mkv"), 10, 1),
        (parts("Show/Season 2/01 - Return.mkv"), 10, 2),
    ]
    assert pick_episode(folders, 2, 1) == 2
    assert pick_episode(folders, 1, 2) == 1
    no_season = [(parts("Anime/Episode 01.mkv"), 10, 0), (parts("Anime/Episode 02.mkv"), 10, 1)]
    assert pick_episode(no_season, 1, 2) == 1
    assert pick_episode(no_season, 2, 2) is None
