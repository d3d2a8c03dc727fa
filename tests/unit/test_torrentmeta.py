import contextlib
from pathlib import Path

import libtorrent as lt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streme.cache.bencode import BencodeError, decode
from streme.cache.torrentmeta import InvalidTorrent, parse_torrent


def make_torrent(root: Path, files: dict[str, bytes], flags: int = 0) -> bytes:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    top = root / next(iter(files)).split("/")[0]
    ct = lt.create_torrent(lt.list_files(str(top)), 16 * 1024, flags)
    lt.set_piece_hashes(ct, str(root))
    return bytes(lt.bencode(ct.generate()))


def test_single_file_matches_libtorrent(tmp_path: Path) -> None:
    blob = make_torrent(tmp_path, {"movie.mp4": b"x" * 50_000})
    meta = parse_torrent(blob)
    assert meta.infohash == str(lt.torrent_info(blob).info_hashes().v1)
    assert meta.name == "movie.mp4"
    assert not meta.multi_file
    assert [(f.index, f.path, f.length) for f in meta.files] == [(0, (), 50_000)]


@pytest.mark.parametrize("flags", [0, lt.create_torrent.v1_only])
def test_multi_file_skips_pad_files(tmp_path: Path, flags: int) -> None:
    blob = make_torrent(
        tmp_path, {"Pack/S1/a.mkv": b"a" * 100_000, "Pack/b.txt": b"b" * 50_000}, flags
    )
    meta = parse_torrent(blob)
    info = lt.torrent_info(blob)
    assert meta.infohash == str(info.info_hashes().v1)
    layout = info.layout()
    real = [
        (layout.file_path(i), layout.file_size(i), i)
        for i in range(layout.num_files())
        if not layout.file_flags(i) & lt.file_storage.flag_pad_file
    ]
    assert [("/".join(("Pack", *f.path)), f.length, f.raw_index) for f in meta.files] == real
    assert [f.index for f in meta.files] == [0, 1]


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"de",
        b"d4:infoi1ee",
        b"d4:infod4:name2:..6:lengthi1eee",
        b"d4:infod4:name1:a5:filesld4:pathl2:..e6:lengthi1eeeee",
        b"d4:infod4:name1:a5:filesld4:pathl1:/e6:lengthi1eeeee",
        b"d4:infod4:name1:a6:lengthi-1eee",
    ],
)
def test_invalid_torrents(blob: bytes) -> None:
    with pytest.raises(InvalidTorrent):
        parse_torrent(blob)


def test_bencode_strictness() -> None:
    assert decode(b"d1:ai1e1:bl1:xee")[0] == {b"a": 1, b"b": [b"x"]}
    for bad in (
        b"i01e",
        b"i-0e",
        b"ie",
        b"d1:bi1e1:ai1ee",
        b"3:ab",
        b"i1ex",
        b"l" * 100 + b"e" * 100,
    ):
        with pytest.raises(BencodeError):
            decode(bad)


@given(st.binary(max_size=200))
def test_garbage_never_crashes(data: bytes) -> None:
    with contextlib.suppress(InvalidTorrent):
        parse_torrent(data)
