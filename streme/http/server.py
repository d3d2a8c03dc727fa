"""The listening server: start, and graceful shutdown.

How this works: `HTTPServer.start()` binds with `loop.create_server`, one `HTTPProtocol`
per connection sharing a `ServerState` (state.py: config, router, the live connections
and their cap, the Date header). `shutdown()` stops accepting, closes idle connections,
lets in-flight responses finish for up to `shutdown_timeout`, then aborts what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping

from streme.config import HTTPConfig
from streme.http.messages import Handler
from streme.http.protocol import HTTPProtocol
from streme.http.routing import Router
from streme.http.state import HandoffChannel, ServerState

log = logging.getLogger("streme.http")


class HTTPServer:
    def __init__(
        self,
        config: HTTPConfig,
        router: Router[Handler],
        *,
        reuse_port: bool = False,
        handoff: HandoffChannel | None = None,
        uploads: Mapping[str, int] | None = None,
    ) -> None:
        self.config = config
        self.uploads = dict(uploads or {})  # POST path -> its body cap (bytes)
        self.router = router
        self.reuse_port = reuse_port  # other processes listen on the same port
        self.handoff = handoff
        self._server: asyncio.Server | None = None
        self._state: ServerState | None = None
        self._adopting: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        state = ServerState(self.config, self.router, loop, self.handoff, self.uploads)
        self._state = state
        self._server = await loop.create_server(
            lambda: HTTPProtocol(state),
            host=self.config.host,
            port=self.config.port,
            backlog=self.config.backlog,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
        )

    def adopt(self, sock: socket.socket, data: bytes) -> None:
        """Serve a connection accepted by another process, `data` being what it read."""
        state = self._state
        if state is None or self._server is None:
            sock.close()
            return
        loop = state.loop
        task = loop.create_task(
            loop.connect_accepted_socket(lambda: HTTPProtocol(state, preloaded=data), sock)
        )
        self._adopting.add(task)
        task.add_done_callback(self._adopted)

    def _adopted(self, task: asyncio.Task[object]) -> None:
        self._adopting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not take over a connection: %s", task.exception())

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def urls(self) -> list[str]:
        assert self._server is not None
        out = []
        for sock in self._server.sockets:
            host, port = sock.getsockname()[:2]
            out.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
        return out

    @property
    def connection_count(self) -> int:
        return 0 if self._state is None else len(self._state.connections)

    @property
    def handed_off(self) -> int:
        """Connections this (worker) process gave to the engine's process."""
        return 0 if self._state is None else self._state.handed_off

    async def shutdown(self) -> None:
        if self._server is None or self._state is None:
            return
        self._server.close()
        connections = self._state.connections
        for protocol in list(connections):
            protocol.shutdown()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._state.all_closed.wait(), self.config.shutdown_timeout)
        if connections:
            log.warning("aborting %d connection(s) still busy at shutdown", len(connections))
            for protocol in list(connections):
                protocol.abort()
            await asyncio.sleep(0)
        await self._server.wait_closed()
        self._server = None
