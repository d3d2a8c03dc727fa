"""Disk usage of titles, checked against coreutils `du`, and their removal (real directories)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from streme.cache import usage
from streme.cache.usage import (
    TitleOnDisk,
    filesystem_space,
    mark_downloaded,
    remove_title,
    scan_titles,
    unmark_downloaded,
)

A = "a" * 40  # hand-placed file
B = "b" * 40  # downloaded and published (hard links), with metadata and marker
C = "c" * 40  # partial download with resume data
D = "d" * 40  # a symlink in the root
E = "e" * 40  # only its .torrent


def du(*paths: Path | str) -> int:
    """Allocated bytes by coreutils du, each inode once over all `paths`."""
    out = subprocess.run(
        ["du", "-s", "-c", "-B1", *map(str, paths)], check=True, capture_output=True, text=True
    ).stdout
    return int(out.splitlines()[-1].split()[0])


def blocks(path: Path) -> int:
    return os.lstat(path).st_blocks * 512


def write(path: Path, size: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes((seed + i * 7) % 251 for i in range(size)))
    return path


def build_cache(root: Path, outside: Path) -> list[Path]:
    """A cache directory with every kind of entry; returns the non-title entries."""
    write(root / f"{A}-movie.mp4", 300_001)
    for rel, size in (("Show/ep1.mkv", 200_003), ("Show/sub/ep2.mkv", 70_000)):
        src = write(root / ".incomplete" / B / rel, size, seed=len(rel))
        (root / B / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(src, root / B / rel)
    write(root / ".incomplete" / B / "Show" / "extra.nfo", 5_000)  # downloaded, not published
    write(root / f"{B}.torrent", 900)
    (root / B / "Show" / "outside.mkv").symlink_to(outside)  # never followed
    sparse(root / ".incomplete" / C / "Film.mkv")
    write(root / ".incomplete" / f"{C}.resume", 3_000)
    (root / f"{D}-link.mp4").symlink_to(root / f"{A}-movie.mp4")
    write(root / f"{E}.torrent", 400)
    write(root / ".streme" / "state.db", 40_000)
    mark_downloaded(str(root), B)
    mark_downloaded(str(root), C)
    others = [
        write(root / "notes.txt", 10_000),
        write(root / f".{A}-copying.mp4", 20_000),  # hidden: never a title
        write(root / ".incomplete" / f".{B}.12345", 800),  # engine's temporary file
        write(root / f"{'f' * 41}.mp4", 1_000),  # 41 hex digits carry no hash
    ]
    return others


def sparse(path: Path) -> None:
    """A partially downloaded file: large apparent size, a few blocks written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(50_000_000)
        f.seek(1_000_000)
        f.write(b"x" * 100_000)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return write(tmp_path / "outside" / "big.bin", 500_000)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "cache"
    path.mkdir()
    return path


def test_total_matches_du(root: Path, outside: Path) -> None:
    others = build_cache(root, outside)
    titles = scan_titles(str(root))
    assert sorted(titles) == [A, B, C, D, E]
    accounted = (
        sum(t.bytes for t in titles.values())
        + blocks(root)
        + blocks(root / ".incomplete")
        + du(root / ".streme")
        + sum(blocks(p) for p in others)
    )
    assert accounted == du(root)
    for title in titles.values():
        assert title.bytes == du(*title.paths), title.infohash


def test_fields(root: Path, outside: Path) -> None:
    build_cache(root, outside)
    titles = scan_titles(str(root))
    r, inc = str(root), str(root / ".incomplete")
    assert titles[A] == TitleOnDisk(
        infohash=A,
        name=f"{A}-movie.mp4",
        paths=(f"{r}/{A}-movie.mp4",),
        bytes=blocks(root / f"{A}-movie.mp4"),
        published=True,
        incomplete=False,
        downloaded_marker=False,
        last_modified=os.lstat(root / f"{A}-movie.mp4").st_mtime,
    )
    b = titles[B]
    assert b.name == "Show"
    assert b.paths == (f"{r}/{B}", f"{r}/{B}.torrent", f"{inc}/{B}")
    assert (b.published, b.incomplete, b.downloaded_marker) == (True, True, True)
    c = titles[C]
    assert (c.name, c.paths) == ("", (f"{inc}/{C}", f"{inc}/{C}.resume"))
    assert (c.published, c.incomplete, c.downloaded_marker) == (False, True, True)
    assert c.bytes < 1_000_000  # allocated, not apparent, size of the sparse file
    assert titles[D].bytes == blocks(root / f"{D}-link.mp4")  # the link, not its target
    assert titles[D].name == f"{D}-link.mp4"
    e = titles[E]
    assert (e.name, e.published, e.incomplete) == ("", False, False)


