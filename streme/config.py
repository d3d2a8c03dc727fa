"""Configuration: one msgspec Struct tree, validated on load.

How this works: every source produces a plain nested dict of overrides, merged in
increasing precedence — defaults (the Struct defaults), a TOML file, the environment,
then CLI flags. Strings in size, size-or-percent and duration fields are then parsed (the
same parsers for all three sources), and the merged dict is converted to `Config` once by
msgspec (lax mode), which checks types and the `Meta` bounds. Last, `_check_consistency`
checks what types cannot say (buffer water marks, extensions, static peers). A bad value
raises `ConfigError` whose message names the field (`http.port`) and the problem; the CLI
turns that into exit status 2.

Environment variables: `STREME_<SECTION>_<FIELD>` for every field (e.g.
`STREME_HTTP_PORT=8080`, `STREME_CACHE_MAX_SIZE=50GiB`), plus the original server's names
`TORRENT_DOWNLOAD_PATH` (cache.dir) and `CACHE_CLEANUP_INTERVAL` (cache.cleanup_interval),
and the P2P shortcuts `STREME_TRACKERS`, `STREME_DHT`, `STREME_LSD`, `STREME_UPNP`; a
`STREME_<SECTION>_<FIELD>` name beats the shortcut for the same field. Every name goes
through `convert_env_value`, which reads the target field's declared type:

- bool: true/false, 1/0, yes/no, on/off (any case); anything else is an error.
- int, float: a number (`float` refuses nan and inf).
- size (`Bytes`, marked `Unit.SIZE`): bytes or `500MiB`, `1.5GB`, `10G` (streme.units).
- size or percent (`Unit.SIZE_OR_PERCENT`): a size, or `5%` of the filesystem.
- duration (`Seconds`, `PositiveSeconds`, marked `Unit.DURATION`): seconds or `90s`, `30m`,
  `12h`, `3d`.
- list: comma-separated items, blanks dropped, each converted by the item type.
- str and Literal: the text unchanged (msgspec checks a Literal's choices).
- a number or a word (`http.workers`: `2` or `auto`): a number if it is one, else the text.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from streme.cache.mediatypes import DEFAULT_VIDEO_EXTENSIONS
from streme.units import (
    DAYS,
    SECONDS,
    KiB,
    MiB,
    parse_duration,
    parse_percent,
    parse_size,
    parse_size_or_percent,
)


class Unit(enum.Enum):
    """Marks (in `Annotated`) a field whose text is parsed by a unit parser."""

    SIZE = "size"
    SIZE_OR_PERCENT = "size or percent"
    DURATION = "duration"


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
# Seconds; text may be a duration like 90s, 30m, 12h, 3d.
Seconds = Annotated[float, msgspec.Meta(ge=0), Unit.DURATION]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0), Unit.DURATION]
# Bytes; text may be a size like 500MiB or 1.5GB.
Bytes = Annotated[int, msgspec.Meta(ge=0), Unit.SIZE]
# Bytes, or text: a size, or a percentage of the filesystem's total size like "5%".
BytesOrPercent = Annotated[Annotated[int, msgspec.Meta(ge=0)] | str, Unit.SIZE_OR_PERCENT]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class HTTPConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 7000
    backlog: PositiveInt = 1024
    # Time allowed from a request's first byte (or the connection's opening) to the end of
    # its head and any body: the slowloris guard. nginx's client_header_timeout is 60 s;
    # 10 s is plenty on a LAN.
    request_head_timeout: PositiveSeconds = 10 * SECONDS
    # Idle time allowed between requests on a kept-alive connection (nginx: 75 s, uvicorn: 5 s).
    keep_alive_timeout: PositiveSeconds = 15 * SECONDS
    # A response whose client accepts no bytes for this long is aborted.
    write_timeout: PositiveSeconds = 60 * SECONDS
    # nginx keepalive_requests defaults to 1000.
    max_requests_per_connection: PositiveInt = 1000
    # Concurrent connections; past this a new one is answered 503 and closed. 0: from the
    # descriptor limit (raised to its hard limit at startup), two per connection after a
    # reserve for files and peers (`streme/descriptors.py`).
    max_connections: Annotated[int, msgspec.Meta(ge=0)] = 0
    # Request line + headers, bytes. Node and h11 default to 16 KiB; nginx to 1 KiB + 4 x 8 KiB.
    max_head_bytes: Annotated[int, msgspec.Meta(ge=1 * KiB, le=1 * MiB), Unit.SIZE] = 16 * KiB
    # Bodies (bytes) are never needed by our routes; small ones are read and dropped to keep
    # the connection in sync, larger ones get 413.
    max_body_bytes: Bytes = 64 * KiB
    # Transport write-buffer water marks, bytes.
    write_buffer_high: Annotated[int, msgspec.Meta(ge=1), Unit.SIZE] = 256 * KiB
    write_buffer_low: Bytes = 64 * KiB
    # Chunk size (bytes) of the copying body path (used when zero_copy is off or impossible).
    copy_chunk_size: Annotated[int, msgspec.Meta(ge=4 * KiB, le=16 * MiB), Unit.SIZE] = 256 * KiB
    # Send file bodies with os.sendfile (no copy through user space).
    zero_copy: bool = True
    # Seconds in-flight responses may take to finish after SIGINT/SIGTERM.
    shutdown_timeout: Seconds = 10 * SECONDS
    access_log: bool = False
    # Processes serving the port (SO_REUSEPORT); "auto": one per core. The first owns the
    # swarm; the others answer cache hits and hand other requests to it (streme/workers.py).
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] | Literal["auto"] = 1
    # When set, the streaming routes need `?token=<this>` (players cannot send headers).
    stream_token: str = ""


class CacheConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    dir: str = "./temp"
    # Bytes: the smallest file the name rule serves.
    min_size: Bytes = 1 * MiB
    video_extensions: list[str] = msgspec.field(
        default_factory=lambda: list(DEFAULT_VIDEO_EXTENSIONS)
    )
    # Bytes the cache may hold in all (0: no cap); past it the sweep evicts.
    max_size: Bytes = 0
    # Free space to keep on the cache's filesystem: bytes, or a percentage of the
    # filesystem's total size ("5%"). Read it with `min_free_bytes`.
    min_free: BytesOrPercent = "5%"
    # Seconds between cache sweeps (the original's CACHE_CLEANUP_INTERVAL): each sweep
    # enforces max_size and min_free and removes stale partial downloads.
    cleanup_interval: PositiveSeconds = 1800 * SECONDS
    # Seconds: a partial download with no reader, untouched this long, is deleted.
    incomplete_max_age: PositiveSeconds = 3 * DAYS
    # Files the operator placed by hand count toward usage either way; they are evicted
    # only when this is true.
    evict_hand_placed: bool = False


class P2PConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # A cache miss streams from the swarm; off, it answers 404 not_cached.
    enabled: bool = True
    listen_interfaces: str = "0.0.0.0:6881"
    dht: bool = True
    lsd: bool = True
    upnp: bool = True
    natpmp: bool = True
    # Accept peers' uTP connections (peers behind NAT often reach us only this way).
    utp: bool = True
    # Dial new peers over uTP first. Off by default: libtorrent then waits out a 3 s uTP
    # timeout for every TCP-only peer (aria2c and many others) before it dials TCP, so a
    # cache miss took 4.6 s to a first byte instead of 0.6 s (docs/decisions/0005).
    outgoing_utp: bool = False
    # Appended to every torrent streme adds.
    trackers: list[str] = msgspec.field(default_factory=list)
    # Use the trackers (`tr=`) of a magnet a client sends. Off: only its infohash is used,
    # with `trackers` above; a client's tracker URL would make the server send requests
    # wherever the client says (server-side request forgery).
    allow_client_trackers: bool = False
    # Bytes/s a prefetch (a download no one reads) may take while any stream reads from
    # the swarm or waits for its metadata, so the stream comes first (0: no limit).
    prefetch_rate_while_streaming: Bytes = 2 * MiB
    # host:port peers ([v6addr]:port for IPv6) connected to every torrent (LAN seed boxes,
    # tests); checked by `parse_peer` at load.
    static_peers: list[str] = msgspec.field(default_factory=list)
    # Seconds to wait for a torrent's metadata.
    metadata_timeout: PositiveSeconds = 60 * SECONDS
    # Seconds: no peer connected this long after adding a torrent: 504 no_peers.
    no_peers_timeout: PositiveSeconds = 30 * SECONDS
    # Seconds: after a torrent failed (no metadata, no peers), requests for it get 503.
    failure_cooldown: Seconds = 300 * SECONDS
    # Seconds: a torrent with no reader leaves the libtorrent session after this long.
    idle_timeout: Seconds = 300 * SECONDS
    # Per-torrent transfer limits in bytes/s (0: none), and peer connections per torrent.
    download_rate_limit: Bytes = 0
    upload_rate_limit: Bytes = 0
    max_connections_per_torrent: PositiveInt = 200
    # Torrents in the session at once; a new one past this gets 503 capacity.
    max_active_torrents: PositiveInt = 20
    # Bytes ahead of the reader asked for with deadlines; beyond them the file comes in
    # order anyway. Every deadline piece is requested at once, so a wide window is a deep
    # queue at a slow peer: against a 4 MiB/s seeder 16 MiB made Chromium's seeks wait
    # 1.4 s (median) and the first 8 MiB 4.6 s; 2 MiB: 0.9 s and 2.3 s (decision 0005).
    readahead_bytes: Annotated[int, msgspec.Meta(ge=16 * KiB), Unit.SIZE] = 2 * MiB
    # Bytes kept coming from the end of the file when a stream starts at byte 0 and its
    # head does not say where its index is (an MP4's does: then exactly that tail is
    # fetched). Chromium read the last 3.4 KiB of a Matroska file before playing; an
    # MP4's moov at the end was 64 KiB of a 60 MB clip (TorrServer pins 8 MiB).
    tail_pin_bytes: Bytes = 1 * MiB
    # Bound on a swarm stream's memory: its buffer (with the chunk being written), the
    # pieces it asked for ahead and the one in hand.
    buffer_bytes: Annotated[int, msgspec.Meta(ge=16 * KiB), Unit.SIZE] = 4 * MiB
    # Seconds: a piece a reader has waited this long for is asked for afresh (its blocks may
    # be stuck at a peer that never answered a cancel, e.g. transmission 3.00).
    piece_kick_after: PositiveSeconds = 3 * SECONDS
    # Seconds: a piece that does not arrive for this long ends the response with an error.
    stall_timeout: PositiveSeconds = 60 * SECONDS


class APIConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Bearer token for every /api/ route and /metrics (`Authorization: Bearer <token>`).
    # Unset: reads are open, and POST, PUT and DELETE answer loopback clients only.
    token: str = ""
    # `Access-Control-Allow-Origin` on API and stream responses ("" none, "*" any, or one
    # origin such as http://tv.lan:8080); preflight requests are answered when set.
    cors_origin: str = ""
    # The largest .torrent `POST /api/prefetch` accepts, bytes.
    max_torrent_bytes: Annotated[int, msgspec.Meta(ge=1 * KiB, le=256 * MiB), Unit.SIZE] = 16 * MiB


class LogConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    level: LogLevel = "info"


class DLNAConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Announce a DLNA/UPnP media server on the LAN (SSDP), so smart TVs and DLNA players
    # find streme and browse its complete titles (streme/dlna/). Needs the optional
    # dependency: pip install 'streme[dlna]'.
    enabled: bool = False
    # The name TVs show.
    name: str = "streme"
    # The IPv4 address announced and put in the stream URLs. Empty: http.host when it is
    # one address (not 0.0.0.0 or ::), else the address of the default route's interface;
    # a guessed loopback address is refused (TVs cannot reach it).
    address: str = ""
    # Port of the UPnP description and control HTTP server; 0 picks a free one.
    port: Port = 0


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    http: HTTPConfig = msgspec.field(default_factory=HTTPConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    p2p: P2PConfig = msgspec.field(default_factory=P2PConfig)
    api: APIConfig = msgspec.field(default_factory=APIConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    dlna: DLNAConfig = msgspec.field(default_factory=DLNAConfig)


class ConfigError(Exception):
    """A configuration value is invalid; the message names the field."""


def _invalid(path: str, problem: object) -> ConfigError:
    return ConfigError(f"invalid config value for {path}: {problem}")


# Original (seed) environment names and the fields they set.
LEGACY_ENV = {
    "TORRENT_DOWNLOAD_PATH": ("cache", "dir"),
    "CACHE_CLEANUP_INTERVAL": ("cache", "cleanup_interval"),
    "STREME_TRACKERS": ("p2p", "trackers"),
    "STREME_DHT": ("p2p", "dht"),
    "STREME_LSD": ("p2p", "lsd"),
    "STREME_UPNP": ("p2p", "upnp"),
}

# Booleans from the environment (lower-cased before the lookup).
BOOL_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


@functools.cache
def field_types() -> dict[tuple[str, str], Any]:
    """(section, field) -> declared type (with `Annotated` extras), for every setting."""
    return {
        (section.name, field.name): field.type
        for section in msgspec.structs.fields(Config)
        for field in msgspec.structs.fields(section.type)
    }


def _unit_of(field_type: Any) -> Unit | None:
    if typing.get_origin(field_type) is Annotated:
        return next((x for x in typing.get_args(field_type)[1:] if isinstance(x, Unit)), None)
    return None


def _parse_unit(unit: Unit, text: str) -> Any:
    if unit is Unit.SIZE:
        return parse_size(text)
    if unit is Unit.DURATION:
        return parse_duration(text)
    return parse_size_or_percent(text)


def _parse_text(field_type: Any, text: str) -> Any:
    """`text` as a value of `field_type`; raises ValueError."""
    unit = _unit_of(field_type)
    if unit is not None:
        return _parse_unit(unit, text)
    annotated = typing.get_origin(field_type) is Annotated
    base = typing.get_args(field_type)[0] if annotated else field_type
    if base is bool:
        word = text.strip().lower()
        if word not in BOOL_WORDS:
            raise ValueError(f"{text!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
        return BOOL_WORDS[word]
    if base is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if base is float:
        try:
            number = float(text.strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a number")
        return number
    if typing.get_origin(base) in (typing.Union, types.UnionType):
        word = text.strip()
        return int(word) if word.isdigit() else word
    if typing.get_origin(base) is list:
        (item_type,) = typing.get_args(base)
        return [_parse_text(item_type, item.strip()) for item in text.split(",") if item.strip()]
    return text


def convert_env_value(section: str, field: str, raw: str) -> Any:
    """The value of setting `section.field` written as text `raw` (an environment variable),
    converted by the field's declared type (see the module docstring); raises ConfigError."""
    try:
        return _parse_text(field_types()[(section, field)], raw)
    except ValueError as exc:
        raise _invalid(f"{section}.{field}", exc) from None


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Overrides from the environment, converted by `convert_env_value`."""
    names = list(LEGACY_ENV.items())
    names += [
        (f"STREME_{section}_{field}".upper(), (section, field)) for section, field in field_types()
    ]
    out: dict[str, dict[str, Any]] = {}
    for name, (section, field) in names:  # STREME_<SECTION>_<FIELD> last: it wins
        if name in environ:
            out.setdefault(section, {})[field] = convert_env_value(section, field, environ[name])
    return out


def _parse_units(merged: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `merged` with the text in size, size-or-percent and duration fields parsed
    (TOML and flags; environment values arrive parsed). Raises ConfigError."""
    out = dict(merged)
    for (section, field), field_type in field_types().items():
        values = out.get(section)
        unit = _unit_of(field_type)
        if unit is None or not isinstance(values, Mapping):
            continue
        if isinstance(values.get(field), str):
            try:
                out[section] = {**values, field: _parse_unit(unit, values[field])}
            except ValueError as exc:
                raise _invalid(f"{section}.{field}", exc) from None
    return out


