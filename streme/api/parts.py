"""What the API reads and drives: the server's parts, handed over by the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streme.cache.index import CacheIndex
from streme.cache.records import UsageRecorder
from streme.cache.sweep import CacheSweeper
from streme.config import Config
from streme.handlers import StreamHandlers
from streme.stats import StatsSnapshot

if TYPE_CHECKING:
    from streme.torrent.engine import Engine


@dataclass
class Parts:
    config: Config
    index: CacheIndex
    recorder: UsageRecorder
    sweeper: CacheSweeper
    handlers: StreamHandlers  # the stream route's counters and the titles it is serving
    engine: Engine | None  # None: P2P is off
    started: float  # time.time() at start
    processes: int = 1  # serving the port (--workers)
    # The other processes' latest counters (--workers), newest first.
    worker_stats: Callable[[], list[StatsSnapshot]] = field(default=lambda: [])

    @property
    def cache_root(self) -> str:
        return self.index.root