def test_hard_links_counted_once(root: Path) -> None:
    src = write(root / ".incomplete" / B / "movie.mkv", 1_000_000)
    (root / B).mkdir()
    linked = scan_titles(str(root))[B].bytes
    os.link(src, root / B / "movie.mkv")
    both = scan_titles(str(root))[B]
    assert both.bytes == linked  # a directory entry more, no new blocks in a small dir
    assert both.bytes == du(root / B, root / ".incomplete" / B)
    assert both.bytes < 2 * blocks(src)


def test_last_modified_is_newest_anywhere(root: Path) -> None:
    deep = write(root / B / "Show" / "sub" / "ep.mkv", 10)
    write(root / f"{B}.torrent", 10)
    for path in (deep, deep.parent, deep.parent.parent, root / B, root / f"{B}.torrent"):
        os.utime(path, (1_000.0, 1_000.0))
    os.utime(deep, (5_000.5, 5_000.5))
    assert scan_titles(str(root))[B].last_modified == 5_000.5


def test_name_with_two_hashes_belongs_to_both(root: Path) -> None:
    write(root / f"{A}+{B}.mp4", 10)
    titles = scan_titles(str(root))
    assert titles[A].paths == titles[B].paths == (f"{root}/{A}+{B}.mp4",)


def test_depth_is_capped(root: Path) -> None:
    deep = root / B
    for i in range(usage.MAX_DEPTH + 5):
        deep /= f"d{i}"
    write(deep / "f", 10)
    assert 0 < scan_titles(str(root))[B].bytes < du(root / B)


def test_files_vanishing_mid_walk_are_skipped(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_cache(root, outside)
    gone = {str(root / ".incomplete" / B / "Show" / "extra.nfo"), str(root / f"{A}-movie.mp4")}
    real_lstat = os.lstat

    def lstat(path: str) -> os.stat_result:
        if str(path) in gone:
            raise FileNotFoundError(path)
        return real_lstat(path)

    monkeypatch.setattr(os, "lstat", lstat)
    titles = scan_titles(str(root))
    assert titles[A].bytes == 0
    monkeypatch.undo()
    assert titles[B].bytes == scan_titles(str(root))[B].bytes - blocks(
        root / ".incomplete" / B / "Show" / "extra.nfo"
    )


def test_no_incomplete_dir(root: Path) -> None:
    write(root / f"{A}.mp4", 10)
    assert list(scan_titles(str(root))) == [A]


def test_incomplete_symlink_is_not_followed(root: Path, tmp_path: Path) -> None:
    write(tmp_path / "elsewhere" / f"{C}.resume", 10)
    (root / ".incomplete").symlink_to(tmp_path / "elsewhere")
    assert scan_titles(str(root)) == {}


def test_remove_keeps_open_files_readable(root: Path, outside: Path) -> None:
    build_cache(root, outside)
    titles = scan_titles(str(root))
    served = root / B / "Show" / "ep1.mkv"
    expected = hashlib.sha256(served.read_bytes()).hexdigest()
    fd = os.open(served, os.O_RDONLY)
    try:
        remove_title(titles[B], str(root))
        assert not served.exists()
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, 65536, offset):
            digest.update(chunk)
            offset += len(chunk)
        assert digest.hexdigest() == expected
    finally:
        os.close(fd)
    for path in titles[B].paths:
        assert not os.path.lexists(path)
    assert not (root / ".streme" / "downloaded" / B).exists()
    assert outside.exists()  # the symlink inside was unlinked, its target kept
    assert sorted(scan_titles(str(root))) == [A, C, D, E]
    assert (root / ".streme" / "state.db").exists()
    assert (root / ".incomplete").is_dir()


