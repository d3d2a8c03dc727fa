"""`streme fetch MAGNET|INFOHASH|FILE.torrent`: download into the cache, no server needed.

How this works: the argument names a torrent (`fetchsource.parse_source`); a .torrent
is kept in the cache as `<infohash>.torrent`, so the engine adds it without asking the
swarm for its metadata. When the cache index already serves the files asked for (`--file
N`, else the torrent's videos), there is nothing to do. Otherwise the command runs its
own uvloop and P2P engine, with the `p2p` settings of the config file and the
environment (`download.Download`), showing the progress on stderr (`progress.py`) until
every wanted file is published into the cache. SIGINT (Ctrl-C) or SIGTERM stops the
engine, which saves resume data: the same command later continues where this one
stopped (`torrent/resume.py`). A second SIGINT quits at once, without saving. The paths
of the files in the cache go to stdout, one a line; everything else to stderr.

A magnet's own trackers (`tr=`) are used only with `p2p.allow_client_trackers`, as on a
server; the configured `p2p.trackers` always are.

Exit status: 0 done (the files are in the cache, now or already); 1 an unexpected error;
2 a usage or configuration error (bad argument or setting, P2P off, no such file index);
3 no peers (`p2p.no_peers_timeout`); 4 no metadata (`p2p.metadata_timeout`); 5 the disk
is full; 6 another P2P failure (e.g. stalled: no byte for `p2p.stall_timeout`); 130
interrupted by SIGINT (143: SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
from typing import TYPE_CHECKING

from streme.config import ConfigError, build_config
from streme.progress import format_duration, format_size

if TYPE_CHECKING:
    from rich.console import Console

    from streme.download import Download

EXIT_DONE = 0
EXIT_USAGE = 2
EXIT_P2P = 6
# P2PError.code -> exit status; any other P2P failure exits EXIT_P2P.
P2P_EXIT = {"no_peers": 3, "metadata_timeout": 4, "disk_full": 5}

EPILOG = """\
exit status:
  0    done: the files are in the cache (already there counts)
  1    an unexpected error
  2    usage or configuration error (bad argument or setting, P2P off, bad --file)
  3    no peers found within p2p.no_peers_timeout
  4    no metadata within p2p.metadata_timeout
  5    the cache's disk is full
  6    another P2P failure, e.g. stalled: no byte for p2p.stall_timeout (resumable)
  130  interrupted (Ctrl-C; 143 for SIGTERM): resume data is saved, and running the
       same command again continues the download

