from streme.recent import remember


def test_keeps_the_newest_entries() -> None:
    recent: dict[str, int] = {}
    for i, key in enumerate("abcde"):
        remember(recent, key, i, limit=3)
    assert recent == {"c": 2, "d": 3, "e": 4}
    remember(recent, "c", 9, limit=3)  # set again: the newest now
    remember(recent, "f", 5, limit=3)
    assert list(recent) == ["e", "c", "f"]
    assert recent["c"] == 9
