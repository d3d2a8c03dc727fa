"""A real video player: Debian's headless Chromium, driven by Playwright's sync API.

`Browser` launches `/usr/bin/chromium` once (never a downloaded browser: Playwright only
drives it, through `executable_path`), and `Browser.play` opens a fresh page with a muted
`<video>` element, points it at a URL and plays it: to `playing`, then through each seek.
Everything runs inside the page in one `page.evaluate`, so the times are the page's own
(`performance.now()`, in seconds from the moment `src` is set) and no Python round trip
sits inside a measurement.

"Playing" and "resumed after a seek" are measured from the element's state, polled every
5 ms in the page, not from the `playing` event alone: after a seek Chromium does not
promise a `playing` event (it fires one only if the element went through `waiting`), and
a `playing` event only says the element intends to play, not that time moves. So:

- `time_to_playing` is the first moment with `paused` false, `seeking` false,
  `readyState >= HAVE_FUTURE_DATA` and `currentTime` past where playback started;
- a seek to `target` has resumed at the first moment after `currentTime = target` with
  `seeking` false, `paused` false, `readyState >= HAVE_FUTURE_DATA` and `currentTime`
  past `target` (by 1 ms): the new position was decoded and the clock runs again.

The `playing` and `seeked` events are recorded too (`playing_event_at`, `seeked_event_at`)
for comparison. Seen with Chromium 156: every seek went `seeking`, `waiting`, `seeked`,
`playing`, and the polled state moved up to ~30 ms before those events were dispatched
(the seek is done in the media pipeline; the events wait for the page's main thread).
After each point the player keeps playing for `hold` seconds of media
time, so a stall right after the first frames is caught. A media error, a rejected
`play()`, or a phase that does not finish within `timeout` raises `PlaybackError`, whose
message holds the whole timeline: media events and the HTTP requests the player made
(with their `Range` headers and the answers), seen from the browser.

Playwright's sync API marks its asyncio loop as running in the calling thread between
calls, so keep a `Browser` out of async tests (the fixture is module-scoped and the player
tests are sync).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import (
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"

# Loopback only: no sync, updates, field trials or safe browsing calls to Google; no QUIC;
# autoplay without a gesture. `launch` gives every browser a fresh temporary profile
# (`--user-data-dir` is Playwright's to set) and, as root needs, `--no-sandbox`.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    "--metrics-recording-only",
    "--autoplay-policy=no-user-gesture-required",
)

PAGE = "<!doctype html><html><head><title>player</title></head><body></body></html>"

# The whole playback, in the page. Resolves (never rejects) with what happened.
# The scenario run inside the page (one `page.evaluate`): see play.js.
PLAY_JS = Path(__file__).with_name("play.js").read_text()


@dataclass(frozen=True)
class MediaError:
    """`HTMLMediaElement.error`: code 1 aborted, 2 network, 3 decode, 4 src not supported."""

    code: int
    message: str

    def __str__(self) -> str:
        names = {1: "ABORTED", 2: "NETWORK", 3: "DECODE", 4: "SRC_NOT_SUPPORTED"}
        return f"MediaError {self.code} ({names.get(self.code, '?')}): {self.message!r}"


@dataclass(frozen=True)
class MediaEvent:
    """One media event with the element's state when it fired; `t` in s from `src` set."""

    t: float
    event: str
    current_time: float
    ready_state: int
    network_state: int
    paused: bool
    seeking: bool
    duration: float | None
    buffered: tuple[tuple[float, float], ...]
    error: MediaError | None = None

    def __str__(self) -> str:
        buffered = " ".join(f"{a:.2f}-{b:.2f}" for a, b in self.buffered) or "-"
        text = (
            f"{self.t:8.3f}s  {self.event:<15} pos={self.current_time:.3f} "
            f"ready={self.ready_state} net={self.network_state} "
            f"{'paused' if self.paused else 'running'}{' seeking' if self.seeking else ''} "
            f"buffered={buffered}"
        )
        return text + (f"  {self.error}" if self.error else "")


@dataclass
class HttpExchange:
    """One request of the page, as the browser saw it; times in s from `src` set."""

    t: float
    method: str
    url: str
    range: str | None
    status: int | None = None
    content_range: str | None = None
    content_length: str | None = None
    t_response: float | None = None
    t_done: float | None = None
    failure: str | None = None

    def __str__(self) -> str:
        answer = (
            f"-> {self.status} {self.content_range or ''} len={self.content_length}"
            if self.status is not None
            else "-> (no response)"
        )
        end = f" FAILED {self.failure}" if self.failure else ""
        done = f" done {self.t_done:.3f}s" if self.t_done is not None else ""
        return f"{self.t:8.3f}s  {self.method} range={self.range} {answer}{done}{end}"


