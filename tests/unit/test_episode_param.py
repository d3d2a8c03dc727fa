"""`?season=&episode=` on the stream route (streme/handlers.parse_episode)."""

from __future__ import annotations

import pytest

from streme.handlers import BadEpisode, episode_name, parse_episode


def test_parse_episode() -> None:
    assert parse_episode({}) is None
    assert parse_episode({"episode": "2"}) == (None, 2)
    assert parse_episode({"season": "01", "episode": "02"}) == (1, 2)
    for bad in ({"season": "1"}, {"episode": "x"}, {"episode": "-1"}, {"episode": "12345"}):
        with pytest.raises(BadEpisode):
            parse_episode(bad)
    with pytest.raises(BadEpisode, match="season"):
        parse_episode({"season": "\u0661", "episode": "1"})  # an Arabic-Indic digit


def test_episode_name() -> None:
    assert episode_name(None, 3) == "episode 3"
    assert episode_name(2, 3) == "season 2 episode 3"
