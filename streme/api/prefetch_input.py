"""What `POST /api/prefetch` was asked for: an infohash, a magnet, or a .torrent. Pure.

- JSON `{"infohash": "..."}` or `{"magnet": "magnet:?xt=urn:btih:..."}`, with an optional
  `"file": N` (default: the torrent's videos); also when sent as a form (`curl -d` does),
  or the form fields `infohash=`, `magnet=`, `file=` themselves (an HTML form);
- a `.torrent` as the body (`Content-Type: application/x-bittorrent`), with `?file=N`.

A magnet's trackers (`tr=`) are kept apart: the caller uses them only when
`p2p.allow_client_trackers` is set. Otherwise a client could make the server send HTTP
and UDP requests to any address it names (server-side request forgery), inside the LAN
included; with the setting off only the infohash and the configured trackers are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

import msgspec

from streme import magnet
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.cache.torrentmeta import InvalidTorrent, TorrentMeta, parse_torrent

TORRENT_TYPE = "application/x-bittorrent"
FORM_TYPE = "application/x-www-form-urlencoded"


class BadPrefetch(ValueError):
    """The request says nothing usable; the message says why."""


@dataclass(frozen=True, slots=True)
class Prefetch:
    infohash: str
    file: int | None = None
    trackers: tuple[str, ...] = ()  # the magnet's own
    torrent: bytes = b""  # the .torrent body, checked
    meta: TorrentMeta | None = None


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    infohash: str | None = None
    magnet: str | None = None
    file: int | None = None


def parse_magnet(text: str) -> tuple[str, tuple[str, ...]]:
    """(infohash, trackers) of `magnet:?xt=urn:btih:<hex or base32>&tr=...`."""
    try:
        return magnet.parse_magnet(text)
    except magnet.BadMagnet as exc:
        raise BadPrefetch(str(exc)) from None


def _form(body: bytes) -> _Body:
    """`infohash=...` or `magnet=...`, and `file=N`, as an HTML form posts them."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise BadPrefetch("the body is not the form expected (infohash=, magnet=, file=)") from None
    unknown = set(fields) - {"infohash", "magnet", "file"}
    if unknown:
        raise BadPrefetch(f"unknown form field(s): {', '.join(sorted(unknown))}")
    raw_file = fields.get("file", [None])[0]
    return _Body(
        infohash=fields.get("infohash", [None])[0],
        magnet=fields.get("magnet", [None])[0],
        file=_file_index(raw_file),
    )


def _file_index(raw: int | str | None) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if not (raw.isascii() and raw.isdigit()):
            raise BadPrefetch(f"file must be a file index (0, 1, ...), got {raw[:32]!r}")
        raw = int(raw)
    if raw < 0:
        raise BadPrefetch("file must be a file index (0, 1, ...)")
    return raw


def parse_prefetch(content_type: str, body: bytes, query: dict[str, str]) -> Prefetch:
    media = content_type.partition(";")[0].strip().lower()
    if media == TORRENT_TYPE:
        try:
            meta = parse_torrent(body)
        except InvalidTorrent as exc:
            raise BadPrefetch(f"the body is not a valid .torrent: {exc}") from None
        return Prefetch(meta.infohash, _file_index(query.get("file")), torrent=body, meta=meta)
    if media == FORM_TYPE and not body.lstrip().startswith(b"{"):
        parsed = _form(body)
    elif media in ("application/json", "", FORM_TYPE):  # curl -d sends JSON as a form
        try:
            parsed = msgspec.json.decode(body, type=_Body)
        except msgspec.DecodeError as exc:
            raise BadPrefetch(f"the body is not the JSON expected: {exc}") from None
    else:
        raise BadPrefetch(f"send JSON, a form or {TORRENT_TYPE}, not {media}")
    if (parsed.infohash is None) == (parsed.magnet is None):
        raise BadPrefetch('send exactly one of "infohash" and "magnet"')
    file = _file_index(parsed.file if parsed.file is not None else query.get("file"))
    if parsed.magnet is not None:
        infohash, trackers = parse_magnet(parsed.magnet)
        return Prefetch(infohash, file, trackers)
    assert parsed.infohash is not None
    try:
        return Prefetch(parse_infohash(parsed.infohash), file)
    except InvalidInfohash as exc:
        raise BadPrefetch(str(exc)) from None
