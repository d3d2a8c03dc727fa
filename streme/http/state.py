"""What every connection of one server shares: config, router, the live connections and
their cap, and a Date header rebuilt at most once a second.

`HTTPProtocol` (protocol.py) takes this at construction; `HTTPServer` (server.py) makes
it and walks its connections at shutdown. Connections are typed by what the server
needs of them (`Connection`), so this module imports neither.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Mapping
from typing import Protocol

from streme.config import HTTPConfig
from streme.descriptors import connection_cap
from streme.http.connection import Limits
from streme.http.dates import format_http_date
from streme.http.messages import Handler
from streme.http.routing import Router


class Connection(Protocol):
    def shutdown(self) -> None:
        """Close now if idle, else after the response in flight."""

    def abort(self) -> None:
        """Close now."""


class HandoffChannel(Protocol):
    def send(self, fd: int, data: bytes) -> None:
        """Give the connection `fd`, and the bytes read from it, to the engine's process."""


class ServerState:
    def __init__(
        self,
        config: HTTPConfig,
        router: Router[Handler],
        loop: asyncio.AbstractEventLoop,
        handoff: HandoffChannel | None = None,
        uploads: Mapping[str, int] | None = None,
    ) -> None:
        self.config = config
        self.handoff = handoff  # set in a worker process (--workers N)
        self.handed_off = 0
        self.router = router
        self.loop = loop
        self.limits = Limits(
            max_head_bytes=config.max_head_bytes,
            max_body_bytes=config.max_body_bytes,
            max_requests=config.max_requests_per_connection,
            head_timeout=config.request_head_timeout,
            idle_timeout=config.keep_alive_timeout,
            uploads=dict(uploads or {}),
        )
        self.connections: set[Connection] = set()
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.max_connections = connection_cap(config.max_connections, soft_limit)
        self.refused = 0  # connections answered 503 for being past the cap
        self.all_closed = asyncio.Event()
        self.all_closed.set()
        self._date_second = -1
        self._date = b""

    def admit(self, protocol: Connection) -> bool:
        """Count a new connection in; False when it is past `max_connections`."""
        if len(self.connections) >= self.max_connections:
            self.refused += 1
            return False
        self.connections.add(protocol)
        self.all_closed.clear()
        return True

    def discard(self, protocol: Connection) -> None:
        self.connections.discard(protocol)
        if not self.connections:
            self.all_closed.set()

    def date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = format_http_date(now).encode("ascii")
        return self._date
