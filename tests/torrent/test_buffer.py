import asyncio

import pytest

from streme.torrent.buffer import BufferAborted, ByteBuffer


async def test_order_and_end() -> None:
    buf = ByteBuffer(10)
    await buf.put(b"abc")
    await buf.put(b"def")
    buf.close()
    assert [await buf.get(), await buf.get(), await buf.get()] == [b"abc", b"def", None]


async def test_backpressure_bounds_memory() -> None:
    buf = ByteBuffer(100)
    produced = 0

    async def producer() -> None:
        nonlocal produced
        for _ in range(50):
            await buf.put(b"x" * 30)
            produced += 1
        buf.close()

    task = asyncio.create_task(producer())
    await asyncio.sleep(0.01)
    assert produced == 3  # 90 bytes buffered; the 4th chunk would pass the bound
    received = 0
    while (chunk := await buf.get()) is not None:
        received += len(chunk)
        await asyncio.sleep(0)  # a slow consumer
    await task
    assert received == 1500
    assert buf.statistics().peak_bytes <= 100


async def test_oversized_chunk_admitted_alone() -> None:
    buf = ByteBuffer(10)
    await buf.put(b"y" * 50)
    assert buf.statistics().peak_bytes == 50
    put = asyncio.create_task(buf.put(b"z"))
    await asyncio.sleep(0.01)
    assert not put.done()
    assert await buf.get() == b"y" * 50
    await asyncio.sleep(0.01)
    assert not put.done()  # the big chunk is being written: still in memory
    assert await buf.get() == b"z"  # asking for the next one releases it
    assert put.done()


async def test_chunk_being_written_counts() -> None:
    buf = ByteBuffer(100)
    for _ in range(3):
        await buf.put(b"x" * 30)
    first = await buf.get()  # handed to the writer, not written yet
    assert first == b"x" * 30
    put = asyncio.create_task(buf.put(b"y" * 30))
    await asyncio.sleep(0.01)
    assert not put.done()  # 90 bytes queued or being written; 30 more would pass 100
    assert buf.statistics().current_bytes == 90
    assert await buf.get() == b"x" * 30  # the first one is written now
    await asyncio.wait_for(put, 1)
    assert buf.statistics().peak_bytes <= 100


async def test_abort_wakes_both_sides() -> None:
    buf = ByteBuffer(1)
    await buf.put(b"a")
    blocked_put = asyncio.create_task(buf.put(b"b"))
    await asyncio.sleep(0)
    buf.abort(RuntimeError("client left"))
    with pytest.raises(BufferAborted, match="client left"):
        await blocked_put
    with pytest.raises(BufferAborted):
        await buf.get()


def test_size_is_required() -> None:
    with pytest.raises(ValueError, match="positive"):
        ByteBuffer(0)