def min_free_bytes(cache: CacheConfig, filesystem_total: int) -> int:
    """Bytes to keep free on the cache's filesystem, whose total size is `filesystem_total`
    bytes: `cache.min_free` itself, or its percentage of the total rounded up."""
    value = cache.min_free
    if isinstance(value, str):  # "5%" after build_config; any accepted text otherwise
        value = parse_size_or_percent(value)
    if isinstance(value, int):
        return value
    return math.ceil(parse_percent(value) * filesystem_total / 100)


def parse_peer(text: str) -> tuple[str, int]:
    """(host, port) from `host:port`, `1.2.3.4:6881` or `[::1]:6881`; raises ValueError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ValueError(f"{text!r} is not host:port")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not host:port (port must be 1..65535)")
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1])), int(port)
        except ValueError:
            raise ValueError(f"{text!r} is not host:port ({host} is not an IPv6 address)") from None
    if not host:
        raise ValueError(f"{text!r} is not host:port (empty host)")
    if ":" in host:
        raise ValueError(f"{text!r} is not host:port (write an IPv6 address as [::1]:6881)")
    if any(c in host for c in "[] \t"):
        raise ValueError(f"{text!r} is not host:port (bad host {host!r})")
    return host, int(port)


def toml_overrides(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    return data


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base` (dicts merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(
    *,
    toml_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
) -> Config:
    """Merge defaults < TOML < environment < CLI and validate the result."""
    merged: dict[str, Any] = {}
    if toml_path is not None:
        merged = merge(merged, toml_overrides(toml_path))
    merged = merge(merged, env_overrides(os.environ if environ is None else environ))
    if cli:
        merged = merge(merged, cli)
    try:
        config = msgspec.convert(_parse_units(merged), Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    _check_consistency(config)
    return config


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Expected `int` <= 65535 - at `$.http.port`": lead with the field.
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if sep:
        return str(_invalid(where.rstrip("`").removeprefix("$."), message))
    return f"invalid config: {text}"


def _check_consistency(config: Config) -> None:
    http = config.http
    if http.write_buffer_low > http.write_buffer_high:
        raise _invalid(
            "http.write_buffer_low",
            "must not exceed http.write_buffer_high "
            f"({http.write_buffer_low} > {http.write_buffer_high})",
        )
    for ext in config.cache.video_extensions:
        if not ext.startswith(".") or len(ext) < 2 or "/" in ext:
            raise _invalid("cache.video_extensions", f"{ext!r} is not an extension like '.mp4'")
    for i, peer in enumerate(config.p2p.static_peers):
        try:
            parse_peer(peer)
        except ValueError as exc:
            raise _invalid(f"p2p.static_peers[{i}]", exc) from None
    _check_dlna(config.dlna)


def _check_dlna(dlna: DLNAConfig) -> None:
    if not dlna.name.strip():
        raise _invalid("dlna.name", "must not be empty (it is the name TVs show)")
    if dlna.address:
        try:
            address = ipaddress.IPv4Address(dlna.address)
        except ValueError:
            raise _invalid("dlna.address", f"{dlna.address!r} is not an IPv4 address") from None
        if address.is_unspecified or address.is_multicast:
            raise _invalid("dlna.address", f"{dlna.address} is not one machine's address")
