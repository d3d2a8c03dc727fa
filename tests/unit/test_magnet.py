"""Magnets and the trackers a client names (streme/magnet.py)."""

from __future__ import annotations

import pytest

from streme.magnet import MAX_TRACKERS, BadMagnet, parse_magnet, query_trackers, tracker_urls

IH = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"


def test_tracker_urls_keeps_only_usable_ones() -> None:
    given = [
        "udp://t.lan:6969/announce",
        "tracker:http://t.lan/announce",  # Stremio's form
        "dht:" + IH,  # a peer source, not a tracker
        "wss://t.lan",  # WebTorrent's: libtorrent cannot use it
        "file:///etc/passwd",
        "udp://t.lan:6969/announce",  # repeated
    ]
    assert tracker_urls(given) == ("udp://t.lan:6969/announce", "http://t.lan/announce")
    many = [f"http://t{i}.lan/announce" for i in range(MAX_TRACKERS + 5)]
    assert len(tracker_urls(many)) == MAX_TRACKERS


def test_query_trackers_reads_every_tr() -> None:
    query = "xt=urn:btih:x&tr=udp%3A%2F%2Fa%3A1&tr=tracker%3Ahttps%3A%2F%2Fb%2Fannounce&dn=y"
    assert query_trackers(query) == ("udp://a:1", "https://b/announce")
    assert query_trackers("") == ()


def test_parse_magnet() -> None:
    assert parse_magnet(f"magnet:?xt=urn:btih:{IH.upper()}&tr=udp%3A%2F%2Fa%3A1") == (
        IH,
        ("udp://a:1",),
    )
    for bad in ["http://x", "magnet:?dn=x", "magnet:?xt=urn:btih:abc"]:
        with pytest.raises(BadMagnet):
            parse_magnet(bad)
