"""A player that gives up on a swarm stream (every seek aborts its previous request) is seen
at once, while the stream waits for pieces: not at the stream's next write, which behind a
slow seeder comes seconds later, its deadlines meanwhile competing with the request that
replaced it."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.client import read_head
from tests.conftest import RunningServer, wait_until
from tests.torrent.peers import Tracker
from tests.torrent.swarm import Seeder, make_seeder, p2p_settings, random_bytes
from tests.torrent.test_p2p_stream import snapshot

# 8 KiB/s: a 64 KiB piece takes 8 s, so the stream writes nothing for longer than the
# test waits for the server to notice.
UPLOAD_LIMIT = 8 * 1024


@pytest.fixture
def slow_seeder(tmp_path: Path, tracker: Tracker) -> Iterator[Seeder]:
    files = {"movie.mp4": random_bytes(2 * 1024 * 1024, 3)}
    seed = make_seeder(tmp_path / "seed", files, upload_limit=UPLOAD_LIMIT, tracker=tracker)
    yield seed
    seed.stop()


def open_stream(server: RunningServer, infohash: str) -> socket.socket:
    """A GET of the stream, its response head read; the body has not begun."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(f"GET /stream/proxy/{infohash} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head, _ = read_head(sock)
    assert head.startswith(b"HTTP/1.1 200 OK")
    return sock


def half_close(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_WR)  # FIN: what Chromium sends when it drops a request


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST


@pytest.mark.parametrize("leave", [half_close, reset], ids=["half-close", "reset"])
def test_a_client_leaving_a_waiting_stream_withdraws_its_reader(
    make_server: Callable[..., RunningServer],
    slow_seeder: Seeder,
    tracker: Tracker,
    leave: Callable[[socket.socket], None],
) -> None:
    server = make_server(p2p=p2p_settings(tracker))
    sock = open_stream(server, slow_seeder.infohash)
    try:
        assert wait_until(lambda: snapshot(server, slow_seeder.infohash).readers == 1)
        assert snapshot(server, slow_seeder.infohash).pending_deadlines > 0
        leave(sock)
        # Well before the next piece could arrive (8 s) and be written.
        assert wait_until(lambda: snapshot(server, slow_seeder.infohash).readers == 0, 3)
        assert snapshot(server, slow_seeder.infohash).pending_deadlines == 0
        assert wait_until(lambda: server.connection_count() == 0, 3)
    finally:
        sock.close()
    # The server goes on serving: another reader of the same torrent is answered.
    again = open_stream(server, slow_seeder.infohash)
    again.close()
