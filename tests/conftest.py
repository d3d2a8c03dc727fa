"""Shared fixtures: a real streme server on loopback, in a thread with its own uvloop.

The server runs in-process so tests can look inside it (open fds, live tasks and
connections) while clients talk to it over real sockets. `server` runs every test twice:
once with the zero-copy (sendfile) body path and once with the copying fallback.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import uvloop

from streme.app import App
from streme.config import build_config

if TYPE_CHECKING:
    from tests.torrent.peers import Tracker

T = TypeVar("T")

INFOHASH = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class RunningServer:
    app: App
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    cache_dir: Path
    errors: list[dict[str, Any]]

    @property
    def port(self) -> int:
        return self.app.server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop thread and return its result."""

        async def runner() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(timeout=10)

    def task_count(self) -> int:
        """Tasks on the server loop, minus the runner and the app's long-lived services
        (named `service:...`: the cache sweep, the records' flush)."""

        def count() -> int:
            tasks = asyncio.all_tasks(self.loop)
            return sum(1 for t in tasks if not t.get_name().startswith("service:")) - 1

        return self.call(count)

    def connection_count(self) -> int:
        return self.call(lambda: self.app.server.connection_count)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.app.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def start_server(
    cache_dir: Path,
    cache: dict[str, Any] | None = None,
    p2p: dict[str, Any] | None = None,
    api: dict[str, Any] | None = None,
    **http: Any,
) -> RunningServer:
    cli = {
        "http": {"port": 0, **http},
        "cache": {"dir": str(cache_dir), **(cache or {})},
        "p2p": p2p or {"enabled": False},
        "api": api or {},
        "log": {"level": "info"},
    }
    config = build_config(environ={}, cli=cli)
    loop = uvloop.new_event_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    app = App(config)
    thread = threading.Thread(target=loop.run_forever, name="streme-test-server", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(app.start(), loop).result(timeout=30)
    return RunningServer(app, loop, thread, cache_dir, errors)


@pytest.fixture(scope="session")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    """One opentracker on 127.0.0.1 for the whole session, where the P2P tests' seeders
    announce and their servers find them (`Tracker.allow` adds an infohash to its
    whitelist). Shared by tests/torrent and tests/e2e; imported here, not at the top, so
    the tests without P2P do not load libtorrent."""
    from tests.torrent.peers import run_tracker

    yield from run_tracker(tmp_path_factory.mktemp("tracker") / "home")


@pytest.fixture(params=[True, False], ids=["zerocopy", "copy"])
def zero_copy(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    path = tmp_path / "cache"
    path.mkdir()
    return path


@pytest.fixture
def make_server(cache_dir: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def make(
        cache: dict[str, Any] | None = None,
        p2p: dict[str, Any] | None = None,
        api: dict[str, Any] | None = None,
        **http: Any,
    ) -> RunningServer:
        srv = start_server(cache_dir, cache, p2p, api, **http)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
        assert not srv.errors, f"the server loop's exception handler fired: {srv.errors}"


@pytest.fixture
def server(make_server: Callable[..., RunningServer], zero_copy: bool) -> RunningServer:
    return make_server(zero_copy=zero_copy)


def write_video(cache_dir: Path, name: str, size: int, seed: int = 0) -> bytes:
    """Write `size` pseudo-random bytes to cache_dir/name and return them."""
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    if seed:
        data = bytes((b + seed) % 256 for b in data[:4096]) + data[4096:]
    (cache_dir / name).write_bytes(data)
    return data


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `predicate` (from a test thread, never the server loop) until true or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))
