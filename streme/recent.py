"""A mapping that keeps only its newest entries. Pure."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(recent: dict[K, V], key: K, value: V, limit: int) -> None:
    """Set `key` as the newest entry of `recent`, then forget the oldest past `limit`
    (dicts keep insertion order)."""
    recent.pop(key, None)
    recent[key] = value
    while len(recent) > limit:
        del recent[next(iter(recent))]
