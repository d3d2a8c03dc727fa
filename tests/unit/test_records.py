"""The usage records store on real sqlite files: semantics, migrations, damage, SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streme.cache import records
from streme.cache.records import (
    Origin,
    RecordsTooNew,
    RecordStore,
    TitleRecord,
    UsageDelta,
    state_db_path,
)

H1 = "0123456789abcdef0123456789abcdef01234567"
H2 = "89abcdef0123456789abcdef0123456789abcdef"


def open_store(root: Path) -> RecordStore:
    store = RecordStore(str(root))
    store.open()
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    store = open_store(tmp_path)
    yield store
    store.close()


def user_version(path: str) -> int:
    db = sqlite3.connect(path)
    try:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()
    return version


def corrupt_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".streme").iterdir() if ".corrupt-" in p.name)


def test_state_db_path() -> None:
    assert state_db_path("/srv/cache") == "/srv/cache/.streme/state.db"


def test_round_trip_of_every_field(tmp_path: Path, store: RecordStore) -> None:
    store.upsert_title(H1, name="Movie (2020)", bytes=123, origin=Origin.HAND_PLACED, added=10.5)
    store.apply_usage({H1: UsageDelta(hits=3, bytes_served=2**40, last_served=20.25)})
    store.set_pinned(H1, True)
    expected = TitleRecord(
        infohash=H1,
        name="Movie (2020)",
        bytes=123,
        origin=Origin.HAND_PLACED,
        added=10.5,
        last_served=20.25,
        hits=3,
        bytes_served=2**40,
        pinned=True,
    )
    assert store.get(H1) == expected
    assert store.titles() == {H1: expected}
    store.close()
    reopened = open_store(tmp_path)
    try:
        assert reopened.titles() == {H1: expected}
        assert not reopened.created
        assert not reopened.rebuilt
    finally:
        reopened.close()


def test_new_title_has_no_usage(store: RecordStore) -> None:
    store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    assert store.get(H1) == TitleRecord(H1, "a", 1, Origin.DOWNLOADED, 5.0, None, 0, 0, False)
    assert store.get(H2) is None


def test_upsert_updates_name_and_bytes_only(store: RecordStore) -> None:
    store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    store.apply_usage({H1: UsageDelta(hits=2, bytes_served=7, last_served=9.0)})
    store.set_pinned(H1, True)
    store.upsert_title(H1, name="b", bytes=2, origin=Origin.HAND_PLACED, added=99.0)
    assert store.get(H1) == TitleRecord(H1, "b", 2, Origin.DOWNLOADED, 5.0, 9.0, 2, 7, True)


@pytest.mark.parametrize(
    ("stored", "new", "result"),
    [
        (Origin.DOWNLOADED, Origin.DOWNLOADED, Origin.DOWNLOADED),
        (Origin.DOWNLOADED, Origin.HAND_PLACED, Origin.DOWNLOADED),
        (Origin.HAND_PLACED, Origin.HAND_PLACED, Origin.HAND_PLACED),
        (Origin.HAND_PLACED, Origin.DOWNLOADED, Origin.DOWNLOADED),
    ],
)
def test_upsert_origin(store: RecordStore, stored: Origin, new: Origin, result: Origin) -> None:
    store.upsert_title(H1, name="a", bytes=1, origin=stored, added=5.0)
    store.upsert_title(H1, name="a", bytes=1, origin=new, added=6.0)
    record = store.get(H1)
    assert record is not None
    assert record.origin is result
    assert record.added == 5.0


def test_set_bytes(store: RecordStore) -> None:
    store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    store.upsert_title(H2, name="b", bytes=2, origin=Origin.DOWNLOADED, added=5.0)
    unknown = "f" * 40
    store.set_bytes({H1: 100, H2: 200, unknown: 300})
    assert {h: r.bytes for h, r in store.titles().items()} == {H1: 100, H2: 200}


def test_apply_usage_accumulates_and_keeps_latest(store: RecordStore) -> None:
    store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    store.apply_usage({H1: UsageDelta(hits=1, bytes_served=10, last_served=50.0)})
    store.apply_usage({H1: UsageDelta(hits=2, bytes_served=5, last_served=40.0)})
    store.apply_usage({H1: UsageDelta(hits=4, bytes_served=1, last_served=60.0)})
    record = store.get(H1)
    assert record is not None
    assert (record.hits, record.bytes_served, record.last_served) == (7, 16, 60.0)


def test_apply_usage_creates_missing_rows(store: RecordStore) -> None:
    store.apply_usage(
        {
            H1: UsageDelta(hits=1, bytes_served=10, last_served=50.0),
            H2: UsageDelta(hits=2, bytes_served=20, last_served=70.0),
        }
    )
    assert store.titles() == {
        H1: TitleRecord(H1, "", 0, Origin.DOWNLOADED, 50.0, 50.0, 1, 10, False),
        H2: TitleRecord(H2, "", 0, Origin.DOWNLOADED, 70.0, 70.0, 2, 20, False),
    }
    store.upsert_title(H1, name="found", bytes=9, origin=Origin.HAND_PLACED, added=1.0)
    assert store.get(H1) == TitleRecord(H1, "found", 9, Origin.DOWNLOADED, 50.0, 50.0, 1, 10, False)


def test_set_pinned(store: RecordStore) -> None:
    before = time.time()
    store.set_pinned(H1, True)
    record = store.get(H1)
    assert record is not None
    assert record.pinned
    assert (record.name, record.bytes, record.origin) == ("", 0, Origin.DOWNLOADED)
    assert before <= record.added <= time.time()
    store.set_pinned(H1, False)
    record = store.get(H1)
    assert record is not None
    assert not record.pinned


def test_remove(store: RecordStore) -> None:
    for h in (H1, H2):
        store.upsert_title(h, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    store.remove(iter([H1, "f" * 40]))
    assert list(store.titles()) == [H2]
    store.remove([])
    assert list(store.titles()) == [H2]


def test_closed_store_refuses(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.close()
    store.close()
    with pytest.raises(RuntimeError, match="not open"):
        store.titles()


def test_fresh_db_is_at_latest_version(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert store.created
        assert not store.rebuilt
    finally:
        store.close()
    path = state_db_path(str(tmp_path))
    assert user_version(path) == records.SCHEMA_VERSION == len(records.MIGRATIONS)
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_reopen_does_not_migrate_again(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    store.close()
    store.open()  # a RecordStore can be reopened
    try:
        assert not store.created
        assert list(store.titles()) == [H1]
    finally:
        store.close()
    assert user_version(state_db_path(str(tmp_path))) == records.SCHEMA_VERSION


def test_empty_file_counts_as_created(tmp_path: Path) -> None:
    path = Path(state_db_path(str(tmp_path)))
    path.parent.mkdir()
    path.touch()
    store = open_store(tmp_path)
    try:
        assert store.created
        assert not store.rebuilt
        assert store.titles() == {}
    finally:
        store.close()


def test_newer_schema_is_refused_and_kept(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    store.close()
    path = state_db_path(str(tmp_path))
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {records.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RecordsTooNew, match="schema version"):
        store.open()
    assert user_version(path) == records.SCHEMA_VERSION + 1
    assert corrupt_files(tmp_path) == []


def test_garbage_db_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = Path(state_db_path(str(tmp_path)))
    path.parent.mkdir()
    garbage = os.urandom(10_000)
    path.write_bytes(garbage)
    store = open_store(tmp_path)
    try:
        assert store.rebuilt
        assert not store.created
        assert store.titles() == {}
        store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    finally:
        store.close()
    (aside,) = corrupt_files(tmp_path)
    assert aside.startswith("state.db.corrupt-")
    assert (path.parent / aside).read_bytes() == garbage
    assert "rebuilt from the cache directory" in caplog.text
    assert [r.name for r in caplog.records] == ["streme.cache"]


@pytest.mark.parametrize("titles", [1, 3000])
def test_truncated_db_is_moved_aside(tmp_path: Path, titles: int) -> None:
    store = open_store(tmp_path)
    for i in range(titles):
        store.upsert_title(f"{i:040x}", name="x" * 50, bytes=i, origin=Origin.DOWNLOADED, added=1)
    store.close()
    path = Path(state_db_path(str(tmp_path)))
    assert not Path(f"{path}-wal").exists()  # checkpointed on close: the data is in state.db
    size = path.stat().st_size
    os.truncate(path, size // 2)
    store.open()
    try:
        assert store.rebuilt
        assert store.titles() == {}
    finally:
        store.close()
    (aside,) = corrupt_files(tmp_path)
    assert (path.parent / aside).stat().st_size == size // 2


@pytest.mark.slow
def test_locked_db_is_not_thrown_away(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert_title(H1, name="a", bytes=1, origin=Origin.DOWNLOADED, added=5.0)
    store.close()
    path = state_db_path(str(tmp_path))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("PRAGMA journal_mode = DELETE")
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            store.open()  # after the 5 s busy timeout
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert corrupt_files(tmp_path) == []
    store.open()
    try:
        assert list(store.titles()) == [H1]
    finally:
        store.close()


CHILD = """
import sys, time
from streme.cache.records import Origin, RecordStore, UsageDelta
store = RecordStore(sys.argv[1])
store.open()
store.upsert_title({h!r}, name="kept", bytes=42, origin=Origin.HAND_PLACED, added=1.5)
store.apply_usage({{{h!r}: UsageDelta(hits=3, bytes_served=300, last_served=2.5)}})
print("done", flush=True)
time.sleep(60)
"""


def test_commits_survive_sigkill(tmp_path: Path) -> None:
    code = textwrap.dedent(CHILD.format(h=H1))
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "done\n"
            assert Path(state_db_path(str(tmp_path)) + "-wal").stat().st_size > 0
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    store = open_store(tmp_path)
    try:
        assert not store.rebuilt
        assert store.titles() == {
            H1: TitleRecord(H1, "kept", 42, Origin.HAND_PLACED, 1.5, 2.5, 3, 300, False)
        }
    finally:
        store.close()


def test_prefetches_are_kept_until_they_end(tmp_path: Path, store: RecordStore) -> None:
    asked = records.PrefetchRecord("a" * 40, None, ("udp://t.lan:6969/announce",), 1.5)
    store.add_prefetch(asked)
    store.add_prefetch(records.PrefetchRecord("b" * 40, 3, (), 2.0))
    store.add_prefetch(records.PrefetchRecord("b" * 40, 4, (), 3.0))  # asked again: replaced
    store.close()
    reopened = open_store(tmp_path)  # what a restarted server reads
    try:
        found = sorted(reopened.prefetches(), key=lambda r: r.infohash)
        assert found == [asked, records.PrefetchRecord("b" * 40, 4, (), 3.0)]
        reopened.end_prefetch("a" * 40)
        reopened.end_prefetch("c" * 40)  # unknown: nothing to do
        assert [r.infohash for r in reopened.prefetches()] == ["b" * 40]
    finally:
        reopened.close()
