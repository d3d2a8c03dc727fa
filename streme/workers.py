"""`--workers N`: N processes serving one port, one of them owning the swarm.

How this works:
- The first process (the one `streme serve` started) runs everything `App` runs: the
  cache index, the usage records, the sweep, the libtorrent session, and an HTTP server
  bound with `SO_REUSEPORT`. It then starts N-1 worker processes (`python -m
  streme.worker`), each binding the same port with `SO_REUSEPORT`: the kernel spreads
  new connections over the N listening sockets.
- A worker has its own event loop and cache index and answers cache hits (and every
  request that needs no swarm). A request that needs the swarm is handed, with its
  connection, to the first process (handoff.py), so there is one libtorrent session per
  machine and no response byte is copied between processes.
- The worker gets its settings as JSON in the environment (the port the first process
  bound, so `--port 0` works), its number (for `[wN]` on its log lines and `/health`),
  and its end of a socketpair as an inherited descriptor.
- A worker that exits unexpectedly is started again (after 0.5 s, doubling up to 10 s
  while it keeps failing within 10 s of its start). At shutdown each worker gets SIGTERM
  and finishes its in-flight responses like the first process; one still running after
  `shutdown_timeout` + 5 s is killed. A worker whose first process dies sees its end of
  the socketpair close and shuts down too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys

import msgspec

from streme.config import Config
from streme.handoff import HandoffReceiver, socket_pair

log = logging.getLogger("streme.workers")

NUMBER_ENV = "STREME_WORKER_NUMBER"
CHANNEL_ENV = "STREME_WORKER_CHANNEL_FD"
CONFIG_ENV = "STREME_WORKER_CONFIG"
RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 10.0
HEALTHY_AFTER = 10.0  # seconds of running that reset the restart delay
KILL_GRACE = 5.0
READY_TIMEOUT = 30.0


def worker_count(setting: int | str) -> int:
    """`http.workers` as a number: "auto" is the cores this process may run on."""
    if setting == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return int(setting)


def restart_delay(failures: int) -> float:
    """Seconds before starting a worker again after `failures` quick exits in a row."""
    if failures <= 0:
        return 0.0
    return float(min(RESTART_MAX_DELAY, RESTART_FIRST_DELAY * 2 ** (failures - 1)))


class Workers:
    """Starts workers 1..count-1 and keeps them running until `stop()`."""

    def __init__(self, config: Config, count: int, receiver: HandoffReceiver) -> None:
        self._config = config
        self._count = count
        self._receiver = receiver
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: dict[int, asyncio.Event] = {}
        self._stopping = False
        self.restarts = 0

    @property
    def pids(self) -> dict[int, int]:
        """Worker number -> pid, for the workers running now."""
        return {n: p.pid for n, p in self._procs.items()}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for number in range(1, self._count):
            self._ready[number] = asyncio.Event()
            self._tasks.append(loop.create_task(self._keep_running(number)))
        # Until each worker serves the port (one that exits first is started again).
        waiting = asyncio.gather(*(event.wait() for event in self._ready.values()))
        try:
            await asyncio.wait_for(waiting, READY_TIMEOUT)
        except TimeoutError:
            late = [n for n, event in self._ready.items() if not event.is_set()]
            log.error("worker(s) %s not serving after %.0f s; going on", late, READY_TIMEOUT)

    async def _keep_running(self, number: int) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping:
            proc, channel = await self._spawn(number)
            began = loop.time()
            status = await proc.wait()
            self._receiver.remove(channel)
            self._procs.pop(number, None)
            if self._stopping:
                return
            ran = loop.time() - began
            failures = failures + 1 if ran < HEALTHY_AFTER else 1
            delay = restart_delay(failures)
            log.error(
                "worker %d (pid %d) exited with status %d after %.1f s; restarting in %.1f s",
                number,
                proc.pid,
                status,
                ran,
                delay,
            )
            self.restarts += 1
            await asyncio.sleep(delay)

    async def _spawn(self, number: int) -> tuple[asyncio.subprocess.Process, socket.socket]:
        engine_end, worker_end = socket_pair()
        config = self._config
        settings = msgspec.json.encode(config).decode()
        env = {
            **os.environ,
            NUMBER_ENV: str(number),
            CHANNEL_ENV: str(worker_end.fileno()),
            CONFIG_ENV: settings,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "streme.worker", pass_fds=(worker_end.fileno(),), env=env
            )
        except BaseException:
            engine_end.close()
            raise
        finally:
            worker_end.close()
        self._receiver.add(engine_end, self._ready[number].set)
        self._procs[number] = proc
        return proc, engine_end

    async def stop(self, grace: float) -> None:
        """SIGTERM every worker; kill the ones still running after `grace` + 5 s."""
        self._stopping = True
        procs = list(self._procs.values())
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        waiting = [asyncio.ensure_future(proc.wait()) for proc in procs]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=grace + KILL_GRACE)
            if late:
                log.warning("killing %d worker(s) still running", len(late))
                for proc in procs:
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                await asyncio.wait(waiting, timeout=KILL_GRACE)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._receiver.close()


def worker_settings(raw: str) -> Config:
    """The settings a worker was started with (`CONFIG_ENV`)."""
    return msgspec.json.decode(raw, type=Config)
