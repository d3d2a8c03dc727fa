"""What POST /api/prefetch takes (streme/api/prefetch_input.py)."""

from __future__ import annotations

import base64

import pytest

from streme.api.prefetch_input import BadPrefetch, parse_magnet, parse_prefetch

H = "0123456789abcdef0123456789abcdef01234567"


def test_json_infohash_and_file() -> None:
    wanted = parse_prefetch("application/json", b'{"infohash": "%s", "file": 2}' % H.encode(), {})
    assert (wanted.infohash, wanted.file, wanted.trackers) == (H, 2, ())


def test_magnet_keeps_its_trackers_apart() -> None:
    b32 = base64.b32encode(bytes.fromhex(H)).decode()
    magnet = f"magnet:?xt=urn:btih:{b32}&dn=x&tr=http%3A%2F%2Ft.example%2Fannounce&tr=file:///etc"
    infohash, trackers = parse_magnet(magnet)
    assert infohash == H
    assert trackers == ("http://t.example/announce",)  # only http(s) and udp URLs


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "exactly one"),
        (b'{"infohash": "%s", "magnet": "magnet:?"}' % H.encode(), "exactly one"),
        (b'{"infohash": "zz"}', "infohash"),
        (b'{"magnet": "http://x"}', "magnet:?"),
        (b'{"magnet": "magnet:?dn=x"}', "xt=urn:btih"),
        (b'{"infohash": "%s", "file": -1}' % H.encode(), "file"),
        (b'{"infohash": "%s", "extra": 1}' % H.encode(), "JSON"),
        (b"not json", "JSON"),
    ],
)
def test_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(BadPrefetch, match=message):
        parse_prefetch("application/json", body, {})


def test_torrent_body() -> None:
    blob = b"d4:infod6:lengthi10e4:name5:a.mp412:piece lengthi16384e6:pieces20:" + b"x" * 20 + b"ee"
    wanted = parse_prefetch("application/x-bittorrent", blob, {"file": "0"})
    assert wanted.meta is not None
    assert wanted.infohash == wanted.meta.infohash
    assert wanted.file == 0
    assert wanted.torrent == blob
    with pytest.raises(BadPrefetch, match=r"not a valid \.torrent"):
        parse_prefetch("application/x-bittorrent", b"d4:infoi3ee", {})


def test_curl_d_and_html_forms() -> None:
    form = "application/x-www-form-urlencoded"
    body = b'{"infohash": "%s"}' % H.encode()
    assert parse_prefetch(form, body, {}).infohash == H  # curl -d's content type
    wanted = parse_prefetch(form, b"infohash=%s&file=3" % H.encode(), {})
    assert (wanted.infohash, wanted.file) == (H, 3)
    magnet = b"magnet=magnet%3A%3Fxt%3Durn%3Abtih%3A" + H.encode()
    assert parse_prefetch(form, magnet, {}).infohash == H
    with pytest.raises(BadPrefetch, match="unknown form field"):
        parse_prefetch(form, b"infohash=%s&color=red" % H.encode(), {})
    with pytest.raises(BadPrefetch, match="form expected"):
        parse_prefetch(form, b"\xff", {})


def test_other_media_types_are_refused() -> None:
    with pytest.raises(BadPrefetch, match="text/plain"):
        parse_prefetch("text/plain", b"x", {})
