"""How much of a file's end a player reads before it plays, from the file's first bytes. Pure.

A player starting a file reads its head, and when the container keeps its index at the
end (an MP4 whose `moov` box follows the media data) it asks for that index next, before
anything plays. A stream starting at byte 0 keeps those end pieces coming too (the tail
pin, `stream.RangeReader`); every byte pinned but not read shares the swarm with the
pieces the player waits for. So the head decides:

- MP4 (ISO BMFF): the top-level boxes are walked from byte 0. `moov` before `mdat` (a
  "fast start" file, fragmented MP4): the player needs nothing from the end (0 bytes).
  `mdat` first: the index starts where `mdat` ends, and everything from there to the
  end of the file is what the player will read (`moov`, and any box after it).
- Anything else (Matroska/WebM, whose cues the player reads on its first seek; an MP4
  whose boxes the head does not reach): unknown (None), and `p2p.tail_pin_bytes` is used.
"""

from __future__ import annotations

# Top-level ISO BMFF boxes that may come before `mdat`/`moov` (ISO/IEC 14496-12 and
# common extensions); anything else means this is not an MP4 walk we can trust.
MP4_TOP_LEVEL = {
    b"ftyp",
    b"styp",
    b"free",
    b"skip",
    b"wide",
    b"pdin",
    b"uuid",
    b"sidx",
    b"meta",
    b"prft",
    b"emsg",
    b"moof",
    b"mfra",
}


def index_tail_bytes(head: bytes, file_size: int) -> int | None:
    """Bytes at the end of the file a player reads before playing: 0 when its index is
    at the front, None when the head does not tell."""
    if head[4:8] not in (b"ftyp", b"styp"):
        return None
    pos = 0
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos : pos + 4], "big")
        kind = head[pos + 4 : pos + 8]
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if pos + 16 > len(head):
                return None
            size = int.from_bytes(head[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:  # the box runs to the end of the file
            size = file_size - pos
        if size < header or pos + size > file_size:
            return None  # not a box: a damaged file or not MP4 after all
        if kind in (b"moov", b"moof"):
            return 0
        if kind == b"mdat":
            end = pos + size
            return file_size - end if end < file_size else None
        if kind not in MP4_TOP_LEVEL:
            return None
        pos += size
    return None
