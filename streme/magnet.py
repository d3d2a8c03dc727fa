"""Magnet links and client-supplied trackers. Pure.

A magnet is `magnet:?xt=urn:btih:<hex or base32>&dn=<name>&tr=<tracker>...`. Trackers a
client names (a magnet's `tr=`, or `?tr=` on a stream URL as Stremio's apps send them,
`tracker:` prefix and all) are only HTTP(S) and UDP URLs, at most `MAX_TRACKERS`; the
caller uses them only with `p2p.allow_client_trackers` (otherwise a client could make the
server send requests to any address it names).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from streme.cache.infohash import InvalidInfohash, parse_infohash

MAX_TRACKERS = 32
_SCHEMES = ("http://", "https://", "udp://")


class BadMagnet(ValueError):
    """Not a magnet with a BitTorrent infohash; the message says why."""


def tracker_urls(values: Iterable[str]) -> tuple[str, ...]:
    """The usable tracker URLs among `values` (Stremio's `tracker:` prefix dropped;
    `dht:` and other sources ignored), without repeats, at most MAX_TRACKERS."""
    found: list[str] = []
    for value in values:
        url = value.removeprefix("tracker:")
        if url.startswith(_SCHEMES) and url not in found:
            found.append(url)
    return tuple(found[:MAX_TRACKERS])


def query_trackers(query_string: str) -> tuple[str, ...]:
    """The `tr=` parameters of a URL's query."""
    return tracker_urls(parse_qs(query_string).get("tr", []))


def magnet_query(query: dict[str, list[str]]) -> tuple[str, tuple[str, ...]]:
    """(infohash, trackers) of a magnet's parameters (`xt=urn:btih:...`, `tr=`)."""
    for xt in query.get("xt", []):
        if xt.lower().startswith("urn:btih:"):
            try:
                infohash = parse_infohash(xt[len("urn:btih:") :])
            except InvalidInfohash as exc:
                raise BadMagnet(f"magnet: {exc}") from None
            return infohash, tracker_urls(query.get("tr", []))
    raise BadMagnet("magnet has no xt=urn:btih:<infohash>")


def parse_magnet(text: str) -> tuple[str, tuple[str, ...]]:
    """(infohash, trackers) of `magnet:?xt=urn:btih:<hex or base32>&tr=...`."""
    parts = urlsplit(text.strip())
    if parts.scheme.lower() != "magnet":
        raise BadMagnet("magnet must start with magnet:?")
    return magnet_query(parse_qs(parts.query))
