"""`streme cache ls|rm|pin|unpin|prune` and `streme stats`: a running server's API, as text.

How this works: each command is one or more requests through `apiclient.APIClient` to
the server `--url` names (default: the host and port of the config's `http` section,
a wildcard address read as loopback), with the config's `api.token`. The answers are
printed as plain aligned columns (easy to read, `grep` and `awk`), or as the API's JSON
with `--json`. No server, or an error answer: one line on stderr, exit status 1 (the
API's own message for a 4xx/5xx). A bad argument or setting: exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from streme.apiclient import DEFAULT_TIMEOUT, APIClient, APIError, Unreachable, default_url
from streme.cache.infohash import InvalidInfohash, parse_infohash
from streme.config import ConfigError, build_config
from streme.progress import format_duration, format_rate, format_size, plural

PAGE = 1000  # titles per request while listing (the API's most)
SORTS = ("last_served", "size", "hits", "added", "name")  # the API's `sort` choices

Command = Callable[[APIClient, argparse.Namespace], None]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        help="the server's address (default: http://<http.host>:<http.port> of the config, "
        "0.0.0.0 read as 127.0.0.1); the API token comes from STREME_API_TOKEN or api.token",
    )
    common.add_argument("--config", metavar="FILE", help="TOML configuration file")
    common.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"how long to wait for the server's answer (default {DEFAULT_TIMEOUT:g})",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the API's JSON as it is")
    epilog = "exit status: 0 done, 1 no server answers or it answered an error, 2 bad usage"

    cache = commands.add_parser(
        "cache",
        help="list and manage a running server's cache (its API)",
        description="Manage the cache of a running `streme serve` through its API.",
        epilog=epilog,
    )
    cache.set_defaults(command_fn=None, cache_parser=cache)
    actions = cache.add_subparsers(dest="action", metavar="ACTION")

    def action(
        name: str, fn: Command, summary: str, parents: Sequence[argparse.ArgumentParser]
    ) -> argparse.ArgumentParser:
        parser = actions.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=epilog,
            parents=[*parents, common],
        )
        parser.set_defaults(command_fn=fn)
        return parser

    ls = action("ls", list_titles, "list the titles in the cache", [as_json])
    ls.add_argument(
        "--sort",
        choices=SORTS,
        default="last_served",
        help="order: most recently served first (default), largest, most hits, newest, or by name",
    )
    rm = action("rm", remove, "delete a title from the cache", [])
    rm.add_argument("infohash", metavar="HASH", help="40 hex digits or 32 base32 characters")
    rm.add_argument(
        "--force",
        action="store_true",
        help="delete it even while it is being served or downloaded (those responses end)",
    )
    for name, verb in (("pin", "never evict a title"), ("unpin", "let the sweep evict it again")):
        pin = action(name, set_pin, verb, [])
        pin.add_argument("infohash", metavar="HASH", help="40 hex digits or 32 base32 characters")
    prune = action("prune", prune_cache, "sweep the cache now (cap and free space)", [])
    prune.add_argument(
        "--dry-run", action="store_true", help="only say which titles a sweep would evict"
    )

    stats = commands.add_parser(
        "stats",
        help="show a running server's counters",
        description="Show a running server's counters: requests, bytes, swarm, cache.",
        epilog=epilog,
        parents=[as_json, common],
    )
    stats.set_defaults(command_fn=show_stats)


def run(args: argparse.Namespace) -> int:
    if args.command_fn is None:  # `streme cache` alone
        args.cache_parser.print_help(sys.stderr)
        return 2
    try:
        config = build_config(toml_path=args.config)
        if getattr(args, "infohash", None) is not None:
            args.infohash = parse_infohash(args.infohash)
        client = APIClient(args.url or default_url(config.http), config.api.token, args.timeout)
    except (ConfigError, InvalidInfohash, ValueError) as exc:
        print(f"streme: {exc}", file=sys.stderr)
        return 2
    try:
        args.command_fn(client, args)
    except (Unreachable, APIError) as exc:
        print(f"streme: {exc}", file=sys.stderr)
        return 1
    return 0


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def table(rows: list[list[str]], right: set[int]) -> str:
    """Columns padded to their widest cell (those in `right` aligned right), the last
    one left unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell if i == len(row) - 1 else cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def when(seconds: float | None) -> str:
    return "never" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def title_size(title: dict[str, Any]) -> int:
    """Bytes as the server records them; when it has none, its files'."""
    return int(title["bytes"]) or sum(int(f["size"]) for f in title["files"])


