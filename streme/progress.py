"""A download's progress on the terminal, and sizes in words (`12.3 MiB`).

How this works: `streme fetch` turns the engine's snapshot of its torrent into a
`DownloadProgress` a few times a second and hands it to a reporter. On a terminal
(`stderr.isatty()`) that is `BarReporter`, a rich progress bar (bytes, rate, peers,
time left) redrawn in place; anywhere else (a log file, a pipe, a test) it is
`LineReporter`, which prints one plain line every `interval` seconds:

    fetch <infohash>: 12.3 MiB of 100.0 MiB (12%), 4.1 MiB/s, 3 peers
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:  # rich is imported only when a bar is drawn
    from rich.console import Console
    from rich.progress import Progress, TaskID

SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
LINE_INTERVAL = 2.0  # seconds between two plain progress lines


def format_size(n: float) -> str:
    """Bytes in binary units: `0 B`, `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB`."""
    value = float(n)
    for unit in SIZE_UNITS[:-1]:
        if abs(value) < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {SIZE_UNITS[-1]}"


def format_rate(bytes_per_second: float) -> str:
    return f"{format_size(bytes_per_second)}/s"


def format_duration(seconds: float) -> str:
    """`45 s`, `3 min 05 s`, `2 h 07 min`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def plural(count: int, word: str, words: str = "") -> str:
    """`1 peer`, `3 peers`; `words`: the plural when it is not `word` + s."""
    return f"{count} {word}" if count == 1 else f"{count} {words or word + 's'}"


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """One look at a download: the wanted files' bytes, the rate and peers now."""

    state: str  # "metadata" (waiting for it), "downloading", "complete"
    done: int  # verified bytes of the wanted files
    total: int  # bytes of the wanted files (0 before the metadata)
    rate: int  # payload bytes/s
    peers: int
    name: str = ""

    @property
    def percent(self) -> int:
        """Whole percent done, rounded down (100 only when every byte is here)."""
        return 100 * self.done // self.total if self.total else 0

    @property
    def seconds_left(self) -> float | None:
        if self.rate <= 0 or self.total <= 0:
            return None
        return (self.total - self.done) / self.rate


def progress_line(infohash: str, progress: DownloadProgress) -> str:
    """The plain line: `fetch <ih>: 12.3 MiB of 100.0 MiB (12%), 4.1 MiB/s, 3 peers`."""
    peers = plural(progress.peers, "peer")
    if progress.state == "metadata":
        return f"fetch {infohash}: waiting for the metadata, {peers}"
    done, total = format_size(progress.done), format_size(progress.total)
    return (
        f"fetch {infohash}: {done} of {total} ({progress.percent}%), "
        f"{format_rate(progress.rate)}, {peers}"
    )


class Reporter(Protocol):
    def update(self, progress: DownloadProgress) -> None: ...

    def close(self) -> None: ...


class LineReporter:
    """A plain line to `stream` at the first update, then every `interval` seconds."""

    def __init__(
        self,
        infohash: str,
        stream: TextIO,
        interval: float = LINE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.infohash = infohash
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self._next = 0.0
        self._finished = False

    def update(self, progress: DownloadProgress) -> None:
        now = self.clock()
        if progress.state == "complete":  # once, whenever it comes
            if not self._finished:
                self._print(progress)
            self._finished = True
        elif now >= self._next:
            self._print(progress)
            self._next = now + self.interval

    def _print(self, progress: DownloadProgress) -> None:
        print(progress_line(self.infohash, progress), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarReporter:
    """A rich progress bar on `console` (stderr, a terminal), redrawn in place."""

    def __init__(self, infohash: str, console: Console) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.infohash = infohash
        self._progress: Progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            DownloadColumn(binary_units=True),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[peers]}"),
            TextColumn("{task.fields[left]}"),
            console=console,
        )
        self._task: TaskID = self._progress.add_task(
            infohash[:12], total=None, rate="", peers="", left="waiting for the metadata"
        )
        self._progress.start()

    def update(self, progress: DownloadProgress) -> None:
        left = progress.seconds_left
        if progress.state == "metadata":
            eta = "waiting for the metadata"
        elif progress.state == "complete" or progress.done >= progress.total:
            eta = "done"
        else:
            eta = "ETA " + format_duration(left) if left is not None else "ETA -"
        self._progress.update(
            self._task,
            description=(progress.name or self.infohash)[:32],
            total=progress.total or None,
            completed=progress.done,
            rate=format_rate(progress.rate),
            peers=plural(progress.peers, "peer"),
            left=eta,
        )

    def close(self) -> None:
        self._progress.stop()
