"""`/stream/proxy/{infohash}` end to end over loopback, with curl and Python clients.

Every test runs on both body paths (zero-copy sendfile and the copying fallback) through
the `server` fixture, and every body is compared with the file's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.client import RawClient, get
from tests.conftest import INFOHASH, RunningServer, wait_until, write_video

MiB = 1024 * 1024
CURL = shutil.which("curl")


def fetch(
    server: RunningServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    out = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, out, body


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the seed's scenarios -----------------------------------------------------------------


def test_seed_scenario_cached_file_head_and_get(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-test.mp4", 2 * MiB)
    status, headers, body = fetch(server, f"/stream/proxy/{INFOHASH}", method="HEAD")
    assert status == 200
    assert headers["content-length"] == "2097152"
    assert headers["content-type"] == "video/mp4"
    assert headers["accept-ranges"] == "bytes"
    assert body == b""
    status, headers, body = fetch(server, f"/stream/proxy/{INFOHASH}")
    assert status == 200
    assert sha256(body) == sha256(data)


@pytest.mark.skipif(CURL is None, reason="curl not installed (make test installs it)")
def test_seed_scenario_with_curl(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-test.mp4", 2 * MiB)
    url = server.url(f"/stream/proxy/{INFOHASH}")
    head = subprocess.run([CURL, "-sSI", url], capture_output=True, check=True, timeout=30).stdout
    lines = head.decode().lower().splitlines()
    assert lines[0].startswith("http/1.1 200 ok")
    assert "content-length: 2097152" in lines
    assert "content-type: video/mp4" in lines
    body = subprocess.run([CURL, "-sS", url], capture_output=True, check=True, timeout=30).stdout
    assert sha256(body) == sha256(data)
    part = subprocess.run(
        [CURL, "-sS", "-r", "1000-1999", url], capture_output=True, check=True, timeout=30
    ).stdout
    assert part == data[1000:2000]
    tail = subprocess.run(
        [CURL, "-sS", "-H", "Range: bytes=-777", url], capture_output=True, check=True, timeout=30
    ).stdout
    assert tail == data[-777:]


def test_not_cached_is_404_json(server: RunningServer) -> None:
    status, headers, body = fetch(
        server, f"/stream/proxy/{'1111222233334444555566667777888899990000'}"
    )
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "not_cached"


@pytest.mark.parametrize(
    "raw",
    [
        INFOHASH[:39],
        INFOHASH + "0",
        "x" * 40,
        "..",
        "%2e%2e",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        INFOHASH[:20] + "%00" + INFOHASH[21:],
        "",
    ],
)
def test_invalid_infohashes_get_400(server: RunningServer, cache_dir: Path, raw: str) -> None:
    write_video(cache_dir, f"{INFOHASH}-test.mp4", 2 * MiB)
    status, _, body = fetch(server, f"/stream/proxy/{raw}")
    assert status == 400, raw
    assert json.loads(body)["error"] in ("invalid_infohash", "bad_request")


def test_traversal_paths_never_escape(server: RunningServer, cache_dir: Path) -> None:
    for path in [
        "/stream/proxy/../../etc/passwd",
        "/stream/proxy/%2e%2e/%2e%2e/etc/passwd",
        "/../etc/passwd",
    ]:
        status, _, body = fetch(server, path)
        assert status in (400, 404), path
        assert b"root:" not in body


def test_uppercase_and_base32_hash(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, f"{INFOHASH.upper()}-Movie.MKV", 2 * MiB)
    b32 = base64.b32encode(bytes.fromhex(INFOHASH)).decode()
    for form in (INFOHASH, INFOHASH.upper(), b32, b32.lower()):
        status, headers, body = fetch(server, f"/stream/proxy/{form}")
        assert status == 200, form
        assert headers["content-type"] == "video/x-matroska"
        assert body == data


def test_fragment_of_hash_does_not_match(server: RunningServer, cache_dir: Path) -> None:
    write_video(cache_dir, f"{INFOHASH[:39]}-test.mp4", 2 * MiB)
    status, _, _ = fetch(server, f"/stream/proxy/{INFOHASH}")
    assert status == 404


def test_symlink_escaping_cache_is_refused(
    server: RunningServer, cache_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret" * MiB)
    (cache_dir / f"{INFOHASH}-escape.mp4").symlink_to(outside)
    status, _, body = fetch(server, f"/stream/proxy/{INFOHASH}")
    assert status == 404
    assert b"secret" not in body


def test_symlink_inside_cache_is_served(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, "real.bin", 2 * MiB)
    (cache_dir / f"{INFOHASH}-link.mp4").symlink_to(cache_dir / "real.bin")
    status, _, body = fetch(server, f"/stream/proxy/{INFOHASH}")
    assert status == 200
    assert body == data


def test_fifo_is_refused(server: RunningServer, cache_dir: Path) -> None:
    os.mkfifo(cache_dir / f"{INFOHASH}-pipe.mp4")
    status, _, _ = fetch(server, f"/stream/proxy/{INFOHASH}")
    assert status == 404


def test_file_added_and_removed_while_running(server: RunningServer, cache_dir: Path) -> None:
    path = f"/stream/proxy/{INFOHASH}"
    assert fetch(server, path)[0] == 404
    data = write_video(cache_dir, f"{INFOHASH}-new.mp4", 2 * MiB)
    assert wait_until(lambda: fetch(server, path)[0] == 200)
    _, _, body = fetch(server, path)
    assert body == data
    (cache_dir / f"{INFOHASH}-new.mp4").unlink()
    assert fetch(server, path)[0] == 404  # never stale: the very next request misses


def test_replaced_file_served_with_new_bytes(server: RunningServer, cache_dir: Path) -> None:
    name = f"{INFOHASH}-v.mp4"
    write_video(cache_dir, name, 2 * MiB)
    path = f"/stream/proxy/{INFOHASH}"
    assert wait_until(lambda: fetch(server, path)[0] == 200)
    _, first_headers, _ = fetch(server, path, method="HEAD")
    newer = write_video(cache_dir, ".tmp", 3 * MiB, seed=7)
    os.utime(cache_dir / ".tmp", ns=(time.time_ns() + 5 * 10**9,) * 2)
    os.replace(cache_dir / ".tmp", cache_dir / name)
    status, headers, body = fetch(server, path)
    assert status == 200
    assert body == newer
    assert headers["etag"] != first_headers["etag"]


# -- ranges ---------------------------------------------------------------------------------

SIZE = 2 * MiB


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-1", 0, 1),  # Safari's probe gets exactly two bytes
        ("bytes=100-199", 100, 199),
        ("bytes=100-", 100, SIZE - 1),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        ("bytes=-99999999", 0, SIZE - 1),
        (f"bytes={SIZE - 10}-{SIZE + 1000}", SIZE - 10, SIZE - 1),
        ("bytes=0-", 0, SIZE - 1),
        ("BYTES = 5-9", 5, 9),
    ],
)
def test_single_ranges(
    server: RunningServer, cache_dir: Path, spec: str, start: int, end: int
) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-r.mp4", SIZE)
    status, headers, body = fetch(server, f"/stream/proxy/{INFOHASH}", {"Range": spec})
    if spec.startswith("BYTES ="):  # not valid syntax: ignored
        assert status == 200
        return
    assert status == 206, spec
    assert headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert int(headers["content-length"]) == end - start + 1
    assert body == data[start : end + 1]


@pytest.mark.parametrize("spec", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 9}", "bytes=-0"])
def test_unsatisfiable_ranges(server: RunningServer, cache_dir: Path, spec: str) -> None:
    write_video(cache_dir, f"{INFOHASH}-r.mp4", SIZE)
    status, headers, body = fetch(server, f"/stream/proxy/{INFOHASH}", {"Range": spec})
    assert status == 416
    assert headers["content-range"] == f"bytes */{SIZE}"
    assert json.loads(body)["error"] == "range_not_satisfiable"


def test_range_with_other_unit_is_ignored(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-r.mp4", SIZE)
    status, _, body = fetch(server, f"/stream/proxy/{INFOHASH}", {"Range": "items=0-5"})
    assert status == 200
    assert body == data


def test_multiple_ranges_are_multipart(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-r.mp4", SIZE)
    status, headers, body = fetch(
        server, f"/stream/proxy/{INFOHASH}", {"Range": "bytes=0-9,100-199,-5"}
    )
    assert status == 206
    ctype = headers["content-type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    assert int(headers["content-length"]) == len(body)
    message = BytesParser().parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    parts = message.get_payload()
    assert isinstance(parts, list)
    got = [(p["Content-Range"], p.get_payload(decode=True)) for p in parts]
    assert got == [
        (f"bytes 0-9/{SIZE}", data[0:10]),
        (f"bytes 100-199/{SIZE}", data[100:200]),
        (f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}", data[-5:]),
    ]
    assert all(p["Content-Type"] == "video/mp4" for p in parts)


def test_head_with_range(server: RunningServer, cache_dir: Path) -> None:
    write_video(cache_dir, f"{INFOHASH}-r.mp4", SIZE)
    status, headers, body = fetch(
        server, f"/stream/proxy/{INFOHASH}", {"Range": "bytes=10-19"}, method="HEAD"
    )
    assert status == 206
    assert headers["content-range"] == f"bytes 10-19/{SIZE}"
    assert headers["content-length"] == "10"
    assert body == b""


def test_ranges_pipelined_on_one_connection(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-r.mp4", SIZE)
    client = RawClient(server.port)
    spans = [(0, 65535), (1_000_000, 1_065_535), (SIZE - 100, SIZE - 1)]
    client.send(
        b"".join(
            get(f"/stream/proxy/{INFOHASH}", extra=f"Range: bytes={a}-{b}\r\n") for a, b in spans
        )
    )
    for a, b in spans:
        reply = client.read_reply()
        assert reply.status == 206
        assert reply.body == data[a : b + 1]
    client.close()


# -- conditional requests ---------------------------------------------------------------------


def test_conditionals(server: RunningServer, cache_dir: Path) -> None:
    data = write_video(cache_dir, f"{INFOHASH}-c.mp4", SIZE)
    path = f"/stream/proxy/{INFOHASH}"
    _, headers, _ = fetch(server, path, method="HEAD")
    etag, last_modified = headers["etag"], headers["last-modified"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")

    status, h304, body = fetch(server, path, {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert h304["etag"] == etag
    assert fetch(server, path, {"If-None-Match": f'"other", W/{etag}'})[0] == 304  # weak compare
    assert fetch(server, path, {"If-None-Match": "*"})[0] == 304
    assert fetch(server, path, {"If-Modified-Since": last_modified})[0] == 304
    assert fetch(server, path, {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    assert (
        fetch(server, path, {"If-None-Match": '"other"', "If-Modified-Since": last_modified})[0]
        == 200
    )

    assert fetch(server, path, {"If-Match": '"other"'})[0] == 412
    assert fetch(server, path, {"If-Match": f"W/{etag}"})[0] == 412  # strong compare
    assert fetch(server, path, {"If-Match": etag})[0] == 200
    assert fetch(server, path, {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 412
    # If-Match present: If-Unmodified-Since is not evaluated.
    assert (
        fetch(
            server, path, {"If-Match": etag, "If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}
        )[0]
        == 200
    )

    status, _, body = fetch(server, path, {"Range": "bytes=0-9", "If-Range": etag})
    assert (status, body) == (206, data[:10])
    status, _, body = fetch(server, path, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (status, len(body)) == (200, SIZE)
    status, _, body = fetch(server, path, {"Range": "bytes=0-9", "If-Range": last_modified})
    assert (status, body) == (206, data[:10])
    status, _, _ = fetch(
        server, path, {"Range": "bytes=0-9", "If-Range": "Thu, 01 Jan 1970 00:00:00 GMT"}
    )
    assert status == 200


# -- multi-file torrents --------------------------------------------------------------------


def test_directory_with_torrent_metadata_and_file_index(
    server: RunningServer, cache_dir: Path
) -> None:
    lt = pytest.importorskip("libtorrent")
    src = cache_dir.parent / "src" / "Pack"
    (src / "Season 1").mkdir(parents=True)
    ep1 = os.urandom(2 * MiB)
    ep2 = os.urandom(3 * MiB)
    (src / "Season 1" / "E01.mkv").write_bytes(ep1)
    (src / "Season 1" / "E02.mkv").write_bytes(ep2)
    (src / "notes.txt").write_bytes(b"hello")
    ct = lt.create_torrent(lt.list_files(str(src)), 16 * 1024)
    lt.set_piece_hashes(ct, str(src.parent))
    blob = lt.bencode(ct.generate())
    layout = lt.torrent_info(blob).layout()
    ih = str(lt.torrent_info(blob).info_hashes().v1)
    pad = lt.file_storage.flag_pad_file
    names = [
        layout.file_path(i) for i in range(layout.num_files()) if not layout.file_flags(i) & pad
    ]
    shutil.copytree(src.parent, cache_dir / ih)
    (cache_dir / f"{ih}.torrent").write_bytes(blob)

    expected = {"E01.mkv": ep1, "E02.mkv": ep2, "notes.txt": b"hello"}
    assert len(names) == 3
    for index, name in enumerate(names):
        status, _, body = fetch(server, f"/stream/proxy/{ih}?file={index}")
        assert status == 200, name
        assert body == expected[os.path.basename(name)]
    status, _, body = fetch(server, f"/stream/proxy/{ih}")  # default: the largest video
    assert (status, body) == (200, ep2)
    status, _, body = fetch(server, f"/stream/proxy/{ih}?fileIdx=99")
    assert status == 404
    assert json.loads(body)["error"] == "file_not_found"
    status, _, body = fetch(server, f"/stream/proxy/{ih}?file=abc")
    assert status == 400
    assert json.loads(body)["error"] == "invalid_file_index"


# -- real media client ----------------------------------------------------------------------

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")


@pytest.mark.skipif(
    FFMPEG is None or FFPROBE is None, reason="ffmpeg not installed (make test installs it)"
)
def test_ffprobe_reads_and_seeks(
    make_server: Callable[..., RunningServer], zero_copy: bool, cache_dir: Path, tmp_path: Path
) -> None:
    server = make_server(cache={"min_size": 0}, zero_copy=zero_copy)
    video = tmp_path / "clip.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=4:size=320x240:rate=25",
            "-c:v",
            "mpeg4",
            "-q:v",
            "5",
            "-y",
            str(video),
        ],
        check=True,
        timeout=60,
    )
    os.replace(video, cache_dir / f"{INFOHASH}-clip.mp4")
    url = server.url(f"/stream/proxy/{INFOHASH}")
    out = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    info = json.loads(out.stdout)
    assert info["streams"][0]["codec_name"] == "mpeg4"
    assert abs(float(info["format"]["duration"]) - 4.0) < 0.2
    # Seek to 3 s and decode one frame: the player issues range requests.
    subprocess.run(
        [FFMPEG, "-v", "error", "-ss", "3", "-i", url, "-frames:v", "1", "-f", "null", "-"],
        check=True,
        timeout=60,
    )


def test_dlna_headers_on_streams(server: RunningServer, cache_dir: Path) -> None:
    """Smart TVs (DLNA renderers) look for these on a stream; errors and 304s carry none."""
    write_video(cache_dir, f"{INFOHASH}-test.mp4", 2 * MiB)
    for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"Range": "bytes=0-9"})):
        status, got, _ = fetch(server, f"/stream/proxy/{INFOHASH}", headers, method)
        assert status in (200, 206)
        assert got["transfermode.dlna.org"] == "Streaming"
        assert got["contentfeatures.dlna.org"].startswith("DLNA.ORG_OP=01;DLNA.ORG_CI=0;")
    etag = fetch(server, f"/stream/proxy/{INFOHASH}", method="HEAD")[1]["etag"]
    status, got, _ = fetch(server, f"/stream/proxy/{INFOHASH}", {"If-None-Match": etag})
    assert status == 304
    assert "transfermode.dlna.org" not in got
    status, got, _ = fetch(server, f"/stream/proxy/{'f' * 40}")
    assert status == 404
    assert "transfermode.dlna.org" not in got
