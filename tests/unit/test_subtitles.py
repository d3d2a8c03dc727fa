"""SRT -> WebVTT and charset detection, table-driven over what real subtitle files hold."""

from __future__ import annotations

import codecs

import pytest

from streme.subtitles import decode_text, srt_to_vtt, to_webvtt, vtt_text

FRENCH = """1
00:00:01,000 --> 00:00:02,500
Où est la bibliothèque ? Je ne sais pas, peut-être là-bas.

2
00:00:03,000 --> 00:00:04,000
C'est très difficile à expliquer, mon frère.

3
00:00:05,000 --> 00:00:06,000
Ça m'a coûté énormément d'efforts, déjà.
"""
RUSSIAN = """1
00:00:01,000 --> 00:00:02,500
Где библиотека? Я не знаю, может быть там.

2
00:00:03,000 --> 00:00:04,000
Это очень трудно объяснить, брат.
"""
POLISH = """1
00:00:01,000 --> 00:00:02,500
Gdzie jest biblioteka? Nie wiem, może tam, przy źródle.

2
00:00:03,000 --> 00:00:04,000
To jest bardzo trudne do wyjaśnienia, bracie. Łódź, żółć, gęś.
"""
GERMAN = """1
00:00:01,000 --> 00:00:02,500
Wo ist die Bibliothek? Ich weiß es nicht, vielleicht dort drüben.
"""


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Grüße — 日本語".encode(), "Grüße — 日本語"),
        (codecs.BOM_UTF8 + "Grüße".encode(), "Grüße"),
        (codecs.BOM_UTF16_LE + "Grüße".encode("utf-16-le"), "Grüße"),
        (codecs.BOM_UTF16_BE + "Grüße".encode("utf-16-be"), "Grüße"),
        (FRENCH.encode("cp1252"), FRENCH),
        (FRENCH.encode("latin-1").replace(b"\n", b"\r\n"), FRENCH),
        (RUSSIAN.encode("cp1251"), RUSSIAN),
        (POLISH.encode("cp1250"), POLISH),
        (GERMAN.encode("cp1252"), GERMAN),
        (b"a\r\nb\rc\n", "a\nb\nc\n"),
    ],
    ids=[
        "utf8",
        "utf8-bom",
        "utf16le",
        "utf16be",
        "cp1252",
        "latin1-crlf",
        "cp1251",
        "cp1250",
        "cp1252-de",
        "eol",
    ],
)
def test_decode_text(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


def test_undecodable_bytes_are_replaced_not_fatal() -> None:
    text = decode_text(b"ok \x80\x81\xfe\x90")
    assert text.startswith("ok ")
    assert len(text) > 3


@pytest.mark.parametrize(
    ("srt", "vtt"),
    [
        (
            "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello\r\nworld\r\n\r\n",
            "00:00:01.000 --> 00:00:02.500\nHello\nworld",
        ),
        # One-digit hours, a short fraction, coordinates after the times.
        (
            "7\n0:01:02,5 --> 0:01:03,25 X1:100 X2:200 Y1:10 Y2:20\nhi",
            "00:01:02.500 --> 00:01:03.250\nhi",
        ),
        # No counter, a dot for milliseconds, no hours.
        ("01:02.300 --> 01:03.000\nshort", "00:01:02.300 --> 00:01:03.000\nshort"),
        # Tags WebVTT knows stay (lower-cased); <font> goes; bare & and < are escaped.
        (
            '1\n00:00:01,000 --> 00:00:02,000\n<I>Tom</I> & <font color="red">Jerry</font> <3',
            "00:00:01.000 --> 00:00:02.000\n<i>Tom</i> &amp; Jerry &lt;3",
        ),
        ("1\n00:00:01,000 --> 00:00:02,000\nR&amp;D", "00:00:01.000 --> 00:00:02.000\nR&amp;D"),
        # An arrow inside the text would end the cue's timing in WebVTT.
        ("1\n00:00:01,000 --> 00:00:02,000\na --> b", "00:00:01.000 --> 00:00:02.000\na -> b"),
    ],
)
def test_srt_cues(srt: str, vtt: str) -> None:
    assert srt_to_vtt(decode_text(srt.encode())) == f"WEBVTT\n\n{vtt}\n"


def test_broken_blocks_are_skipped() -> None:
    srt = "1\nnot a time\ntext\n\n2\n00:00:01,000 --> 00:00:02,000\nkept\n\n3\n00:00:03,000 --> x\n"
    assert srt_to_vtt(srt) == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nkept\n"
    assert srt_to_vtt("") == "WEBVTT\n\n"


def test_several_blank_lines_and_trailing_spaces() -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,000\none\n \n\n\n2\n00:00:03,000 --> 00:00:04,000\ntwo  \n"
    vtt = srt_to_vtt(srt)
    assert vtt.count("-->") == 2
    assert "\none\n\n00:00:03.000" in vtt


def test_vtt_files_keep_their_text() -> None:
    vtt = "WEBVTT - with a title\n\nNOTE hi\n\n00:01.000 --> 00:02.000\n<b>x</b>\n"
    assert vtt_text(vtt) == vtt
    assert vtt_text("00:01.000 --> 00:02.000\nx\n").startswith("WEBVTT\n\n00:01.000")
    assert to_webvtt(codecs.BOM_UTF8 + vtt.encode(), "a.VTT") == vtt.encode()


def test_to_webvtt_from_cp1252_srt() -> None:
    out = to_webvtt(FRENCH.replace("\n", "\r\n").encode("cp1252"), "Film.fr.srt").decode()
    assert out.startswith("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nOù est la bibliothèque")
    assert "\r" not in out


def test_subtitles_beside_a_video_by_stem() -> None:
    from streme.subtitle_route import sidecars, subtitles_by_stem

    listing = [
        "Film.2020.mkv",
        "Film.2020.srt",
        "Film.2020.en.srt",
        "Film.2020.fr.forced.vtt",
        "Film.srt",  # another video's (a shorter stem)
        "Film.2020.nfo",
        "Other.srt",
    ]
    by_stem = subtitles_by_stem(listing)
    assert sidecars("/c/Film.2020.mkv", by_stem) == [
        "/c/Film.2020.en.srt",
        "/c/Film.2020.fr.forced.vtt",
        "/c/Film.2020.srt",
    ]
    assert sidecars("/c/Film.mkv", by_stem) == [
        "/c/Film.2020.en.srt",
        "/c/Film.2020.fr.forced.vtt",
        "/c/Film.2020.srt",
        "/c/Film.srt",
    ]
    assert sidecars("/c/None.mkv", by_stem) == []
