"""Which pieces a torrent has, and what the download may take besides the readers. Pure.

How this works: libtorrent downloads a wanted file in order (`sequential_download`),
deadline pieces first. Two things go wrong for a stream, and this plan answers both:

- After a seek, the in-order download still starts at the file's first missing piece:
  a capped seeder's bandwidth goes to bytes behind the reader (a seek read at 12-15 MiB/s
  from a 20 MiB/s seeder). So while readers read, the missing pieces behind the earliest
  reader's start are set to priority 0 (`floor_changes`); libtorrent's in-order cursor
  then starts at the reader, and what the window leaves goes to the bytes after it. When
  the readers leave, those pieces go back to the default priority.
- libtorrent cancels every request in flight when a deadline is set on a torrent that
  has none (`cancel_non_critical`); a reader whose window is complete leaves the list
  empty, and its next window cancels the in-order requests (a transmission 3.00 seeder
  never answers those cancels: the stream stalls). `anchors` names missing pieces to hold
  far deadlines so the list never runs empty mid-stream: the last ones of the wanted
  files, which the in-order download reaches last. Two, because libtorrent asks for the
  first piece of its list whatever its deadline: a lone anchor would come in, leave the
  list empty, and the deadline set next would cancel everything in flight.

`have` mirrors libtorrent's verified pieces, from `piece_finished_alert`, so nothing on
the event loop asks libtorrent's thread (`have_piece` is a synchronous round trip).
"""

from __future__ import annotations

from collections.abc import Container, Iterable

DEFAULT_PRIORITY = 4
SKIPPED = 0


class PiecePlan:
    def __init__(self, num_pieces: int) -> None:
        self.have = bytearray(num_pieces)
        self._wanted: list[range] = []  # piece ranges of the wanted files
        self._starts: dict[int, int] = {}  # reader -> the piece it started at
        self._lowered: set[int] = set()  # pieces this plan set to priority 0

    def load(self, have: Iterable[bool]) -> None:
        """libtorrent's own bitfield (at the start, and after a recheck)."""
        self.have = bytearray(1 if h else 0 for h in have)

    def finished(self, piece: int) -> None:
        if 0 <= piece < len(self.have):
            self.have[piece] = 1

    def has(self, piece: int) -> bool:
        return 0 <= piece < len(self.have) and self.have[piece] == 1

    def want(self, pieces: range) -> None:
        """The file covering `pieces` is now wanted. libtorrent set every piece of the
        wanted files back to their file's priority: nothing is lowered any more."""
        self._wanted.append(pieces)
        self._lowered.clear()

    def reading(self, reader: int) -> bool:
        return reader in self._starts

    def reader_started(self, reader: int, piece: int) -> list[tuple[int, int]]:
        """Reader `reader` starts at `piece`: the (piece, priority) changes to apply."""
        self._starts[reader] = piece
        return self.floor_changes()

    def reader_left(self, reader: int) -> list[tuple[int, int]]:
        if self._starts.pop(reader, None) is None:
            return []
        return self.floor_changes()

    def floor_changes(self) -> list[tuple[int, int]]:
        """Missing wanted pieces behind the earliest reader's start go to priority 0;
        pieces no longer behind it go back to the default."""
        floor = min(self._starts.values(), default=0)
        behind = {
            p for r in self._wanted for p in range(r.start, min(r.stop, floor)) if not self.has(p)
        }
        changes = [(p, SKIPPED) for p in sorted(behind - self._lowered)]
        changes += [(p, DEFAULT_PRIORITY) for p in sorted(self._lowered - behind)]
        self._lowered = behind
        return changes

    def priority(self, piece: int) -> int:
        """The priority `piece` should have when no reader holds a deadline on it."""
        return SKIPPED if piece in self._lowered else DEFAULT_PRIORITY

    def anchors(self, after: int, count: int, skip: Container[int] = ()) -> list[int]:
        """Up to `count` missing wanted pieces beyond `after`, not in `skip`: the last
        ones, where the in-order download arrives last."""
        found: list[int] = []
        for r in sorted(self._wanted, key=lambda r: r.stop, reverse=True):
            stop = r.stop
            start = max(r.start, after + 1)
            while len(found) < count and start < stop:
                piece = self.have.rfind(0, start, stop)
                if piece < 0:
                    break
                if piece not in skip and piece not in found:
                    found.append(piece)
                stop = piece
        return found