The P2P settings come from the config file and the environment, as for `serve`, e.g.
STREME_P2P_TRACKERS, STREME_P2P_LISTEN_INTERFACES, STREME_P2P_DHT, STREME_P2P_LSD,
STREME_P2P_UPNP, STREME_P2P_NATPMP, STREME_P2P_STATIC_PEERS, STREME_P2P_METADATA_TIMEOUT,
STREME_P2P_NO_PEERS_TIMEOUT, STREME_P2P_DOWNLOAD_RATE_LIMIT. A magnet's own trackers
(tr=) are used only with STREME_P2P_ALLOW_CLIENT_TRACKERS=1. Progress goes to stderr (a
bar on a terminal, else a line every 2 s); the paths of the files in the cache go to
stdout, one a line.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="download a torrent into the cache (no server needed)",
        description="Download a torrent's files into the cache directory with this\n"
        "process's own P2P engine, then exit. No server needs to be running.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch.add_argument(
        "source",
        metavar="MAGNET|INFOHASH|FILE.torrent",
        help="a magnet link, an infohash (40 hex digits or 32 base32 characters), "
        "or a .torrent file",
    )
    fetch.add_argument(
        "--file",
        metavar="N",
        type=int,
        help="download only file N of the torrent (0, 1, ...; default: its videos, "
        "or every file if it has none)",
    )
    fetch.add_argument(
        "--cache-dir", metavar="DIR", help="the cache directory (default: as `serve` would use)"
    )
    fetch.add_argument("--config", metavar="FILE", help="TOML configuration file")
    fetch.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        default="warning",
        help="verbosity of the engine's log on stderr (default warning)",
    )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """`streme fetch`; `argv` is the command line, repeated in the resume hint."""
    try:
        return _run(args, argv)
    except KeyboardInterrupt:  # before the engine's handlers, or a second Ctrl-C
        say("streme fetch: interrupted; no resume data was saved by this stop")
        return 128 + signal.SIGINT


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    # Here, not at the top: `streme serve` and `--help` need none of it.
    from streme.download import Download
    from streme.fetchsource import (
        UsageError,
        cached_paths,
        keep_torrent,
        parse_source,
        record_download,
    )
    from streme.progress import BarReporter, LineReporter, Reporter

    try:
        source = parse_source(args.source)
        cache = {"dir": args.cache_dir} if args.cache_dir is not None else {}
        config = build_config(toml_path=args.config, cli={"cache": cache} if cache else None)
        if args.file is not None and args.file < 0:
            raise UsageError("--file must be a file index: 0, 1, ...")
    except (UsageError, ConfigError) as exc:
        return fail(EXIT_USAGE, str(exc))
    console = None
    if sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
    setup_logging(args.log_level, console)
    try:
        keep_torrent(config, source)
        paths = cached_paths(config, source, args.file)
    except (UsageError, OSError) as exc:
        return fail(EXIT_USAGE, str(exc))
    if paths is not None:
        say(f"fetch {source.infohash}: already in the cache, nothing to download")
        print("\n".join(paths), flush=True)
        return EXIT_DONE
    if not config.p2p.enabled:
        return fail(EXIT_USAGE, "P2P is off (p2p.enabled, STREME_P2P_ENABLED=0)")
    trackers = source.trackers
    if trackers and not config.p2p.allow_client_trackers:
        say(
            f"note: the magnet's {len(trackers)} tracker(s) are ignored: "
            "p2p.allow_client_trackers is off (STREME_P2P_ALLOW_CLIENT_TRACKERS=1 uses them)"
        )
        trackers = ()
    reporter: Reporter = (
        BarReporter(source.infohash, console)
        if console is not None
        else LineReporter(source.infohash, sys.stderr)
    )
    files = None if args.file is None else [args.file]
    download = Download(config, source.infohash, files, trackers, reporter, say)
    import uvloop

    try:
        uvloop.run(download.run())
    finally:
        reporter.close()
    status = exit_status(download)
    if download.signal is not None:
        how = "resume it" if download.resumable() else "start again"
        say(f"fetch {source.infohash}: {summary(download)}; to {how}, run the same command:")
        say("  " + shlex.join(["streme", *argv]))
    elif download.error is not None:
        code = getattr(download.error, "code", "")
        fail(status, f"{download.error}" + (f" ({code})" if code else ""))
    else:
        record_download(download.cache_root, source.infohash, download.name)
        say(f"fetch {source.infohash}: done, {summary(download)}; in the cache:")
        print("\n".join(download.landed), flush=True)
    return status


def exit_status(download: Download) -> int:
    if download.signal is not None:
        return 128 + download.signal
    error = download.error
    if error is None:
        return EXIT_DONE
    if isinstance(error, IndexError):  # --file N beyond the torrent's files
        return EXIT_USAGE
    return P2P_EXIT.get(error.code, EXIT_P2P)


def summary(download: Download) -> str:
    took = format_duration(download.seconds)
    return f"downloaded {format_size(download.downloaded)} this run in {took}"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fail(status: int, message: str) -> int:
    say(f"streme fetch: {message}")
    return status


def setup_logging(level: str, console: Console | None) -> None:
    """The engine's log on stderr; through the console when a progress bar is drawn
    there, so the two do not garble each other."""
    handler: logging.Handler
    if console is not None:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False)
        fmt = "%(name)s: %(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, handlers=[handler])
