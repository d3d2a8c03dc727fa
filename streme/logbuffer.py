"""Logging that stays off the request path: records are queued and written in batches.

How this works: at the default level (`info`) every request logs the original server's
lines (three for a cache hit). A plain `StreamHandler` formats each line and writes and
flushes it, on the event loop, inside the request: one 64 KiB range cost three
formatted writes. `install()` sets logging up as `logging.basicConfig` would, but:

- `LogRecord` stops computing what no format here shows: the caller's file and line
  (a walk up the stack), the thread, the process (logging's documented optimisations);
- the one handler is a `BatchingHandler`: `emit` appends the record to a deque and
  returns; a writer thread wakes every `FLUSH_INTERVAL` seconds, formats what gathered
  and writes it with one write and one flush. A WARNING or worse wakes it at once.
  `logging.shutdown` (at exit) writes what is left.

The per-request lines go through a `LineLog` instead of a `logging.Logger`: when the
batching handler is installed, `info` only appends (time, logger name, template, args)
to its queue (~0.4 us; a `LogRecord` alone costs ~5 us), and the writer thread formats
the line as the handler's formatter would. Without it (tests, an embedding program)
`LineLog` logs ordinary records.

Lines keep their format and order; they reach the stream at most `FLUSH_INTERVAL` late
(a `kill -9` loses at most that much). See docs/decisions/0006-http-core.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TextIO

FLUSH_INTERVAL = 0.2  # seconds
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A line queued by `LineLog.info`: (epoch seconds, logger name, template, args).
# (time, logger name, template or templates, args): several templates are several lines.
Line = tuple[float, str, "str | tuple[str, ...]", tuple[object, ...]]


class BatchingHandler(logging.Handler):
    def __init__(self, stream: TextIO, interval: float = FLUSH_INTERVAL, tag: str = "") -> None:
        super().__init__()
        self._stream = stream
        self._tag = f"{tag} " if tag else ""  # after the time: which process wrote the line
        self._interval = interval
        self._pending: deque[logging.LogRecord | Line] = deque()  # appends are thread-safe
        self._second = -1  # the epoch second `_stamp` is for
        self._stamp = ""
        self._wake = threading.Event()
        self._write_lock = threading.Lock()  # the writer thread and flush() at exit
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="streme-log", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle takes the handler's lock around emit; a deque append needs none.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self._pending.append(record)
        if record.levelno >= logging.WARNING:
            self._wake.set()

    def queue_line(self, line: Line) -> None:
        self._pending.append(line)

    def flush(self) -> None:
        """Write every queued record now."""
        with self._write_lock:
            pending = self._pending
            if not pending:
                return
            lines = []
            while pending:
                entry = pending.popleft()
                if isinstance(entry, tuple):
                    lines.append(self._format_line(*entry))
                    continue
                try:
                    lines.append(self.format(entry))
                except Exception:
                    self.handleError(entry)
            try:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # the stream is gone (closed at exit)
                pass

    def _format_line(
        self, created: float, name: str, template: str | tuple[str, ...], args: tuple[object, ...]
    ) -> str:
        """`FORMAT` for INFO lines, as `logging.Formatter` writes them."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((created - second) * 1000)
        prefix = f"{self._stamp},{millis:03d} {self._tag}INFO {name}: "
        if isinstance(template, str):
            return prefix + template % args
        return "\n".join(prefix + line % args for line in template)

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        self.flush()
        super().close()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()


_sink: BatchingHandler | None = None  # the installed handler, if any


class LineLog:
    """INFO lines of a hot path, at the cost of a queue append (see the module doc)."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)
        self._name = name

    def info(self, template: str, *args: object) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        sink = _sink
        if sink is None:
            self._logger.info(template, *args)
        else:
            sink.queue_line((time.time(), self._name, template, args))

    def info_lines(self, templates: tuple[str, ...], *args: object) -> None:
        """Several INFO lines taking the same arguments, queued as one entry."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        sink = _sink
        if sink is None:
            for template in templates:
                self._logger.info(template, *args)
        else:
            sink.queue_line((time.time(), self._name, templates, args))


def install(level: str, stream: TextIO, tag: str = "") -> BatchingHandler:
    """Log records at `level` and above from every logger to `stream`, in batches; `tag`
    (e.g. `[w1]`, with --workers) goes after each line's time."""
    # logging's documented switches for information a format does not use.
    logging._srcfile = None  # no stack walk for the caller's file and line
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = BatchingHandler(stream, tag=tag)
    handler.setFormatter(logging.Formatter(FORMAT.replace(" ", f" {tag} ", 1) if tag else FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    global _sink
    _sink = handler
    return handler
