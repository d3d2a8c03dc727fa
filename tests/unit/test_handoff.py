"""The hand-off channel and the worker rules, on real sockets (no HTTP)."""

from __future__ import annotations

import asyncio
import socket

from streme.handoff import HandoffReceiver, HandoffSender, socket_pair
from streme.workers import RESTART_MAX_DELAY, restart_delay, worker_count


async def test_a_connection_and_its_bytes_cross_to_the_other_process_end() -> None:
    loop = asyncio.get_running_loop()
    adopted: asyncio.Queue[tuple[socket.socket, bytes]] = asyncio.Queue()
    ready = asyncio.Event()
    engine_end, worker_end = socket_pair()
    receiver = HandoffReceiver(loop, lambda sock, data: adopted.put_nowait((sock, data)))
    receiver.add(engine_end, ready.set)
    sender = HandoffSender(worker_end)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        sender.ready()
        await asyncio.wait_for(ready.wait(), 5)
        sender.send(accepted.fileno(), b"GET / HTTP/1.1\r\n")
        accepted.close()  # the worker forgets it: the connection stays open
        sock, data = await asyncio.wait_for(adopted.get(), 5)
        assert data == b"GET / HTTP/1.1\r\n"
        assert sock.getpeername() == client.getsockname()
        sock.setblocking(True)
        sock.sendall(b"answered by the other end")
        assert client.recv(100) == b"answered by the other end"
        sock.close()
        client.close()
    assert (sender.sent, receiver.received) == (1, 1)
    sender.close()
    receiver.close()


async def test_the_worker_sees_the_engine_go_away() -> None:
    loop = asyncio.get_running_loop()
    engine_end, worker_end = socket_pair()
    sender = HandoffSender(worker_end)
    gone = asyncio.Event()
    sender.watch_end(loop, gone.set)
    engine_end.close()
    await asyncio.wait_for(gone.wait(), 5)
    sender.close()


def test_restart_delay_doubles_up_to_a_cap() -> None:
    assert [restart_delay(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert restart_delay(30) == RESTART_MAX_DELAY


def test_worker_count() -> None:
    assert worker_count(3) == 3
    assert worker_count("auto") >= 1
