"""The deadline book, without libtorrent: merging readers' windows into per-piece deadlines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streme.torrent.scheduler import DeadlineBook


def test_first_window_sets_every_piece() -> None:
    book = DeadlineBook()
    change = book.set_window(1, [(0, 0), (1, 10), (2, 20)])
    assert change.earlier == [(0, 0), (1, 10), (2, 20)]
    assert change.abandoned == []
    assert book.deadline(1) == 10
    assert len(book) == 3


def test_moving_window_abandons_what_it_left() -> None:
    book = DeadlineBook()
    book.set_window(1, [(0, 0), (1, 10)])
    change = book.set_window(1, [(1, 0), (2, 10)])
    assert change.abandoned == [0]
    assert change.earlier == [(1, 0), (2, 10)]  # 1 moved from 10 ms to 0 ms
    assert 0 not in book


def test_later_deadline_from_a_second_reader_changes_nothing() -> None:
    book = DeadlineBook()
    book.set_window(1, [(5, 0)])
    change = book.set_window(2, [(5, 100), (6, 110)])
    assert change.earlier == [(6, 110)]
    assert book.deadline(5) == 0


def test_a_piece_stays_wanted_while_any_reader_wants_it() -> None:
    book = DeadlineBook()
    book.set_window(1, [(5, 0), (6, 10)])
    book.set_window(2, [(6, 50)])
    assert book.withdraw(1) == [5]
    assert book.deadline(6) == 50  # reader 2's own deadline remains
    assert book.withdraw(2) == [6]
    assert len(book) == 0


def test_withdrawing_an_unknown_reader_is_harmless() -> None:
    book = DeadlineBook()
    book.set_window(1, [(0, 0)])
    assert book.withdraw(7) == []
    assert dict(book.items()) == {0: 0}


windows = st.lists(
    st.tuples(
        st.integers(0, 3),  # reader
        st.dictionaries(st.integers(0, 20), st.integers(0, 1000), max_size=6),
    ),
    max_size=20,
)


@given(windows)
def test_book_matches_a_reference_model(steps: list[tuple[int, dict[int, int]]]) -> None:
    """After any sequence of windows, each piece's deadline is the minimum over the
    readers whose latest window holds it; applying the reported changes to a copy (as
    the torrent does to libtorrent) keeps exactly the wanted pieces, none of them with a
    deadline later than a reader asked for."""
    book = DeadlineBook()
    latest: dict[int, dict[int, int]] = {}
    told: dict[int, int] = {}  # what libtorrent would have been told
    for reader, window in steps:
        change = book.set_window(reader, list(window.items()))
        latest[reader] = window
        for piece in change.abandoned:
            del told[piece]
        told.update(change.earlier)
        expected: dict[int, int] = {}
        for w in latest.values():
            for piece, ms in w.items():
                expected[piece] = min(ms, expected.get(piece, ms))
        assert dict(book.items()) == expected
        assert set(told) == set(expected)
        # libtorrent is never left with a later deadline than some reader wants
        assert all(told[p] <= expected[p] for p in expected)
    for reader in list(latest):
        for piece in book.withdraw(reader):
            del told[piece]
    assert len(book) == 0
    assert told == {}
