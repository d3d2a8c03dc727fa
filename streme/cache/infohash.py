"""Infohashes: what a request may name, and which hashes a file name carries. Pure."""

from __future__ import annotations

import base64
import binascii
import re

_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_BASE32 = re.compile(r"[A-Za-z2-7]{32}")
_HEX_RUN = re.compile(r"[0-9a-fA-F]+")


class InvalidInfohash(ValueError):
    """The text is not a BitTorrent v1 infohash."""


def parse_infohash(text: str) -> str:
    """Normalise a v1 infohash (40 hex digits or 32 base32 characters, any case) to lower hex."""
    if len(text) == 40 and _HEX40.fullmatch(text):
        return text.lower()
    if len(text) == 32 and _BASE32.fullmatch(text):
        try:
            return base64.b32decode(text.upper()).hex()
        except binascii.Error:  # pragma: no cover - the regex admits only valid base32
            pass
    shown = text if len(text) <= 64 else text[:64] + "..."
    raise InvalidInfohash(
        f"infohash must be 40 hex digits or 32 base32 characters, got {len(text)} "
        f"characters: {shown!r}"
    )


def infohashes_in_name(name: str) -> set[str]:
    """Every infohash a directory entry's name carries: runs of exactly 40 hex digits.

    A longer run of hex digits carries none: the hash must stand whole, not as a fragment
    of something longer.
    """
    if len(name) < 40:
        return set()
    return {run.lower() for run in _HEX_RUN.findall(name) if len(run) == 40}
