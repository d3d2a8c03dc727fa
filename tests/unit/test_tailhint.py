"""The tail a player reads before playing, judged from a file's first bytes."""

from __future__ import annotations

from streme.torrent.tailhint import index_tail_bytes


def box(kind: bytes, size: int) -> bytes:
    """A box header claiming `size` bytes (payload not included)."""
    return size.to_bytes(4, "big") + kind


def large_box(kind: bytes, size: int) -> bytes:
    return (1).to_bytes(4, "big") + kind + size.to_bytes(8, "big")


FTYP = box(b"ftyp", 24) + b"isom" + bytes(4) + b"isomavc1"


def test_index_at_the_end_is_everything_after_the_media_data() -> None:
    head = FTYP + box(b"free", 8) + box(b"mdat", 1_000_000)
    # ftyp 24 + free 8 + mdat 1,000,000 = media ends at 1,000,032; the rest is the index.
    assert index_tail_bytes(head, 1_050_032) == 50_000


def test_a_64_bit_mdat_size_is_read() -> None:
    size = 5 * 2**32
    head = FTYP + large_box(b"mdat", size)
    assert index_tail_bytes(head, 24 + size + 4096) == 4096


def test_index_at_the_front_needs_no_tail() -> None:
    assert index_tail_bytes(FTYP + box(b"moov", 5000), 10_000_000) == 0
    assert index_tail_bytes(FTYP + box(b"moof", 5000), 10_000_000) == 0  # fragmented


def test_unknown_when_the_head_does_not_tell() -> None:
    assert index_tail_bytes(b"\x1aE\xdf\xa3" + bytes(100), 10_000) is None  # Matroska
    assert index_tail_bytes(FTYP, 10_000) is None  # the head ends before mdat or moov
    assert index_tail_bytes(FTYP + box(b"mdat", 9_976), 10_000) is None  # mdat to the end
    assert index_tail_bytes(FTYP + box(b"mdat", 99_999), 10_000) is None  # past the end
    assert index_tail_bytes(FTYP + box(b"zzzz", 16), 10_000) is None  # not a known box
    assert index_tail_bytes(FTYP + box(b"free", 3), 10_000) is None  # not a box
    assert index_tail_bytes(b"", 0) is None