@dataclass(frozen=True)
class SeekResult:
    """One seek; times in s from `src` set, `None` when it never happened."""

    target: float
    issued_at: float
    resumed_at: float | None
    seeked_event_at: float | None
    playing_event_at: float | None

    @property
    def seek_to_playing(self) -> float | None:
        """Seconds from `currentTime = target` to playback moving again past `target`."""
        return None if self.resumed_at is None else self.resumed_at - self.issued_at


@dataclass
class Timeline:
    """What one `Browser.play` saw. Times are seconds from the moment `src` was set."""

    url: str
    ok: bool
    phase: str  # "done", or the phase that failed: "metadata", "playing", "seek to 8.0", ...
    reason: str | None
    time_to_playing: float | None  # `src` set -> playback moving (see the module doc)
    playing_event_at: float | None  # the first `playing` event
    start_position: float | None
    seeks: list[SeekResult]
    duration: float | None  # `video.duration` (from the metadata)
    video_size: tuple[int, int]
    error: MediaError | None
    play_rejection: str | None
    events: list[MediaEvent]
    requests: list[HttpExchange] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def first(self, event: str) -> MediaEvent | None:
        return next((e for e in self.events if e.event == event), None)

    def describe(self) -> str:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}s"

        lines = [
            f"{self.url}: {'ok' if self.ok else 'FAILED in ' + self.phase}"
            + (f" ({self.reason})" if self.reason else ""),
            f"  time_to_playing={fmt(self.time_to_playing)} "
            f"first playing event={fmt(self.playing_event_at)} duration={self.duration} "
            f"size={self.video_size[0]}x{self.video_size[1]}",
        ]
        if self.error:
            lines.append(f"  {self.error}")
        if self.play_rejection:
            lines.append(f"  play() rejected: {self.play_rejection}")
        lines.extend(
            f"  seek to {s.target:.2f}s at {fmt(s.issued_at)}: resumed after "
            f"{fmt(s.seek_to_playing)} (seeked event {fmt(s.seeked_event_at)}, "
            f"playing event {fmt(s.playing_event_at)})"
            for s in self.seeks
        )
        lines.append("  media events:")
        lines.extend(f"    {e}" for e in self.events)
        lines.append(f"  http requests ({len(self.requests)}):")
        lines.extend(f"    {r}" for r in self.requests)
        if self.console:
            lines.append("  console:")
            lines.extend(f"    {c}" for c in self.console)
        return "\n".join(lines)


class PlaybackError(AssertionError):
    """Playback failed: a media error, a rejected `play()` or a timeout. Holds the timeline."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(timeline.describe())
        self.timeline = timeline


def chromium_path() -> str | None:
    """Debian's Chromium, or None when it is not installed (`make system-deps` installs it)."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def _media_error(raw: Any) -> MediaError | None:
    return None if raw is None else MediaError(int(raw["code"]), str(raw["message"]))


def _opt_float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


