"""UsageRecorder on a real sqlite file: counting on the loop, writing on its own thread."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from streme.cache.records import Origin, RecordStore, TitleRecord, UsageRecorder

H1 = "0123456789abcdef0123456789abcdef01234567"
H2 = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[UsageRecorder]:
    recorder = UsageRecorder(RecordStore(str(tmp_path)), flush_interval=3600)
    await recorder.start()
    yield recorder
    await recorder.stop()


async def get(recorder: UsageRecorder, infohash: str) -> TitleRecord | None:
    return await recorder.run(lambda store: store.get(infohash))


async def eventually(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll `predicate` until it holds, failing after `seconds`."""
    for _ in range(int(seconds / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    assert predicate(), "condition not met in time"


async def eventual_row(recorder: UsageRecorder, infohash: str) -> TitleRecord:
    """Poll the store until `infohash` has a row (bounded)."""
    for _ in range(2000):
        record = await get(recorder, infohash)
        if record is not None:
            return record
        await asyncio.sleep(0.005)
    raise AssertionError(f"no row for {infohash} in time")


async def test_served_then_flush_sums_into_one_row(recorder: UsageRecorder) -> None:
    assert recorder.store_rebuilt  # a new db: the caller must fill it from the directory
    for i in range(1000):
        recorder.served(H1, 10, now=100.0 + i)
    recorder.served(H1, 5, now=50.0)  # out of order: last_served stays the latest
    await recorder.flush()
    assert await recorder.run(RecordStore.titles) == {
        H1: TitleRecord(H1, "", 0, Origin.DOWNLOADED, 1099.0, 1099.0, 1001, 10_005, False)
    }
    recorder.served(H1, 1, now=2000.0)
    await recorder.flush()
    await recorder.flush()  # nothing pending: no-op
    record = await get(recorder, H1)
    assert record is not None
    assert (record.hits, record.bytes_served, record.last_served) == (1002, 10_006, 2000.0)


async def test_served_defaults_to_now(recorder: UsageRecorder) -> None:
    before = time.time()
    recorder.served(H1, 1)
    await recorder.flush()
    record = await get(recorder, H1)
    assert record is not None
    assert record.last_served is not None
    assert before <= record.last_served <= time.time()


async def test_stop_flushes_pending(tmp_path: Path) -> None:
    recorder = UsageRecorder(RecordStore(str(tmp_path)), flush_interval=3600)
    await recorder.start()
    recorder.served(H1, 7, now=1.0)
    recorder.served(H2, 8, now=2.0)
    await recorder.stop()
    await recorder.stop()  # idempotent
    store = RecordStore(str(tmp_path))
    store.open()
    try:
        assert {h: (r.hits, r.bytes_served) for h, r in store.titles().items()} == {
            H1: (1, 7),
            H2: (1, 8),
        }
    finally:
        store.close()
    restarted = UsageRecorder(RecordStore(str(tmp_path)))
    await restarted.start()
    try:
        assert not restarted.store_rebuilt
    finally:
        await restarted.stop()


async def test_run_uses_one_worker_thread(recorder: UsageRecorder) -> None:
    loop_thread = threading.get_ident()
    first = await recorder.run(lambda _: threading.get_ident())
    second = await recorder.run(lambda _: threading.get_ident())
    assert first == second != loop_thread
    name = await recorder.run(lambda _: threading.current_thread().name)
    assert name.startswith("streme-records")


async def test_periodic_flush(tmp_path: Path) -> None:
    recorder = UsageRecorder(RecordStore(str(tmp_path)), flush_interval=0.01)
    await recorder.start()
    try:
        recorder.served(H1, 3, now=1.0)
        record = await eventual_row(recorder, H1)  # no flush() call
        assert (record.hits, record.bytes_served) == (1, 3)
    finally:
        await recorder.stop()


async def test_failed_flush_keeps_the_batch(recorder: UsageRecorder) -> None:
    recorder.served(H1, 1, now=10.0)
    await recorder.run(RecordStore.close)  # every store call now fails
    with pytest.raises(RuntimeError, match="not open"):
        await recorder.flush()
    recorder.served(H1, 2, now=20.0)
    recorder.served(H2, 4, now=5.0)
    await recorder.run(RecordStore.open)
    await recorder.flush()
    titles = await recorder.run(RecordStore.titles)
    assert {h: (r.hits, r.bytes_served, r.last_served) for h, r in titles.items()} == {
        H1: (2, 3, 20.0),
        H2: (1, 4, 5.0),
    }


async def test_failed_periodic_flush_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: handled.append(context))
    recorder = UsageRecorder(RecordStore(str(tmp_path)), flush_interval=0.01)
    await recorder.start()
    try:
        await recorder.run(RecordStore.close)
        recorder.served(H1, 1, now=10.0)
        with caplog.at_level(logging.WARNING, logger="streme.cache"):
            await eventually(lambda: len(caplog.records) >= 2)
        assert all("kept for the next try" in r.getMessage() for r in caplog.records)
        assert caplog.records[0].exc_info  # the first failure has a traceback
        assert not caplog.records[1].exc_info  # the repeats don't
        recorder.served(H1, 1, now=20.0)
        await recorder.run(RecordStore.open)
        record = await eventual_row(recorder, H1)
        assert (record.hits, record.bytes_served, record.last_served) == (2, 2, 20.0)
    finally:
        await recorder.stop()
    assert handled == []


async def test_cancelled_flush_loses_nothing(recorder: UsageRecorder) -> None:
    release = threading.Event()
    blocked = asyncio.ensure_future(recorder.run(lambda _: release.wait(10)))
    recorder.served(H1, 1, now=1.0)
    flush = asyncio.ensure_future(recorder.flush())
    await asyncio.sleep(0)
    flush.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flush
    release.set()
    await blocked
    await recorder.flush()  # after the cancelled one's batch has landed: nothing doubled
    record = await get(recorder, H1)
    assert record is not None
    assert (record.hits, record.bytes_served) == (1, 1)


async def test_not_started(tmp_path: Path) -> None:
    recorder = UsageRecorder(RecordStore(str(tmp_path)))
    recorder.served(H1, 1, now=1.0)
    with pytest.raises(RuntimeError, match="not started"):
        await recorder.flush()
    with pytest.raises(RuntimeError, match="not started"):
        await recorder.run(RecordStore.titles)
    await recorder.stop()  # a no-op
    await recorder.start()
    await recorder.stop()  # the kept batch lands on stop
    store = RecordStore(str(tmp_path))
    store.open()
    try:
        assert list(store.titles()) == [H1]
    finally:
        store.close()
