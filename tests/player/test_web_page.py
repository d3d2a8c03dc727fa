"""The web page at `/`, in Debian's Chromium: the way a person on the LAN uses streme.

streme runs on its defaults but for loopback, with an API token set. A hand-placed clip
with an SRT beside it (CRLF line ends, non-ASCII text) is in the cache; a libtorrent
seeder behind the session's opentracker seeds a two-file torrent (a clip and its SRT).
The page is opened with no token: it asks for one; a wrong one gets a clear message in
words; the right one shows the cache. The hand-placed title plays to `playing`, seeks,
and its subtitle track, switched on, puts the cue's text in the page (Chromium parsed the
WebVTT the server made from the SRT). Then the seeder's magnet, pasted into the box,
starts a stream from the swarm: it plays, seeks, shows in the torrents list, its
subtitle from the swarm shows too, and the file picker plays its second episode; once
downloaded it is listed in the cache and plays
from there. Screenshots at 1280 and 390 px wide go to
`test-artifacts/web/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import RunningServer
from tests.player.browser import Browser
from tests.player.clips import ClipMaker
from tests.torrent.peers import Tracker
from tests.torrent.swarm import make_seeder, p2p_settings

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
TOKEN = "lan-secret"
HAND = "f" * 40
CUE = "Grüße aus Köln — ñandú, 日本語"
SRT = f"1\r\n00:00:00,000 --> 00:10:00,000\r\n{CUE}\r\n\r\n".encode()
SWARM_CUE = "Ceci vient de l\u2019essaim"  # a typographic apostrophe
SWARM_SRT = f"1\r\n00:00:00,000 --> 00:10:00,000\r\n{SWARM_CUE}\r\n".encode()
TIMEOUT_MS = 30_000

# The element plays: time moves, nothing pending.
PLAYING = """() => {
  const v = document.querySelector('#video');
  return v && !v.paused && !v.seeking && v.readyState >= 3 && v.currentTime > 0.3;
}"""
PLAYING_PAST = """(t) => {
  const v = document.querySelector('#video');
  return v && !v.paused && !v.seeking && v.readyState >= 3 && v.currentTime > t + 0.2;
}"""


def play_and_seek(page: Page, seek_to: float) -> None:
    page.wait_for_function(PLAYING, timeout=TIMEOUT_MS)
    page.evaluate("(t) => { document.querySelector('#video').currentTime = t; }", seek_to)
    page.wait_for_function(PLAYING_PAST, arg=seek_to, timeout=TIMEOUT_MS)


def switch_subtitles_on(page: Page, label_part: str, cue: str) -> None:
    picker = page.locator("#subtitle-picker")
    option = picker.locator("option", has_text=label_part)
    expect(option).to_have_count(1, timeout=TIMEOUT_MS)
    picker.select_option(value=option.get_attribute("value"))
    expect(page.locator("#captions")).to_contain_text(cue, timeout=TIMEOUT_MS)


def test_the_page(
    browser: Browser,
    clips: ClipMaker,
    make_server: Callable[..., RunningServer],
    cache_dir: Path,
    tracker: Tracker,
    tmp_path: Path,
) -> None:
    clip = clips.get("mp4-faststart")
    (cache_dir / f"{HAND}.mp4").write_bytes(clip.path.read_bytes())
    (cache_dir / f"{HAND}.srt").write_bytes(SRT)
    second = clips.get("webm")  # smaller: E01 stays the default
    seeder = make_seeder(
        tmp_path / "seed",
        {
            "Show/Show.S01E01.mp4": clip.path.read_bytes(),
            "Show/Show.S01E02.webm": second.path.read_bytes(),
            "Show/Show.S01E01.fr.srt": SWARM_SRT,
        },
        piece_length=256 * 1024,
        tracker=tracker,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        server = make_server(p2p=p2p_settings(tracker), api={"token": TOKEN})
        with browser.page() as page:
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto(server.url("/"))
            # No token yet: the page asks for one; a wrong one is refused in words.
            expect(page.locator("#token-form")).to_be_visible(timeout=TIMEOUT_MS)
            page.fill("#token-input", "wrong")
            page.click("#token-save")
            expect(page.locator("#message")).to_contain_text("not accepted", timeout=TIMEOUT_MS)
            expect(page.locator("#token-form")).to_be_visible()
            page.fill("#token-input", TOKEN)
            page.click("#token-save")
            row = page.locator(f'#cache-list [data-infohash="{HAND}"]')
            expect(row).to_be_visible(timeout=TIMEOUT_MS)
            expect(page.locator("#token-form")).to_be_hidden()

            # The hand-placed title: plays, seeks, subtitles on.
            row.locator(".play").click()
            play_and_seek(page, clip.duration * 0.5)
            switch_subtitles_on(page, f"{HAND}.srt", CUE)

            # The seeder's magnet: a stream from the swarm.
            magnet = f"magnet:?xt=urn:btih:{seeder.infohash}&dn=Show"
            page.fill("#magnet-input", magnet)
            page.click("#play-button")
            play_and_seek(page, clip.duration * 0.6)
            torrent = page.locator(f'#torrent-list [data-infohash="{seeder.infohash}"]')
            expect(torrent).to_be_visible(timeout=TIMEOUT_MS)
            switch_subtitles_on(page, "Show.S01E01.fr.srt", SWARM_CUE)
            expect(page.locator("#message")).not_to_contain_text("not accepted")
            # The file picker: E01 (the default) shown, E02 chosen and played.
            picker = page.locator("#file-picker")
            expect(picker).to_be_visible()
            expect(picker.locator("option:checked")).to_contain_text("Show.S01E01.mp4")
            e02 = picker.locator("option", has_text="Show.S01E02.webm").get_attribute("value")
            picker.select_option(value=e02)
            page.wait_for_function(
                "(n) => document.querySelector('#video').currentSrc.endsWith('file=' + n)",
                arg=e02,
                timeout=TIMEOUT_MS,
            )
            play_and_seek(page, second.duration * 0.5)
            # Downloaded whole, it lands in the cache: the page lists it there, and it
            # plays from there.
            cached = page.locator(f'#cache-list [data-infohash="{seeder.infohash}"]')
            expect(cached).to_be_visible(timeout=TIMEOUT_MS)
            cached.locator(".play").click()
            play_and_seek(page, clip.duration * 0.3)
            switch_subtitles_on(page, "Show.S01E01.fr.srt", SWARM_CUE)  # now from the cache

            # Finding a title in the cache.
            hand_row = page.locator(f'#cache-list [data-infohash="{HAND}"]')
            page.fill("#cache-search", "show")
            expect(hand_row).to_have_count(0, timeout=TIMEOUT_MS)
            expect(cached).to_be_visible()
            page.fill("#cache-search", "no such title")
            expect(page.locator("#cache-list")).to_contain_text("No title in the cache matches")
            page.fill("#cache-search", "")
            expect(hand_row).to_be_visible(timeout=TIMEOUT_MS)

            page.screenshot(path=str(ARTIFACTS / "page-1280.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways on a phone: {width} px wide"
            page.screenshot(path=str(ARTIFACTS / "page-390.png"), full_page=True)
    finally:
        seeder.stop()
