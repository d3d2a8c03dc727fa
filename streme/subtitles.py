"""Subtitles as WebVTT, the one format a browser's `<track>` reads. Pure: bytes in, bytes out.

How this works: the file's bytes are decoded first: a byte-order mark says UTF-8 or
UTF-16; else strict UTF-8; else the charset `charset_normalizer` finds most likely (the
cp1252, cp1251 or ISO-8859 subtitles of older releases); else UTF-8 with U+FFFD for what
does not decode. Line ends become `\\n`. An SRT is then rewritten cue by cue: its counter
dropped, `00:01:02,500` times as `00:01:02.500` (one-digit hours and missing
milliseconds tolerated), coordinates after the times dropped, `<font>` tags dropped
(WebVTT has none), a bare `&` or `<` escaped so the browser's parser keeps the text. A
WebVTT file only gets its text decoded and its header checked. A block without a valid
timing line is skipped, not fatal: players do the same.
"""

from __future__ import annotations

import codecs
import re

SUBTITLE_EXTENSIONS = (".srt", ".vtt")
VTT_TYPE = "text/vtt; charset=utf-8"
WESTERN = "cp1252"
CHAOS_MARGIN = 0.05  # charset_normalizer's "chaos" (0: clean text .. 1: noise)
# Quotes, dashes, ellipsis, guillemets, inverted marks, degree, euro, no-break space.
_WESTERN_MARKS = (
    "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u00bf\u00a1\u00b0\u20ac\u00a0"
)

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# 1:02:03,456 / 01:02:03.456 / 01:02:03 / 02:03,456 (no hours) -> groups h, m, s, ms.
_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
# Tags WebVTT cue text knows; anything else that looks like a tag is shown as text.
_KNOWN_TAG = re.compile(r"<(/?)(i|b|u|c|v|lang|ruby|rt)([.\s][^<>]*)?>", re.IGNORECASE)
_FONT_TAG = re.compile(r"</?font(?:\s[^<>]*)?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#\d+|#x[0-9A-Fa-f]+);")


def decode_text(data: bytes) -> str:
    """The file's text with `\\n` line ends, whatever its charset."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = data.decode(codec, errors="replace")
            break
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _detected(data)
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _detected(data: bytes) -> str:
    """`charset_normalizer`'s guess, but Windows-1252 where that reads as plausible
    Western text and was almost as likely: on a subtitle's few hundred accented letters
    its guesses among the single-byte Latin codepages are close to a coin toss (French
    came out as Baltic cp1257), and cp1252 is what most such subtitles are in."""
    from charset_normalizer import from_bytes  # only for a file that is not UTF-8: 34 ms

    results = from_bytes(data)
    best = results.best()
    if best is None:
        return data.decode("utf-8", errors="replace")
    western = next((r for r in results if WESTERN in r.could_be_from_charset), None)
    if (
        western is not None
        and WESTERN not in best.could_be_from_charset
        and western.chaos <= best.chaos + CHAOS_MARGIN
        and _plausibly_western(data.decode(WESTERN, errors="replace"))
    ):
        return data.decode(WESTERN, errors="replace")
    return str(best)


def _plausibly_western(text: str) -> bool:
    """Mostly ASCII letters; every other character a letter or Western punctuation."""
    high = [c for c in text if ord(c) > 127]
    letters = sum(c.isalpha() for c in text)
    return all(c.isalpha() or c in _WESTERN_MARKS for c in high) and len(high) <= letters * 0.3


def _timestamp(h: str | None, m: str, s: str, ms: str | None) -> str:
    millis = int((ms or "0").ljust(3, "0"))
    return f"{int(h or 0):02d}:{int(m):02d}:{int(s):02d}.{millis:03d}"


def _cue_text(line: str) -> str:
    """One line of an SRT cue as WebVTT cue text."""
    if "<" not in line and "&" not in line and "-->" not in line:
        return line  # most lines: nothing to rewrite
    line = _FONT_TAG.sub("", line).replace("-->", "->")
    out = []
    pos = 0
    for tag in _KNOWN_TAG.finditer(line):
        out.append(_escape(line[pos : tag.start()]))
        slash, name, rest = tag.groups()
        out.append(f"<{slash}{name.lower()}{rest or ''}>")  # WebVTT's tag names are lower case
        pos = tag.end()
    out.append(_escape(line[pos:]))
    return "".join(out)


def _escape(text: str) -> str:
    """`<` as text, and `&` unless it starts an entity (WebVTT needs no other escape)."""
    parts = []
    pos = 0
    for entity in _ENTITY.finditer(text):
        parts.append(text[pos : entity.start()].replace("&", "&amp;"))
        parts.append(entity.group(0))
        pos = entity.end()
    parts.append(text[pos:].replace("&", "&amp;"))
    return "".join(parts).replace("<", "&lt;")


def srt_to_vtt(text: str) -> str:
    """An SRT's cues as a WebVTT file."""
    cues = []
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        lines = block.split("\n")
        for i, line in enumerate(lines[:2]):
            timing = _TIMING.match(line)
            if timing is None:
                continue
            g = timing.groups()
            start, end = _timestamp(*g[:4]), _timestamp(*g[4:])
            body = [_cue_text(t) for t in lines[i + 1 :] if t.strip()]
            if body:
                cues.append(f"{start} --> {end}\n" + "\n".join(body))
            break
    return "WEBVTT\n\n" + "\n\n".join(cues) + ("\n" if cues else "")


def vtt_text(text: str) -> str:
    """A WebVTT file as it is, with a header a browser accepts."""
    if text.startswith("WEBVTT") and (len(text) == 6 or text[6] in " \t\n"):
        return text
    return "WEBVTT\n\n" + text


def to_webvtt(data: bytes, name: str) -> bytes:
    """The subtitle file `name` (`.srt` or `.vtt`) as UTF-8 WebVTT."""
    text = decode_text(data)
    converted = vtt_text(text) if name.lower().endswith(".vtt") else srt_to_vtt(text)
    return converted.encode("utf-8")


def subtitle_url(infohash: str, n: int) -> str:
    """Where subtitle `n` of a title is served as WebVTT (subtitle_route.py)."""
    return f"/subtitles/{infohash}/{n}.vtt"


def is_subtitle(name: str) -> bool:
    return name.lower().endswith(SUBTITLE_EXTENSIONS)
