"""The records follow the directory: `reconcile` against a real store and a real scan."""

from __future__ import annotations

import os
from pathlib import Path

from streme.cache.records import Origin, RecordStore, UsageDelta
from streme.cache.sweep import candidate, reconcile
from streme.cache.usage import mark_downloaded, scan_titles

HAND = "a" * 40
DOWNLOADED = "b" * 40
PARTIAL = "c" * 40
PINNED_GONE = "d" * 40
GONE = "e" * 40


def build(root: Path) -> None:
    (root / f"{HAND}-film.mp4").write_bytes(b"x" * 5000)
    (root / DOWNLOADED).mkdir()
    (root / DOWNLOADED / "movie.mp4").write_bytes(b"y" * 7000)
    mark_downloaded(str(root), DOWNLOADED)
    (root / ".incomplete" / PARTIAL).mkdir(parents=True)
    (root / ".incomplete" / PARTIAL / "part.mkv").write_bytes(b"z" * 3000)


def test_reconcile_adds_what_appeared_and_drops_what_vanished(tmp_path: Path) -> None:
    build(tmp_path)
    store = RecordStore(str(tmp_path))
    store.open()
    try:
        for infohash in (PINNED_GONE, GONE):
            store.upsert_title(infohash, name="old", bytes=1, origin=Origin.DOWNLOADED, added=1.0)
        store.set_pinned(PINNED_GONE, True)
        records = reconcile(store, scan_titles(str(tmp_path)))
        assert set(records) == {HAND, DOWNLOADED, PARTIAL, PINNED_GONE}  # GONE dropped
        assert records[HAND].origin is Origin.HAND_PLACED
        assert records[HAND].name == f"{HAND}-film.mp4"
        assert records[DOWNLOADED].origin is Origin.DOWNLOADED  # its marker says so
        assert records[PARTIAL].origin is Origin.DOWNLOADED  # only streme writes .incomplete
        assert records[PINNED_GONE].pinned  # a pin outlives the data
        titles = scan_titles(str(tmp_path))
        assert all(records[ih].bytes == t.bytes > 0 for ih, t in titles.items())
        assert store.titles() == records  # and it was written, not only computed
        # The file goes; the next reconcile forgets it.
        os.unlink(tmp_path / f"{HAND}-film.mp4")
        assert HAND not in reconcile(store, scan_titles(str(tmp_path)))
    finally:
        store.close()


def test_candidate_uses_last_served_else_added(tmp_path: Path) -> None:
    build(tmp_path)
    store = RecordStore(str(tmp_path))
    store.open()
    try:
        titles = scan_titles(str(tmp_path))
        records = reconcile(store, titles)
        never = candidate(titles[HAND], records[HAND], set())
        assert never.last_used == records[HAND].added
        assert not never.downloaded
        assert never.published
        store.apply_usage({DOWNLOADED: UsageDelta(hits=1, bytes_served=10, last_served=1e9)})
        records = store.titles()
        served = candidate(titles[DOWNLOADED], records[DOWNLOADED], {DOWNLOADED})
        assert served.last_used == 1e9
        assert served.in_use
        assert served.downloaded
        partial = candidate(titles[PARTIAL], records[PARTIAL], set())
        assert not partial.published
    finally:
        store.close()