class Browser:
    """Headless Chromium, launched once; `play` opens a fresh context and page per call.

    Use as a context manager: leaving it closes Chromium and Playwright's driver, also when
    the body raised.
    """

    def __init__(self, executable: str = CHROMIUM, args: Sequence[str] = CHROMIUM_ARGS) -> None:
        self.executable = executable
        self.args = list(args)
        self._playwright: Playwright | None = None
        self._browser: PlaywrightBrowser | None = None
        self._home: tempfile.TemporaryDirectory[str] | None = None

    @property
    def version(self) -> str:
        assert self._browser is not None, "the browser is not running"
        return self._browser.version

    def start(self) -> Browser:
        # Chromium's crash handler, caches and audio client live outside the profile, in
        # the XDG directories: point them at a temporary directory too, removed by `close`.
        self._home = tempfile.TemporaryDirectory(prefix="streme-chromium-")
        runtime = os.path.join(self._home.name, "runtime")  # PulseAudio's, else /tmp/pulse-*
        os.mkdir(runtime, 0o700)
        env: dict[str, str | float | bool] = {
            **os.environ,
            "XDG_CONFIG_HOME": os.path.join(self._home.name, "config"),
            "XDG_CACHE_HOME": os.path.join(self._home.name, "cache"),
            "XDG_RUNTIME_DIR": runtime,
        }
        try:
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=self.executable,
                headless=True,
                args=self.args,
                env=env,
                timeout=30_000,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Close Chromium, then stop Playwright's driver. Safe to call twice."""
        browser, self._browser = self._browser, None
        playwright, self._playwright = self._playwright, None
        home, self._home = self._home, None
        try:
            if browser is not None:
                browser.close()
        finally:
            try:
                if playwright is not None:
                    playwright.stop()
            finally:
                if home is not None:
                    home.cleanup()

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def page(self) -> Iterator[Page]:
        """A blank page in a fresh context (no cache or cookies shared), closed afterwards."""
        assert self._browser is not None, "the browser is not running"
        context = self._browser.new_context()
        try:
            page = context.new_page()
            page.set_content(PAGE)
            yield page
        finally:
            context.close()

    def play(
        self,
        url: str,
        seeks: Sequence[float] = (),
        *,
        timeout: float = 20.0,
        hold: float = 0.5,
        check: bool = True,
    ) -> Timeline:
        """Play `url` in a muted `<video>`: to playback, then seek to each of `seeks` (s).

        `timeout` bounds each phase (metadata, first playback, each seek, each hold); `hold`
        is the media time played after the start and after each seek. With `check`, a
        failure raises `PlaybackError`; without, the failed `Timeline` is returned.
        """
        requests: dict[Request, HttpExchange] = {}
        console: list[str] = []
        # Requests are timed in the page's clock when Chromium gives timing, else by the
        # wall clock when the event reaches Python (ms late at most); both from `src` set.
        origin = [time.time() * 1000.0]

        def rel(epoch_ms: float) -> float:
            return (epoch_ms - origin[0]) / 1000.0

        def on_request(request: Request) -> None:
            if request.url.startswith(("data:", "about:")):
                return
            requests[request] = HttpExchange(
                t=rel(time.time() * 1000.0),
                method=request.method,
                url=request.url,
                range=request.headers.get("range"),
            )

        def on_response(response: Response) -> None:
            exchange = requests.get(response.request)
            if exchange is None:
                return
            headers = response.headers
            exchange.status = response.status
            exchange.content_range = headers.get("content-range")
            exchange.content_length = headers.get("content-length")
            exchange.t_response = rel(time.time() * 1000.0)

        def on_done(request: Request) -> None:
            exchange = requests.get(request)
            if exchange is None:
                return
            exchange.t_done = rel(time.time() * 1000.0)
            exchange.failure = request.failure
            timing = request.timing
            if timing["startTime"] > 0:
                exchange.t = rel(timing["startTime"])
                if timing["responseStart"] >= 0:
                    exchange.t_response = rel(timing["startTime"] + timing["responseStart"])

        def on_console(message: ConsoleMessage) -> None:
            console.append(f"{message.type}: {message.text}")

        with self.page() as page:
            page.on("request", on_request)
            page.on("response", on_response)
            page.on("requestfinished", on_done)
            page.on("requestfailed", on_done)
            page.on("console", on_console)
            page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
            origin[0] = time.time() * 1000.0
            try:
                raw = page.evaluate(
                    PLAY_JS,
                    {
                        "url": url,
                        "seeks": [float(s) for s in seeks],
                        "timeoutMs": timeout * 1000.0,
                        "hold": hold,
                    },
                )
            except PlaywrightError as exc:
                raw = {"ok": False, "phase": "evaluate", "reason": f"{exc}", "log": []}
            else:
                # Re-base the wall-clock times on the page's own `src` moment.
                shift = (raw["t0_epoch_ms"] - origin[0]) / 1000.0
                origin[0] = raw["t0_epoch_ms"]
                for exchange in requests.values():
                    exchange.t -= shift
                    if exchange.t_response is not None:
                        exchange.t_response -= shift
                    if exchange.t_done is not None:
                        exchange.t_done -= shift
        timeline = self._timeline(url, raw, list(requests.values()), console)
        if check and not timeline.ok:
            raise PlaybackError(timeline)
        return timeline

    @staticmethod
    def _timeline(
        url: str, raw: dict[str, Any], requests: list[HttpExchange], console: list[str]
    ) -> Timeline:
        events = [
            MediaEvent(
                t=float(e["t"]),
                event=str(e["event"]),
                current_time=float(e["current_time"]),
                ready_state=int(e["ready_state"]),
                network_state=int(e["network_state"]),
                paused=bool(e["paused"]),
                seeking=bool(e["seeking"]),
                duration=_opt_float(e["duration"]),
                buffered=tuple((float(a), float(b)) for a, b in e["buffered"]),
                error=_media_error(e["error"]),
            )
            for e in raw.get("log", [])
        ]
        seeks = [
            SeekResult(
                target=float(s["target"]),
                issued_at=float(s["issued_at"]),
                resumed_at=_opt_float(s["resumed_at"]),
                seeked_event_at=_opt_float(s["seeked_event_at"]),
                playing_event_at=_opt_float(s["playing_event_at"]),
            )
            for s in raw.get("seeks", [])
        ]
        return Timeline(
            url=url,
            ok=bool(raw["ok"]),
            phase=str(raw["phase"]),
            reason=raw.get("reason"),
            time_to_playing=_opt_float(raw.get("playing_at")),
            playing_event_at=_opt_float(raw.get("playing_event_at")),
            start_position=_opt_float(raw.get("start_position")),
            seeks=seeks,
            duration=_opt_float(raw.get("duration")),
            video_size=(int(raw.get("width", 0)), int(raw.get("height", 0))),
            error=_media_error(raw.get("error")),
            play_rejection=raw.get("play_rejection"),
            events=events,
            requests=sorted(requests, key=lambda r: r.t),
            console=console,
        )
