"""The piece plan: the download behind a seek waits; the anchor is the next missing piece."""

from __future__ import annotations

from streme.torrent.planner import DEFAULT_PRIORITY, SKIPPED, PiecePlan


def plan_with(num: int, wanted: range, have: frozenset[int] = frozenset()) -> PiecePlan:
    plan = PiecePlan(num)
    plan.load(p in have for p in range(num))
    plan.want(wanted)
    return plan


def test_a_seek_skips_the_missing_pieces_behind_it_until_the_reader_leaves() -> None:
    plan = plan_with(10, range(10), have=frozenset({1}))
    assert plan.reader_started(7, 5) == [(0, SKIPPED), (2, SKIPPED), (3, SKIPPED), (4, SKIPPED)]
    assert plan.reader_left(7) == [(p, DEFAULT_PRIORITY) for p in (0, 2, 3, 4)]
    assert plan.reader_left(7) == []  # once


def test_the_earliest_reader_sets_the_floor() -> None:
    plan = plan_with(10, range(10))
    plan.reader_started(1, 6)
    # A second reader further back: the pieces between it and the first come back.
    assert plan.reader_started(2, 3) == [(p, DEFAULT_PRIORITY) for p in (3, 4, 5)]
    # The earlier one leaves: the floor rises to the other reader's start.
    assert plan.reader_left(2) == [(p, SKIPPED) for p in (3, 4, 5)]


def test_a_reader_from_the_start_skips_nothing() -> None:
    plan = plan_with(10, range(10))
    assert plan.reader_started(1, 0) == []


def test_only_wanted_files_are_touched() -> None:
    plan = plan_with(20, range(10, 20))
    assert plan.reader_started(1, 13) == [(p, SKIPPED) for p in (10, 11, 12)]


def test_a_newly_wanted_file_resets_what_was_lowered() -> None:
    # libtorrent sets every piece of the wanted files back to their file's priority.
    plan = plan_with(20, range(0, 10))
    plan.reader_started(1, 15)
    plan.want(range(10, 20))
    changes = plan.floor_changes()
    assert changes == [(p, SKIPPED) for p in range(15)]


def test_anchors_are_the_last_missing_wanted_pieces_beyond() -> None:
    plan = plan_with(10, range(2, 8), have=frozenset({3, 7}))
    assert plan.anchors(2, 2) == [6, 5]  # the in-order download reaches them last
    assert plan.anchors(2, 2, skip={6}) == [5, 4]  # a reader's pieces are not anchors
    assert plan.anchors(5, 3) == [6]  # only beyond the earliest wanted piece
    plan.finished(6)
    assert plan.anchors(2, 1) == [5]
    for piece in (4, 5):
        plan.finished(piece)
    assert plan.anchors(2, 2) == []  # nothing missing beyond
    plan.finished(2)
    assert plan.has(7)
    assert [plan.has(p) for p in (8, -1, 99)] == [False, False, False]
