"""Batched logging (streme/logbuffer.py): same lines, same order, written off the caller."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterator

import pytest

from streme import logbuffer

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) streme\.[a-z]+: .+$")


@pytest.fixture
def installed() -> Iterator[tuple[logbuffer.BatchingHandler, io.StringIO]]:
    """`install` into a StringIO; the logging set-up pytest had is put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    switches = (logging._srcfile, logging.logThreads, logging.logProcesses)
    stream = io.StringIO()
    for handler in handlers:
        root.removeHandler(handler)
    handler = logbuffer.install("info", stream)
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)
        handler.close()
        logbuffer._sink = None
        for old in handlers:
            root.addHandler(old)
        root.setLevel(level)
        logging._srcfile, logging.logThreads, logging.logProcesses = switches


def test_lines_and_records_keep_their_order_and_format(
    installed: tuple[logbuffer.BatchingHandler, io.StringIO],
) -> None:
    handler, stream = installed
    lines = logbuffer.LineLog("streme.stream")
    lines.info("Checking for cached file for %s", "ab" * 20)
    logging.getLogger("streme.cache").info("cache index: %d infohash(es)", 3)
    lines.info("Using cached file for %s - no P2P needed", "ab" * 20)
    assert stream.getvalue() == ""  # nothing written on the caller's thread
    handler.flush()
    written = stream.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in written] == [
        f"Checking for cached file for {'ab' * 20}",
        "cache index: 3 infohash(es)",
        f"Using cached file for {'ab' * 20} - no P2P needed",
    ]
    assert all(LINE.match(line) for line in written), written


def test_a_queued_line_looks_like_a_formatted_record(
    installed: tuple[logbuffer.BatchingHandler, io.StringIO],
) -> None:
    handler, stream = installed
    record = logging.LogRecord("streme.stream", logging.INFO, "", 0, "x %s", ("y",), None)
    expected = logging.Formatter(logbuffer.FORMAT).format(record)
    logbuffer.LineLog("streme.stream").info("x %s", "y")
    handler.flush()
    (got,) = stream.getvalue().splitlines()
    # Same layout; the timestamps differ by the microseconds between the two.
    assert got.split(" ", 2)[2] == expected.split(" ", 2)[2]
    assert len(got) == len(expected)


def test_the_writer_thread_writes_within_the_interval(
    installed: tuple[logbuffer.BatchingHandler, io.StringIO],
) -> None:
    _, stream = installed
    logbuffer.LineLog("streme.stream").info("queued %d", 1)
    deadline = time.monotonic() + 10 * logbuffer.FLUSH_INTERVAL
    while "queued 1" not in stream.getvalue():
        assert time.monotonic() < deadline, "the writer thread never wrote"
        time.sleep(0.01)


def test_a_disabled_level_queues_nothing(
    installed: tuple[logbuffer.BatchingHandler, io.StringIO],
) -> None:
    handler, stream = installed
    logging.getLogger().setLevel(logging.WARNING)
    logbuffer.LineLog("streme.stream").info("not %s", "this")
    logging.getLogger("streme.http").warning("but %s", "this")
    handler.flush()
    assert "not this" not in stream.getvalue()
    assert "but this" in stream.getvalue()


def test_without_the_handler_lines_are_ordinary_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streme.stream")
    logbuffer.LineLog("streme.stream").info("Found cached video file for %s", "cd" * 20)
    assert caplog.messages == [f"Found cached video file for {'cd' * 20}"]


def test_several_lines_queued_as_one_are_written_as_several(
    installed: tuple[logbuffer.BatchingHandler, io.StringIO],
) -> None:
    handler, stream = installed
    log = logbuffer.LineLog("streme.stream")
    log.info("before %s", "x")
    log.info_lines(("one %s", "two %s", "three %s"), "y")
    log.info("after %s", "z")
    handler.flush()
    got = stream.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in got] == [
        "before x",
        "one y",
        "two y",
        "three y",
        "after z",
    ]
    assert all(LINE.match(line) for line in got)


def test_several_lines_without_the_handler_are_ordinary_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streme.stream")
    logbuffer.LineLog("streme.stream").info_lines(("a %s", "b %s"), "c")
    assert caplog.messages == ["a c", "b c"]


def test_a_tag_goes_after_the_time() -> None:
    stream = io.StringIO()
    handler = logbuffer.BatchingHandler(stream, tag="[w1]")
    handler.setFormatter(logging.Formatter(logbuffer.FORMAT))
    handler.queue_line((time.time(), "streme.stream", "x %s", ("y",)))
    handler.flush()
    handler.close()
    (line,) = stream.getvalue().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[w1\] INFO streme\.stream: x y$", line)
