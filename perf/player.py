"""What a viewer waits for: a real player on streme and on peerflix, same swarm, same run.

A ~60 s H.264/AAC MP4 at ~8 Mb/s with `moov` at the end (tests/player/clips.py: the player
must read the file's tail before it can play) is seeded by libtorrent on 127.0.0.1, with
its upload unlimited or capped per torrent (`--limits`: 4 MiB/s, a few times the clip's
bitrate, and 20 MiB/s). For each cap, round (`--rounds`, who goes first alternates) and
client, everything starts afresh: opentracker, the seeder (announcing there), the client
with an empty cache. Then headless Chromium (tests/player/browser.py) plays the client's
URL and measures, from the page's own clock:

- time to `playing` (playback moving). streme: from the request (setting `src`; the server
  already runs). peerflix: from its launch, as it is given the magnet then (its spawn to
  `src` set, which includes waiting for its HTTP port, plus the player's time);
- seek to `playing` again, for `--seeks` positions spread forward and backward.

Clients (perf.clients): streme on its defaults but for what keeps it on loopback (DHT,
LSD, UPnP, NAT-PMP off; listening on 127.0.0.1) and `STREME_TRACKERS` naming the tracker;
peerflix (perf/peerflix_run.js) given a magnet whose `tr=` is the tracker, DHT off. The
swarm is perf.swarm's: libtorrent on its own defaults on loopback (`LIBTORRENT_DEFAULTS`,
as perf.coldstart's) with a per-torrent upload limit; before each client a throwaway
libtorrent client that knows no tracker takes a piece from it (`perf.swarm.warm_up`;
`--no-warm-up`), as a capped libtorrent seeder serves its very first peer ~1 s late,
whoever that is.

Each phase is bounded (`--timeout`); a failed play is printed with its timeline and
counted, and its failed phase counts as infinitely long. For each client's first round per
cap, the player's HTTP requests are printed with the bytes Chromium received for each, in all
and before `playing` (CDP `Network.dataReceived`). Every process is stopped by its PID.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from perf import clients
from perf.clients import LOOPBACK_ENV, wait_port
from perf.servers import free_port
from perf.swarm import LIBTORRENT_DEFAULTS, swarm
from tests.player.browser import CHROMIUM, Browser, HttpExchange, Timeline, chromium_path
from tests.player.clips import FFMPEG, ClipMaker
from tests.torrent.peers import OPENTRACKER, Torrent, Tracker, write_torrent

MiB = 1024 * 1024
PIECE = 256 * 1024
LIMITS = {"unlimited": 0, "4MiB/s": 4 * MiB, "20MiB/s": 20 * MiB}
SEEKS = (0.15, 0.85, 0.40, 0.65, 0.25)  # fractions of the duration, in this order
INF = float("inf")


Arrivals = list[tuple[float, int]]  # (s from `src` set, bytes) as Chromium received them


@dataclass
class Play:
    client: str
    timeline: Timeline
    launch_s: float = 0.0  # peerflix: its spawn to `src` set
    arrivals: list[Arrivals] = field(default_factory=list)  # per timeline.requests[i]

    @property
    def to_playing(self) -> float:
        t = self.timeline.time_to_playing
        return INF if t is None else self.launch_s + t

    @property
    def seeks(self) -> list[float]:
        got = [s.seek_to_playing for s in self.timeline.seeks]
        return [INF if s is None else s for s in got]


class Player(Browser):
    """`Browser` that also keeps when `src` was set and the bytes Chromium received per
    request (CDP `Network.dataReceived`), matched to `Timeline.requests` by Range and order.
    """

    def __init__(self, executable: str) -> None:
        super().__init__(executable)
        self.src_epoch = 0.0
        self.loads: list[tuple[str | None, Arrivals]] = []  # (Range, epoch arrivals)

    @contextmanager
    def page(self) -> Iterator[Page]:
        with super().page() as page:
            cdp = page.context.new_cdp_session(page)
            loads: dict[str, tuple[str | None, Arrivals]] = {}
            clock = [0.0]  # CDP's monotonic timestamps -> epoch s

            def sent(p: dict[str, Any]) -> None:
                clock[0] = p["wallTime"] - p["timestamp"]
                headers = {k.lower(): v for k, v in p["request"]["headers"].items()}
                loads.setdefault(p["requestId"], (headers.get("range"), []))

            def data(p: dict[str, Any]) -> None:
                if p["requestId"] in loads:
                    at = p["timestamp"] + clock[0]
                    loads[p["requestId"]][1].append((at, int(p["dataLength"])))

            cdp.on("Network.requestWillBeSent", sent)
            cdp.on("Network.dataReceived", data)
            cdp.send("Network.enable")
            try:
                yield page
            finally:
                self.loads = list(loads.values())

    def _timeline(  # type: ignore[override]
        self, url: str, raw: dict[str, Any], requests: list[HttpExchange], console: list[str]
    ) -> Timeline:
        self.src_epoch = float(raw.get("t0_epoch_ms", 0.0)) / 1000.0
        return Browser._timeline(url, raw, requests, console)

    def play_once(self, client: str, url: str, seeks: list[float], timeout: float) -> Play:
        timeline = self.play(url, seeks, timeout=timeout, check=False)
        out = Play(client, timeline)
        pool = list(self.loads)
        for exchange in timeline.requests:
            i = next((i for i, x in enumerate(pool) if x[0] == exchange.range), None)
            got = [] if i is None else pool.pop(i)[1]
            out.arrivals.append([(t - self.src_epoch, n) for t, n in got])
        return out


# -- the two clients, on a swarm of perf.swarm's ---------------------------------------


@dataclass
class Setup:
    workdir: Path
    torrent: Torrent
    tracker_port: int
    seeks: list[float]
    timeout: float  # per phase of a play
    warm_up: bool


def play_streme(player: Player, setup: Setup, tracker: Tracker) -> Play:
    with clients.streme(setup.workdir, setup.torrent, tracker, log_level=None) as streme:
        return player.play_once("streme", streme.url, setup.seeks, setup.timeout)


def play_peerflix(player: Player, setup: Setup, tracker: Tracker) -> Play:
    with clients.peerflix(setup.workdir, setup.torrent, tracker, "magnet") as peerflix:
        wait_port(peerflix.port, peerflix.proc, time.monotonic() + setup.timeout)
        play = player.play_once("peerflix", peerflix.url, setup.seeks, setup.timeout)
        play.launch_s = player.src_epoch - peerflix.launched_epoch
        return play


CLIENTS = {"streme": play_streme, "peerflix": play_peerflix}


# -- reporting ---------------------------------------------------------------------------


def print_requests(play: Play, moov: int, size: int) -> None:
    """The player's requests, bytes received in all and before `playing`; the tail's."""
    ready = play.timeline.time_to_playing or INF
    marks = [(e, play.timeline.first(e)) for e in ("loadedmetadata", "loadeddata")]
    shown = ", ".join(f"{e} {m.t:.3f} s" for e, m in marks if m is not None)
    print(f"  {play.client} round 1, player requests ({shown}, playing {ready:.3f} s):")
    print(f"{'start':>10}  response  1st byte      done  range{'status':>22}   received  ≤playing")
    head = tail = 0
    for exchange, arrivals in zip(play.timeline.requests, play.arrivals, strict=True):
        early = sum(n for t, n in arrivals if t <= ready)
        start = int((exchange.range or "bytes=0-")[6:].split("-")[0] or 0)
        tail, head = (tail + early, head) if start > size // 2 else (tail, head + early)

        def at(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        print(
            f"    {exchange.t:6.3f} {at(exchange.t_response):>9}"
            f" {at(arrivals[0][0] if arrivals else None):>9} {at(exchange.t_done):>9}"
            f"  {exchange.range or '-':20} {exchange.status or '-':>6}"
            f" {sum(n for _, n in arrivals):10} {early:9}  {exchange.failure or ''}"
        )
    print(
        f"  before playing: {head} B from the file's first half, {tail} B from its second;"
        f" moov: the last {size - moov} of {size} B"
    )
    for seek in play.timeline.seeks:
        took = seek.seek_to_playing
        print(
            f"  seek to {seek.target:.2f} s at {seek.issued_at:.3f}:"
            f" playing again after {'-' if took is None else f'{took:.3f} s'}"
        )


def metric(got: list[Play], kind: int) -> float:
    """kind 0: median time to playing; 1: median seek; 2: worst seek (inf: no sample)."""
    values = [p.to_playing for p in got] if kind == 0 else [s for p in got for s in p.seeks]
    if not values:
        return INF
    return max(values) if kind == 2 else statistics.median(values)


def print_table(plays: dict[tuple[str, str], list[Play]], rounds: int) -> None:
    rows = [
        ("time to playing, median (s)", 0, "<= 0.5x peerflix", 0.5),
        ("seek to playing, median (s)", 1, "<= 1.0x peerflix", 1.0),
        ("seek to playing, worst (s)", 2, "<= 2x peerflix's worst", 2.0),
    ]
    header = f"{'metric':<29} {'seeder':>9} {'streme':>8} {'peerflix':>8} {'ratio':>7}  target"
    print("\n" + header + "\n" + "-" * (len(header) + 30))
    for title, kind, target, bound in rows:
        for label in dict.fromkeys(lim for lim, _ in plays):
            s, p = (metric(plays.get((label, c), []), kind) for c in CLIENTS)
            ratio = s / p if p not in (0, INF) else float("nan")
            verdict = "met" if s <= bound * p and s != INF else "MISSED"
            print(f"{title:<29} {label:>9} {s:8.3f} {p:8.3f} {ratio:6.2f}x  {target} {verdict}")
    print(
        f"\nMedians over {rounds} round(s); seeks pooled over the rounds. streme: from the request"
        " (src set); peerflix: from its launch. A failed phase counts as inf."
    )


def run(player: Player, setup: Setup, label: str, name: str, round_: int) -> Play | str:
    """One play on a fresh swarm: the Play, or why there is none."""
    what = f"{label} {name} round {round_ + 1}"
    try:
        with swarm(
            setup.workdir,
            setup.torrent,
            setup.tracker_port,
            upload_limit=LIMITS[label],
            settings=LIBTORRENT_DEFAULTS,
            warm=setup.warm_up,
        ) as tracker:
            play = CLIENTS[name](player, setup, tracker)
    except (Exception, pytest.fail.Exception) as exc:
        print(f"FAILED {what}: {exc!r}", flush=True)
        return f"{what}: {exc!r}"
    shown = " ".join(f"{s:.3f}" for s in play.seeks)
    launch = f" (launch {play.launch_s:.3f})" if name == "peerflix" else ""
    print(f"{what}: playing {play.to_playing:.3f} s{launch}, seeks {shown}", flush=True)
    if not play.timeline.ok:
        print(play.timeline.describe(), flush=True)
    return play


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perf.player", description=__doc__.split("\n")[0]
    )
    # Five: seeks against a capped seeder land at a random phase of its upload tick; the
    # median of 15 pooled seeks still moved 0.94-1.14x between runs.
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limits", default=",".join(LIMITS), help=f"of: {', '.join(LIMITS)}")
    parser.add_argument("--seeks", default=",".join(f"{s:g}" for s in SEEKS), help="fractions")
    parser.add_argument("--duration", type=float, default=60.0, help="clip length, s")
    parser.add_argument("--timeout", type=float, default=60.0, help="per phase of a play, s")
    parser.add_argument("--no-warm-up", action="store_true", help="see perf.swarm.warm_up")
    args = parser.parse_args(argv)
    peerflix = clients.peerflix_installed()
    if OPENTRACKER is None or FFMPEG is None or chromium_path() is None or not peerflix:
        print("player section skipped: needs opentracker, ffmpeg, chromium and peerflix")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="streme-player-perf-"))
    print(f"work files, streme.log and peerflix.log in {workdir}")
    failures: list[str] = []
    try:
        clip = ClipMaker(workdir, args.duration).get("mp4-moov-end")
        seeks = [round(clip.duration * float(f), 3) for f in args.seeks.split(",")]
        tracker_port = free_port()
        announce = f"http://127.0.0.1:{tracker_port}/announce"
        files = {"movie.mp4": clip.path.read_bytes()}
        moov = files["movie.mp4"].rfind(b"moov") - 4  # the index, at the end
        torrent = write_torrent(workdir / "seed" / "movie", files, announce, PIECE)
        setup = Setup(workdir, torrent, tracker_port, seeks, args.timeout, not args.no_warm_up)
        print(
            f"clip: mp4, moov at the end, {clip.duration:.1f} s, {clip.size} B,"
            f" {clip.bit_rate / 1e6:.1f} Mb/s {'+'.join(clip.codecs)}; {PIECE // 1024} KiB"
            f" pieces; seeks to {seeks} s; {args.timeout:g} s per phase\n"
            f"streme: defaults + {LOOPBACK_ENV} + STREME_TRACKERS=<tracker>\n"
            "peerflix 0.39: given the magnet (tr=<tracker>), DHT off\n"
            f"seeder: libtorrent (defaults, loopback), per-torrent upload cap;"
            f" warmed up: {setup.warm_up}; Chromium plays, fresh page per play"
        )
        plays: dict[tuple[str, str], list[Play]] = {}
        player = Player(chromium_path() or CHROMIUM)
        with player:
            for label in args.limits.split(","):
                for round_ in range(args.rounds):
                    for name in list(CLIENTS)[:: 1 if round_ % 2 == 0 else -1]:
                        got = run(player, setup, label, name, round_)
                        if isinstance(got, str):
                            failures.append(got)
                            continue
                        plays.setdefault((label, name), []).append(got)
                        if not got.timeline.ok:
                            failures.append(
                                f"{label} {name} round {round_ + 1}: {got.timeline.phase}"
                            )
                        if round_ == 0:
                            print_requests(got, moov, clip.size)
        print_table(plays, args.rounds)
        print(f"failed plays: {len(failures)}")
        for failure in failures:
            print(f"  FAILED {failure}")
    finally:
        if not failures:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
