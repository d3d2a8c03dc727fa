"""Which file of a torrent is "the video": not the sample, and the right episode. Pure.

"It played the sample instead of the movie" and "the wrong episode from a season pack"
are among the most reported problems of every torrent streamer. Two rules:

- `is_extra(path)`: a file whose name or folder says it is a sample, trailer, teaser,
  featurette, extra, bonus, interview or deleted/behind-the-scenes scene (as a whole word:
  "Sampler" or "Extraction" are not). The default file is the largest video that is not
  an extra; only when every video is one, the largest of them.
- `episode_of(path)`: (season, episode) from the usual names: `S01E02` (`s1e2`,
  `S01.E02`, `S01 E02`), `1x02`, or an episode number (`E02`, `Episode 2`, `02 - Title`)
  inside a `Season 1` (`S01`) folder. `pick_episode` finds the file for a wanted pair.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_SEP = r"(?:^|[\s._\-\[\](){}])"
_END = r"(?=$|[\s._\-\[\](){}])"
EXTRA_WORDS = (
    "sample",
    "samples",
    "trailer",
    "trailers",
    "teaser",
    "featurette",
    "featurettes",
    "extra",
    "extras",
    "bonus",
    "interview",
    "interviews",
    "behind[\\s._\\-]the[\\s._\\-]scenes",
    "deleted[\\s._\\-]scenes?",
    "making[\\s._\\-]of",
)
_EXTRA = re.compile(_SEP + "(?:" + "|".join(EXTRA_WORDS) + ")" + _END, re.IGNORECASE)

# S01E02, s1e2, S01.E02, S01 E02, S01_E02 (and S01E02E03: the first episode counts)
_SXXEYY = re.compile(r"(?<![a-z0-9])s(\d{1,3})[\s._\-]?e(\d{1,4})(?!\d)", re.IGNORECASE)
# 1x02 (not a resolution like 1920x1080: at most two digits for the season, three for
# the episode, and no digit on either side)
_NXNN = re.compile(r"(?<![\dx])(\d{1,2})x(\d{2,3})(?![\dp])", re.IGNORECASE)
# A season folder: "Season 1", "Season.01", "S01", "Series 2"
_SEASON_DIR = re.compile(r"^(?:season|series|s)[\s._\-]?(\d{1,3})(?:$|[\s._\-])", re.IGNORECASE)
# An episode inside a season folder: "E02", "Episode 2", "Ep. 3", or a leading number "02 - "
_EPISODE = re.compile(r"(?<![a-z0-9])(?:episode|ep|e)[\s._\-]{0,2}(\d{1,4})(?!\d)", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^(\d{1,3})(?:[\s._\-]|$)")


def is_extra(path: Sequence[str]) -> bool:
    """The file (its path components inside the torrent) is a sample, trailer or extra."""
    return any(_EXTRA.search(_stem(part)) for part in path)


def episode_of(path: Sequence[str]) -> tuple[int, int] | None:
    """(season, episode) from the file's name, or its name and its season folder."""
    name = _stem(path[-1]) if path else ""
    for pattern in (_SXXEYY, _NXNN):
        found = pattern.search(name)
        if found:
            return int(found.group(1)), int(found.group(2))
    season = None
    for folder in reversed(path[:-1]):
        matched = _SEASON_DIR.match(folder.strip())
        if matched:
            season = int(matched.group(1))
            break
    if season is None:
        return None
    found = _EPISODE.search(name) or _LEADING_NUMBER.match(name)
    return (season, int(found.group(1))) if found else None


def rank_videos(items: Iterable[tuple[Sequence[str], int, int]]) -> list[int]:
    """Keys of (path, size, key) videos in the order to choose them: not extras first,
    then the larger, then the lower key."""
    ordered = sorted(items, key=lambda item: (is_extra(item[0]), -item[1], item[2]))
    return [key for _, _, key in ordered]


def pick_episode(
    items: Iterable[tuple[Sequence[str], int, int]], season: int | None, episode: int
) -> int | None:
    """The key of the video that is `episode` of `season` (None: any season), never an
    extra; several matches: the largest (ties: the lower key). A name with an episode
    number but no season (`E02`, `Episode 2` outside a season folder) counts as season 1
    when nothing names the season."""
    videos = [(path, size, key) for path, size, key in items if not is_extra(path)]
    matches = []
    for path, size, key in videos:
        found = episode_of(path)
        if found is not None and found[1] == episode and season in (None, found[0]):
            matches.append((size, key))
    if not matches and season in (None, 1):
        for path, size, key in videos:
            number = _EPISODE.search(_stem(path[-1])) if path else None
            if number is not None and int(number.group(1)) == episode:
                matches.append((size, key))
    if not matches:
        return None
    return max(matches, key=lambda match: (match[0], -match[1]))[1]


def _stem(name: str) -> str:
    """The name without a short extension (".mkv", ".m2ts"), for word matching."""
    dot = name.rfind(".")
    return name[:dot] if dot > 0 and len(name) - dot <= 6 else name
