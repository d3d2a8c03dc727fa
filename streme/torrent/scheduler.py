"""The deadline book of one torrent: which reader wants which piece, and by when.

How this works: libtorrent keeps one deadline per piece (the last call wins), so the
torrent's readers must be merged before anything reaches it. Each reader hands the book
its whole read-ahead window, `(piece, deadline ms)` pairs, every time it moves; the book
keeps `piece -> {reader: ms}` and answers what libtorrent must be told:
- `set_window` returns the pieces whose earliest deadline got earlier (tell libtorrent
  the new one) and the pieces no reader wants any more (withdraw their deadline);
- `withdraw` (a reader left) returns the pieces nobody wants any more.
Pure: no libtorrent, no clock. `ActiveTorrent` applies the answers to the handle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowChange:
    earlier: list[tuple[int, int]]  # (piece, its new earliest deadline ms)
    abandoned: list[int]  # pieces no reader wants any more


class DeadlineBook:
    def __init__(self) -> None:
        self._wants: dict[int, dict[int, int]] = {}  # piece -> reader -> deadline ms

    def set_window(self, reader: int, window: Iterable[tuple[int, int]]) -> WindowChange:
        """Reader `reader` now wants exactly `window`; its older wishes are withdrawn."""
        wanted = dict(window)
        abandoned = [
            piece
            for piece in [p for p, readers in self._wants.items() if reader in readers]
            if piece not in wanted and self._drop(reader, piece)
        ]
        earlier: list[tuple[int, int]] = []
        for piece, ms in wanted.items():
            readers = self._wants.setdefault(piece, {})
            before = min(readers.values(), default=None)
            readers[reader] = ms
            if before is None or ms < before:
                earlier.append((piece, ms))
        return WindowChange(earlier, abandoned)

    def withdraw(self, reader: int) -> list[int]:
        """Forget `reader`; the pieces that no reader wants any more."""
        return [
            piece
            for piece in [p for p, readers in self._wants.items() if reader in readers]
            if self._drop(reader, piece)
        ]

    def _drop(self, reader: int, piece: int) -> bool:
        """Remove one wish; True when it was the piece's last."""
        readers = self._wants[piece]
        readers.pop(reader, None)
        if readers:
            return False
        del self._wants[piece]
        return True

    def deadline(self, piece: int) -> int | None:
        """The earliest deadline any reader set on `piece`, or None."""
        readers = self._wants.get(piece)
        return min(readers.values()) if readers else None

    def items(self) -> Iterator[tuple[int, int]]:
        """Every wanted piece with its earliest deadline."""
        for piece, readers in self._wants.items():
            yield piece, min(readers.values())

    def __len__(self) -> int:
        return len(self._wants)

    def __contains__(self, piece: object) -> bool:
        return piece in self._wants
