from hypothesis import given
from hypothesis import strategies as st

from streme.torrent.pieces import (
    FileSpan,
    Layout,
    file_pieces,
    last_piece_of_a_player_start,
    pieces_for,
    prefetch_depth,
    ramped_window_bytes,
    slices,
    window,
)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[Layout, FileSpan]:
    piece_length = draw(st.sampled_from([16, 64, 1000, 16384]))
    before = draw(st.integers(0, 5000))
    size = draw(st.integers(1, 50_000))
    after = draw(st.integers(0, 5000))
    return Layout(piece_length, before + size + after), FileSpan(before, size)


@given(layouts(), st.data())
def test_slices_cover_exactly_the_range(lf: tuple[Layout, FileSpan], data: st.DataObject) -> None:
    layout, span = lf
    start = data.draw(st.integers(0, span.size - 1))
    end = data.draw(st.integers(start, span.size - 1))
    got = slices(layout, span, start, end)
    assert sum(s.length for s in got) == end - start + 1
    stream_pos = span.offset + start
    for s in got:
        assert s.piece * layout.piece_length + s.start == stream_pos
        assert s.length > 0
        assert s.start + s.length <= layout.piece_size(s.piece)
        stream_pos += s.length
    assert [s.piece for s in got] == list(pieces_for(layout, span, start, end))


def test_short_last_piece() -> None:
    layout = Layout(100, 250)
    assert layout.num_pieces == 3
    assert [layout.piece_size(p) for p in range(3)] == [100, 100, 50]
    assert slices(layout, FileSpan(0, 250), 190, 249) == [
        slices(layout, FileSpan(0, 250), 190, 199)[0],
        slices(layout, FileSpan(0, 250), 200, 249)[0],
    ]


def test_window_is_nearest_first_with_growing_deadlines() -> None:
    layout = Layout(100, 10_000)
    span = FileSpan(50, 9_000)
    assert window(layout, span, 0, 250) == [(0, 0), (1, 10), (2, 20)]
    assert window(layout, span, 8_990, 1_000) == [(90, 0)]
    assert window(layout, span, 9_000, 100) == []


def test_file_pieces() -> None:
    assert list(file_pieces(Layout(100, 1_000), FileSpan(0, 1_000))) == list(range(10))
    assert list(file_pieces(Layout(100, 1_000), FileSpan(150, 100))) == [1, 2]
    assert list(file_pieces(Layout(100, 1_000), FileSpan(150, 0))) == []


def test_prefetch_depth_spends_at_most_half_the_buffer() -> None:
    assert prefetch_depth(4 * 1024 * 1024, 256 * 1024) == 4  # capped
    assert prefetch_depth(1024 * 1024, 256 * 1024) == 2
    assert prefetch_depth(64 * 1024, 256 * 1024) == 1  # always one
    assert prefetch_depth(64 * 1024 * 1024, 16 * 1024 * 1024) == 2


def test_ramped_window_starts_at_two_pieces_and_doubles_to_the_readahead() -> None:
    piece = 256 * 1024
    sizes = [ramped_window_bytes(16 * 1024 * 1024, piece, n) for n in range(8)]
    assert sizes[:6] == [2 * piece, 4 * piece, 8 * piece, 16 * piece, 32 * piece, 64 * piece]
    assert sizes[6:] == [16 * 1024 * 1024] * 2
    assert ramped_window_bytes(100_000, piece, 0) == piece  # never below one piece
    assert ramped_window_bytes(16 * 1024 * 1024, piece, 10_000) == 16 * 1024 * 1024


def test_a_player_start_guesses_the_last_piece() -> None:
    layout = Layout(piece_length=100, total_size=1000)
    span = FileSpan(offset=250, size=700)  # pieces 2..9
    assert last_piece_of_a_player_start(layout, span, 0, 699, ahead=4) == 9
    assert last_piece_of_a_player_start(layout, span, 0, 699, ahead=7) is None  # reached
    assert last_piece_of_a_player_start(layout, span, 1, 699, ahead=4) is None  # a seek
    assert last_piece_of_a_player_start(layout, span, 0, 99, ahead=4) is None  # a probe
    assert last_piece_of_a_player_start(layout, FileSpan(0, 0), 0, -1, ahead=1) is None