def list_titles(client: APIClient, args: argparse.Namespace) -> None:
    titles: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = {"limit": str(PAGE), "sort": args.sort, **({"after": after} if after else {})}
        page = client.get("/api/cache", **query)
        titles += page["titles"]
        after = page["next"]
        if after is None:
            break
    if args.json:
        print_json({"titles": titles, "total": len(titles), "next": None})
        return
    if not titles:
        print(f"the cache of {client.url} is empty")
        return
    rows = [["INFOHASH", "SIZE", "HITS", "LAST SERVED", "STATE", "NAME"]]
    for t in titles:
        state = ["pinned"] if t["pinned"] else []
        state += [] if t["complete"] else ["partial"]
        rows.append(
            [
                t["infohash"],
                format_size(title_size(t)),
                str(t["hits"]),
                when(t["last_served"]),
                ",".join(state) or "-",
                t["name"] or "-",
            ]
        )
    print(table(rows, right={1, 2}))
    total = sum(title_size(t) for t in titles)
    print(f"{plural(len(titles), 'title')}, {format_size(total)}")


def remove(client: APIClient, args: argparse.Namespace) -> None:
    query = {"force": "1"} if args.force else {}
    try:
        done = client.request("DELETE", f"/api/cache/{args.infohash}", **query)
    except APIError as exc:
        if exc.code == "in_use":  # the API's hint names its query; ours is a flag
            raise APIError(exc.status, exc.code, f"{exc} (--force deletes it anyway)") from None
        raise
    forced = " (forced: it was in use)" if done.get("forced") else ""
    print(f"removed {done['removed']}, {format_size(done['bytes'])}{forced}")


def set_pin(client: APIClient, args: argparse.Namespace) -> None:
    method = "PUT" if args.action == "pin" else "DELETE"
    done = client.request(method, f"/api/cache/{args.infohash}/pin")
    print(f"{done['infohash']} {'pinned' if done['pinned'] else 'unpinned'}")


def prune_cache(client: APIClient, args: argparse.Namespace) -> None:
    query = {"dry_run": "1"} if args.dry_run else {}
    done = client.request("POST", "/api/cache/prune", **query)
    evicted = done["evicted"]
    verb = "would evict" if done["dry_run"] else "evicted"
    print(f"{verb} {plural(len(evicted), 'title')}, {format_size(done['freed'])}")
    for infohash in evicted:
        print(f"  {infohash}")
    state = "within" if done["satisfied"] else "still over"
    print(
        f"the cache {'would use' if done['dry_run'] else 'uses'} {format_size(done['usage'])}, "
        f"{format_size(done['free'])} free on its disk: {state} its limits"
    )


def counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "none"


def show_stats(client: APIClient, args: argparse.Namespace) -> None:
    s = client.get("/api/stats")
    if args.json:
        print_json(s)
        return
    req, cache = s["requests"], s["cache"]
    ratio = "-" if req["hit_ratio"] is None else f"{100 * req['hit_ratio']:.0f}%"
    served = s["bytes_served"]
    cap = format_size(cache["cap"]) if cache["cap"] else "none"
    held = format_size(cache["bytes"])
    titles = f" in {plural(cache['titles'], 'title')}"
    lines = [
        f"streme {s['version']} at {client.url}, up {format_duration(s['uptime'])}, "
        f"{plural(s['processes'], 'process', 'processes')}",
        f"streams: {req['hit']} from the cache, {req['miss_streamed']} from the swarm "
        f"(hit ratio {ratio}); failed: {counts(req['miss_failed'])}; "
        f"rejected: {counts(req['rejected'])}",
        f"served: {format_size(served.get('cache', 0))} from the cache, "
        f"{format_size(served.get('swarm', 0))} from the swarm; "
        f"{plural(s['active_streams'], 'stream')} now",
        f"swarm: {plural(s['active_torrents'], 'torrent')}, "
        f"down {format_rate(s['download_rate'])}, up {format_rate(s['upload_rate'])}; "
        f"downloaded {format_size(s['downloaded'])}, uploaded {format_size(s['uploaded'])}",
        f"cache: {held}{titles}; {format_size(cache['free'])} free, "
        f"cap {cap}, keeping {format_size(cache['min_free'])} free; "
        f"evictions: {counts(cache['evictions'])}",
        f"other requests: {counts(s['other_requests'])}",
    ]
    print("\n".join(lines))
