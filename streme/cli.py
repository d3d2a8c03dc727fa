"""Command line: `streme serve [--host] [--port] [--cache-dir] [--cache-max-size SIZE]
[--cache-min-free SIZE_OR_PERCENT] [--config FILE] [--log-level] [--access-log]
[--workers N] [--no-zero-copy]`, and `streme pin|unpin INFOHASH [--cache-dir]`
(the usage records, directly).

`streme fetch` (download into the cache, no server) is fetch.py; `streme cache ...` and
`streme stats` (a running server's API) are apicommands.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from streme import __version__, apicommands, fetch, logbuffer
from streme.config import Config, ConfigError, build_config

EPILOG = """\
configuration sources, in increasing precedence: built-in defaults, the TOML file given
with --config, environment variables, then these flags. Every setting has an environment
variable STREME_<SECTION>_<FIELD>, e.g. STREME_HTTP_PORT=8080, STREME_CACHE_DIR=/srv/cache,
STREME_P2P_ENABLED=1, STREME_LOG_LEVEL=debug; for the cache sweep STREME_CACHE_MAX_SIZE,
STREME_CACHE_MIN_FREE, STREME_CACHE_CLEANUP_INTERVAL, STREME_CACHE_INCOMPLETE_MAX_AGE and
STREME_CACHE_EVICT_HAND_PLACED; STREME_P2P_IDLE_TIMEOUT for how long a torrent nobody reads
stays in the session; STREME_API_TOKEN for the token the /api/ routes and /metrics then
need (unset: changes through the API only from this host).
The original names still work: TORRENT_DOWNLOAD_PATH for the cache directory,
CACHE_CLEANUP_INTERVAL, and STREME_TRACKERS, STREME_DHT, STREME_LSD, STREME_UPNP for P2P.

values: booleans true/false, 1/0, yes/no, on/off; lists comma-separated; sizes in bytes
or with a unit, e.g. 500MiB, 50GiB, 10G (K M G T are binary) or 1.5GB (KB MB GB TB are
decimal); durations in seconds or e.g. 90s, 30m, 12h, 3d; STREME_CACHE_MIN_FREE also
takes a percentage of the filesystem, e.g. 5%.
A bad value exits with status 2 and names the field. See README.md for every setting.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streme",
        description="Torrent streaming server: GET /stream/proxy/{infohash} serves the video "
        "from the cache directory with no P2P when it is there.",
        epilog="`streme COMMAND --help` documents each command's flags.",
    )
    parser.add_argument("--version", action="version", version=f"streme {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the HTTP server",
        description="Run the HTTP server until SIGINT or SIGTERM.\n\n"
        "Players open / (the web page), /stream/proxy/{infohash}, /stream/magnet?xt=...,\n"
        "/playlist/{infohash}.m3u and Stremio's routes (/{infohash}/{fileIdx}); scripts use\n"
        "/api/ (README.md lists every route).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port to listen on (default 7000; 0 = any)")
    serve.add_argument(
        "--cache-dir",
        help="directory holding cached videos named with their infohash "
        "(default ./temp; created if missing)",
    )
    serve.add_argument(
        "--cache-max-size",
        metavar="SIZE",
        help="most bytes the cache may hold, e.g. 50GiB, 500MiB, 1.5GB "
        "(default 0: no cap; the sweep evicts past it)",
    )
    serve.add_argument(
        "--cache-min-free",
        metavar="SIZE_OR_PERCENT",
        help="free space to keep on the cache's filesystem, a size or a percentage of "
        "the filesystem such as 5%% (default 5%%)",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML configuration file")
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="log verbosity (default info)",
    )
    serve.add_argument(
        "--access-log", action="store_true", default=None, help="log one line per request"
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        help="processes serving the port (default 1; auto: one per core); the first one "
        "streams from the swarm, the others serve cache hits and hand it the rest",
    )
    serve.add_argument(
        "--no-zero-copy",
        dest="zero_copy",
        action="store_false",
        default=None,
        help="send file bodies by read+write instead of sendfile",
    )
    for name, verb in (("pin", "never evict"), ("unpin", "let the sweep evict again")):
        cmd = sub.add_parser(
            name,
            help=f"{verb} a title of the cache (by infohash)",
            description=f"{verb.capitalize()} the title INFOHASH: recorded in the cache's usage "
            "records (<cache>/.streme/state.db), seen by the next sweep of a running server. "
            f"`streme cache {name}` asks a running server through its API instead.",
        )
        cmd.add_argument("infohash", help="40 hex digits or 32 base32 characters")
        cmd.add_argument("--cache-dir", help="the cache directory (default: as `serve` would use)")
        cmd.add_argument("--config", metavar="FILE", help="TOML configuration file")
    fetch.add_parser(sub)
    apicommands.add_parsers(sub)
    return parser


def pin(args: argparse.Namespace, pinned: bool) -> int:
    """`streme pin|unpin INFOHASH`: set the pin in the usage records directly."""
    from streme.cache.infohash import InvalidInfohash, parse_infohash
    from streme.cache.records import RecordStore

    try:
        infohash = parse_infohash(args.infohash)
        cache = {"dir": args.cache_dir} if args.cache_dir is not None else {}
        config = build_config(toml_path=args.config, cli={"cache": cache} if cache else None)
    except (InvalidInfohash, ConfigError) as exc:
        print(f"streme: {exc}", file=sys.stderr)
        return 2
    store = RecordStore(os.path.abspath(config.cache.dir))
    store.open()
    try:
        store.set_pinned(infohash, pinned)
    finally:
        store.close()
    print(f"{infohash} {'pinned' if pinned else 'unpinned'} in {config.cache.dir}")
    return 0


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    http: dict[str, Any] = {}
    cache: dict[str, Any] = {}
    log: dict[str, Any] = {}
    if args.host is not None:
        http["host"] = args.host
    if args.port is not None:
        http["port"] = args.port
    if args.access_log is not None:
        http["access_log"] = args.access_log
    if args.zero_copy is not None:
        http["zero_copy"] = args.zero_copy
    if args.workers is not None:
        http["workers"] = int(args.workers) if args.workers.isdigit() else args.workers
    if args.cache_dir is not None:
        cache["dir"] = args.cache_dir
    if args.cache_max_size is not None:
        cache["max_size"] = args.cache_max_size
    if args.cache_min_free is not None:
        cache["min_free"] = args.cache_min_free
    if args.log_level is not None:
        log["level"] = args.log_level
    return {k: v for k, v in (("http", http), ("cache", cache), ("log", log)) if v}


def setup_logging(config: Config) -> None:
    # Batched, off the request path (streme/logbuffer.py); same format as basicConfig's.
    from streme.workers import worker_count

    # With --workers, every line says which process wrote it: [w0] is this one.
    tag = "[w0]" if worker_count(config.http.workers) > 1 else ""
    logbuffer.install(config.log.level, sys.stderr, tag=tag)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return fetch.run(args, argv)
    if args.command in ("cache", "stats"):
        return apicommands.run(args)
    if args.command in ("pin", "unpin"):
        return pin(args, args.command == "pin")
    if args.command != "serve":
        parser.print_help()
        return 2
    try:
        config = build_config(toml_path=args.config, cli=cli_overrides(args))
    except ConfigError as exc:
        print(f"streme: {exc}", file=sys.stderr)
        return 2
    setup_logging(config)
    from streme.app import run

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