def test_remove_every_kind(root: Path, outside: Path) -> None:
    build_cache(root, outside)
    for title in scan_titles(str(root)).values():
        remove_title(title)
        remove_title(title)  # already gone: nothing to do
    assert scan_titles(str(root)) == {}
    assert (root / f"{A}-movie.mp4").exists() is False
    assert sorted(os.listdir(root / ".streme" / "downloaded")) == []
    assert (root / "notes.txt").exists()


def _title(infohash: str, *paths: str) -> TitleOnDisk:
    return TitleOnDisk(infohash, "", paths, 0, True, False, False, 0.0)


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(lambda r, o: [f"{o}/{A}-x.mp4", f"{r}/{A}.mp4"], id="two roots"),
        pytest.param(lambda r, o: [f"{r}/notes.txt"], id="no hash in name"),
        pytest.param(lambda r, o: [f"{r}/{B}.mp4"], id="another title's hash"),
        pytest.param(lambda r, o: [f"{r}/.{A}.mp4"], id="hidden"),
        pytest.param(lambda r, o: [f"{r}/.streme"], id="state dir"),
        pytest.param(lambda r, o: [f"{r}/.incomplete/{B}"], id="another incomplete"),
        pytest.param(lambda r, o: [f"{r}/.incomplete/{A}.part"], id="unknown incomplete"),
        pytest.param(lambda r, o: [f"{r}/.incomplete/{A}-x.mp4"], id="inside incomplete"),
        pytest.param(lambda r, o: [f"{r}/.streme/downloaded/{A}"], id="the marker"),
        pytest.param(lambda r, o: [f"{r}/sub/../{A}.mp4"], id="dot-dot"),
        pytest.param(lambda r, o: [f"{A}.mp4"], id="relative"),
        pytest.param(lambda r, o: [f"{r}/{A}.mp4", r], id="the root itself"),
    ],
)
def test_remove_refuses_foreign_paths(
    root: Path, tmp_path: Path, paths: Callable[[str, str], list[str]]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for directory in (root, other):
        write(directory / f"{A}-x.mp4", 10)
        write(directory / f"{A}.mp4", 10)
    write(root / "notes.txt", 10)
    write(root / f"{B}.mp4", 10)
    write(root / ".incomplete" / B / "f", 10)
    before = du(tmp_path)
    with pytest.raises(ValueError, match=r"."):
        remove_title(_title(A, *paths(str(root), str(other))))
    assert du(tmp_path) == before


def test_remove_refuses_another_root_and_symlinked_incomplete(root: Path, tmp_path: Path) -> None:
    write(root / f"{A}.mp4", 10)
    with pytest.raises(ValueError, match="one cache directory"):
        remove_title(_title(A, f"{root}/{A}.mp4"), str(tmp_path))
    assert (root / f"{A}.mp4").exists()
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / A / "f", 10)
    (root / ".incomplete").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="not a directory of the cache root"):
        remove_title(_title(A, f"{root}/.incomplete/{A}"))
    assert (elsewhere / A / "f").exists()


def test_markers(root: Path) -> None:
    mark_downloaded(str(root), A)
    mark_downloaded(str(root), A)
    assert (root / ".streme" / "downloaded" / A).stat().st_size == 0
    write(root / f"{A}.mp4", 10)
    assert scan_titles(str(root))[A].downloaded_marker
    unmark_downloaded(str(root), A)
    unmark_downloaded(str(root), A)
    assert not scan_titles(str(root))[A].downloaded_marker
    for bad in (A.upper(), "../" + A[3:], "a" * 39, ""):
        with pytest.raises(ValueError, match="infohash"):
            mark_downloaded(str(root), bad)


def test_filesystem_space(root: Path) -> None:
    total, available = filesystem_space(str(root))
    st = os.statvfs(root)
    assert total == shutil.disk_usage(root).total == st.f_blocks * st.f_frsize
    assert 0 <= available <= total
