"""A worker process of `streme serve --workers N`: started by workers.py, never by hand.

It serves the port beside the first process (`SO_REUSEPORT`) with its own event loop
and cache index, answers cache hits, and hands each request that needs the swarm,
connection and all, to the first process (handoff.py). It stops on SIGTERM or SIGINT
(finishing in-flight responses), or when the first process goes away.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import uvloop

from streme import logbuffer
from streme.app import SWITCH_INTERVAL, App
from streme.config import Config
from streme.descriptors import raise_limit
from streme.handoff import HandoffSender
from streme.memory import return_large_blocks
from streme.workers import CHANNEL_ENV, CONFIG_ENV, NUMBER_ENV, worker_settings


async def serve_worker(config: Config, number: int, channel: socket.socket) -> int:
    handoff = HandoffSender(channel)
    app = App(config, worker=number, handoff=handoff)
    await app.start()
    handoff.ready()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    handoff.watch_end(loop, stop.set)
    await stop.wait()
    await app.stop()
    handoff.close()
    return 0


def main() -> int:
    number = int(os.environ[NUMBER_ENV])
    channel = socket.socket(fileno=int(os.environ[CHANNEL_ENV]))
    config = worker_settings(os.environ[CONFIG_ENV])
    logbuffer.install(config.log.level, sys.stderr, tag=f"[w{number}]")
    sys.setswitchinterval(SWITCH_INTERVAL)
    return_large_blocks()
    raise_limit()
    return uvloop.run(serve_worker(config, number, channel))


if __name__ == "__main__":
    sys.exit(main())
