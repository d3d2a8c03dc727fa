"""The DLNA media server as a TV meets it: `streme serve` with `dlna.enabled`, and a
control point made of async-upnp-client (client.py), both inside a network namespace of
the test's own whose loopback carries multicast, so SSDP is real and nothing reaches the
LAN. The client hears the server's NOTIFY, finds it by M-SEARCH, reads its description,
browses the cache's complete titles (the root, a multi-file title's folder, pages, one
object), downloads every resource, and hears the byebye when the server stops."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from streme.cache.torrentmeta import parse_torrent
from streme.dlna.address import device_udn
from tests.conftest import write_video
from tests.served import Served, serve, stop
from tests.torrent.swarm import make_torrent, random_bytes

KiB = 1024
MiB = 1024 * KiB
CLIENT = Path(__file__).with_name("client.py")
NAME = "Living room streme"
TOKEN = "tv token"
HAND = "5" * 40
MEDIA_SERVER = "urn:schemas-upnp-org:device:MediaServer:1"
FEATURES = "DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000"
PACK = {
    "Show S01/Show.S01E01.mkv": random_bytes(300 * KiB, 1),
    "Show S01/Show.S01E02.mp4": random_bytes(200 * KiB, 2),
    "Show S01/Show.S01E01.en.srt": b"1\n00:00:00,000 --> 00:00:01,000\nHello\n",
    "Show S01/notes.nfo": b"about the show",
}
SINGLE = {"Arrival.2016.mkv": random_bytes(400 * KiB, 3)}
MISSING = {"Missing.2020.mkv": random_bytes(100 * KiB, 4)}  # only its .torrent is cached


def skip_reason() -> str:
    if os.geteuid() != 0:
        return "needs root: the test makes a network namespace for multicast on loopback"
    if shutil.which("ip") is None:
        return "needs ip (iproute2) for the network namespace"
    if importlib.util.find_spec("async_upnp_client") is None:
        return "needs async-upnp-client: pip install -e '.[dlna]' (make install does)"
    return ""


pytestmark = pytest.mark.skipif(bool(skip_reason()), reason=skip_reason() or "runs")


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of this test's own, its loopback up and carrying multicast."""
    name = f"streme-dlna-{os.getpid()}"
    ip("netns", "del", name)  # left by an earlier run of this PID, if any
    made = ip("netns", "add", name)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        for step in (
            ("link", "set", "lo", "up"),
            ("link", "set", "lo", "multicast", "on"),
            ("route", "add", "239.0.0.0/8", "dev", "lo"),
        ):
            done = ip("netns", "exec", name, "ip", *step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
        yield name
    finally:
        ip("netns", "del", name)


def serve_in(netns: str, cache: Path, env: dict[str, str]) -> Served:
    """tests/served.py's `serve`, started inside `netns`."""
    served = serve(cache, env, "--host", "127.0.0.1", prefix=("ip", "netns", "exec", netns))
    if "stream a cached video" not in served.log():
        stop(served)
        raise AssertionError("streme serve did not start:\n" + served.log())
    return served


class Client:
    """client.py in the namespace: JSON lines out, commands in, stopped by its PID."""

    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(CLIENT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True),
            threading.Thread(
                target=lambda err: self.errors.extend(err), args=(self.proc.stderr,), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def report(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"client.py said nothing in {timeout} s:\n" + "".join(self.errors)
            ) from None
        report: dict[str, Any] = json.loads(line)
        return report

    def tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Cache:
    pack: str  # a multi-file torrent's infohash (a folder)
    single: str  # a one-file torrent's (an item)
    missing: str  # a torrent whose file is not there (not listed)
    videos: dict[str, tuple[str, bytes, str]]  # object id -> title, bytes, content type


def lay_out(cache: Path, build: Path) -> Cache:
    """A hand-placed film, a multi-file torrent and a one-file torrent with their files,
    and a torrent whose file is not there."""
    film = write_video(cache, f"{HAND}-Big Buck Bunny.mp4", 2 * MiB, seed=9)
    blob, pack = make_torrent(build / "pack", PACK)
    shutil.copytree(build / "pack" / "Show S01", cache / pack / "Show S01")
    (cache / f"{pack}.torrent").write_bytes(blob)
    index = {f.path[-1]: f.index for f in parse_torrent(blob).files}
    blob, single = make_torrent(build / "single", SINGLE)
    (cache / single).mkdir()
    shutil.copy(build / "single" / "Arrival.2016.mkv", cache / single / "Arrival.2016.mkv")
    (cache / f"{single}.torrent").write_bytes(blob)
    blob, missing = make_torrent(build / "missing", MISSING)
    (cache / f"{missing}.torrent").write_bytes(blob)
    e01, e02 = index["Show.S01E01.mkv"], index["Show.S01E02.mp4"]
    videos = {
        HAND: ("Big Buck Bunny.mp4", film, "video/mp4"),
        single: ("Arrival.2016.mkv", SINGLE["Arrival.2016.mkv"], "video/x-matroska"),
        f"{pack}/{e01}": ("Show.S01E01.mkv", PACK["Show S01/Show.S01E01.mkv"], "video/x-matroska"),
        f"{pack}/{e02}": ("Show.S01E02.mp4", PACK["Show S01/Show.S01E02.mp4"], "video/mp4"),
    }
    return Cache(pack, single, missing, videos)


def test_a_tv_finds_browses_and_plays_the_cache(netns: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    laid = lay_out(cache, tmp_path / "build")
    pack, videos = laid.pack, laid.videos
    udn = device_udn(os.path.abspath(cache))
    env = {
        "STREME_P2P_ENABLED": "0",
        "STREME_DLNA_ENABLED": "1",
        "STREME_DLNA_ADDRESS": "127.0.0.1",
        "STREME_DLNA_NAME": NAME,
        "STREME_HTTP_STREAM_TOKEN": TOKEN,
        "STREME_LOG_LEVEL": "info",
    }
    client = Client(netns)
    served: Served | None = None
    try:
        assert client.report(timeout=30) == {"listening": True}  # before the server starts
        served = serve_in(netns, cache, env)
        client.tell("browse")
        report = client.report(timeout=60)

        # Found by M-SEARCH; its description says what dlna.name says.
        (answer,) = report["answers"]
        assert answer["ST"] == MEDIA_SERVER
        assert answer["USN"] == f"{udn}::{MEDIA_SERVER}"
        location = answer["LOCATION"]
        assert location.startswith("http://127.0.0.1:")
        assert (report["friendly_name"], report["udn"]) == (NAME, udn)
        assert report["device_type"] == MEDIA_SERVER
        # Announced: the NOTIFY alive was heard (the client listened before the start).
        alive = [n for n in report["notifies"] if n["NTS"] == "ssdp:alive"]
        assert alive, report["notifies"]
        assert all(n["USN"].startswith(udn) and n["LOCATION"] == location for n in alive)

        # The root: every complete title, by title; the title without its file is not there.
        root = report["root"]
        listed = [(o["id"], o["title"], o["class"]) for o in root["objects"]]
        assert listed == [
            (laid.single, "Arrival.2016.mkv", "object.item.videoItem"),
            (HAND, "Big Buck Bunny.mp4", "object.item.videoItem"),
            (pack, "Show S01", "object.container.storageFolder"),
        ]
        assert laid.missing not in {o["id"] for o in root["objects"]}
        assert (root["returned"], root["total"]) == (3, 3)
        folder = report["containers"][pack]
        assert [(o["id"], o["parent_id"], o["title"]) for o in folder["objects"]] == [
            (oid, pack, title) for oid, (title, _, _) in videos.items() if oid.startswith(pack)
        ]
        assert (folder["returned"], folder["total"]) == (2, 2)

        # Every resource: the stream URL on the main port with the token, its type and
        # size, and the bytes of the file it stands for.
        resources = {
            o["id"]: o["res"]
            for o in root["objects"] + folder["objects"]
            if o["class"] == "object.item.videoItem"
        }
        assert sorted(resources) == sorted(videos)
        for oid, (_, data, content_type) in videos.items():
            (res,) = resources[oid]
            assert res["url"].startswith(f"{served.url}/stream/proxy/")
            assert res["url"].endswith("token=tv%20token")
            assert res["protocol_info"] == f"http-get:*:{content_type}:{FEATURES}"
            assert res["size"] == str(len(data))
            body = report["bodies"][oid]
            assert (body["status"], body["content_type"]) == (200, content_type)
            assert body["sha256"] == sha(data), oid
            (again,) = report["item_metadata"][oid]["objects"]  # BrowseMetadata: the same
            assert (again["id"], again["res"]) == (oid, resources[oid])

        # Paging: one at a time, out of all of them.
        first, second = report["first_page"], report["second_page"]
        assert [o["id"] for o in first["objects"]] == [listed[0][0]]
        assert [o["id"] for o in second["objects"]] == [listed[1][0]]
        assert (
            (first["returned"], first["total"]) == (second["returned"], second["total"]) == (1, 3)
        )
        (meta,) = report["root_metadata"]["objects"]
        assert (meta["id"], meta["parent_id"], meta["title"], meta["child_count"]) == (
            "0",
            "-1",
            NAME,
            "3",
        )
        assert report["unknown_object"] == {"error": 701}
        assert report["system_update_id"] >= 1
        assert (report["search_caps"], report["sort_caps"]) == ("", "")
        assert "http-get:*:video/x-matroska:*" in report["source_protocols"].split(",")
        assert (report["connection_ids"], report["connection_status"]) == ("0", "OK")

        # Stopped, it says byebye for everything it announced.
        assert stop(served) == 0
        client.tell("byebye")
        byebye = [n for n in client.report(timeout=30)["notifies"] if n["NTS"] == "ssdp:byebye"]
        assert {n["USN"] for n in byebye} >= {
            f"{udn}::upnp:rootdevice",
            udn,
            f"{udn}::{MEDIA_SERVER}",
            f"{udn}::urn:schemas-upnp-org:service:ContentDirectory:1",
            f"{udn}::urn:schemas-upnp-org:service:ConnectionManager:1",
        }
        log = served.log()
        assert f'DLNA media server "{NAME}" announced on 127.0.0.1 (description {location})' in log
        assert "Traceback" not in log
    finally:
        client.stop()
        if served is not None and served.proc.poll() is None:
            stop(served)
