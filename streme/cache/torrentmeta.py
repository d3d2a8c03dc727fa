"""What a .torrent file says: its infohash, name and file list. Pure.

File indices users pass (`?file=N`) count the torrent's files in order, skipping BEP 47
pad files; `raw_index` keeps the position in the torrent's own list (libtorrent's index).
Paths are sanitised: a component that is empty, `.`, `..`, or holds a separator or NUL
makes the torrent invalid, so a file list can never point outside its directory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from streme.cache.bencode import BencodeError, Value, decode


class InvalidTorrent(ValueError):
    """The bytes are not a usable .torrent file."""


@dataclass(frozen=True, slots=True)
class TorrentFile:
    index: int  # position among non-pad files: what `?file=N` means
    raw_index: int  # position in the torrent's list including pad files
    path: tuple[str, ...]  # components inside the torrent (without the torrent's name)
    length: int


@dataclass(frozen=True, slots=True)
class TorrentMeta:
    infohash: str  # v1 btih (sha1 of the info dict); truncated sha256 for v2-only torrents
    name: str
    multi_file: bool
    files: tuple[TorrentFile, ...]


def parse_torrent(data: bytes) -> TorrentMeta:
    try:
        root, span = decode(data)
    except BencodeError as exc:
        raise InvalidTorrent(f"not bencode: {exc}") from exc
    if not isinstance(root, dict) or span is None:
        raise InvalidTorrent("no info dictionary")
    info = root[b"info"]
    if not isinstance(info, dict):
        raise InvalidTorrent("info is not a dictionary")
    raw_info = data[span[0] : span[1]]
    name = _component(info.get(b"name.utf-8", info.get(b"name")), "name")
    if b"files" in info or b"length" in info:
        infohash = hashlib.sha1(raw_info).hexdigest()
        multi_file, entries = _v1_files(info)
    elif b"file tree" in info:
        infohash = hashlib.sha256(raw_info).hexdigest()[:40]
        multi_file, entries = _v2_files(info[b"file tree"])
    else:
        raise InvalidTorrent("info has neither files, length nor file tree")
    files: list[TorrentFile] = []
    for raw_index, (path, length, pad) in enumerate(entries):
        if not pad:
            files.append(TorrentFile(len(files), raw_index, path, length))
    return TorrentMeta(infohash, name, multi_file, tuple(files))


_Entry = tuple[tuple[str, ...], int, bool]


def _v1_files(info: dict[bytes, Value]) -> tuple[bool, list[_Entry]]:
    if b"length" in info:
        return False, [((), _length(info[b"length"]), False)]
    files = info[b"files"]
    if not isinstance(files, list) or not files:
        raise InvalidTorrent("files is not a non-empty list")
    entries: list[_Entry] = []
    for item in files:
        if not isinstance(item, dict):
            raise InvalidTorrent("a files entry is not a dictionary")
        raw_path = item.get(b"path.utf-8", item.get(b"path"))
        if not isinstance(raw_path, list) or not raw_path:
            raise InvalidTorrent("a file has no path")
        path = tuple(_component(part, "path") for part in raw_path)
        attr = item.get(b"attr", b"")
        pad = (
            (isinstance(attr, bytes) and b"p" in attr)
            or path[0] == ".pad"
            or path[-1].startswith("_____padding_file_")
        )
        entries.append((path, _length(item.get(b"length")), pad))
    return True, entries


def _v2_files(tree: Value) -> tuple[bool, list[_Entry]]:
    entries: list[_Entry] = []

    def walk(node: Value, prefix: tuple[str, ...], depth: int) -> None:
        if depth > 64 or not isinstance(node, dict):
            raise InvalidTorrent("malformed file tree")
        for key in sorted(node):
            child = node[key]
            if key == b"" and isinstance(child, dict):
                entries.append((prefix, _length(child.get(b"length")), False))
                continue
            walk(child, (*prefix, _component(key, "path")), depth + 1)

    walk(tree, (), 0)
    if not entries:
        raise InvalidTorrent("empty file tree")
    if len(entries) == 1 and len(entries[0][0]) == 1:
        return False, [((), entries[0][1], False)]
    return True, entries


def _length(value: Value | None) -> int:
    if not isinstance(value, int) or value < 0:
        raise InvalidTorrent("a file length is missing or negative")
    return value


def _component(value: Value | None, what: str) -> str:
    if not isinstance(value, bytes):
        raise InvalidTorrent(f"{what} is missing or not a string")
    text = value.decode("utf-8", "surrogateescape")
    if text in ("", ".", "..") or "/" in text or "\\" in text or "\x00" in text:
        raise InvalidTorrent(f"unsafe {what} component {text!r}")
    return text
