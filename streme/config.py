"""Configuration: one msgspec Struct tree, validated on load.

How this works: every source produces a plain nested dict of overrides, merged in
increasing precedence — defaults (the Struct defaults), a TOML file, the environment,
then CLI flags — and the merged dict is converted to `Config` once by msgspec, which
checks types and the `Meta` bounds. A bad value raises `ConfigError` whose message
names the field (`http.port`) and the problem; the CLI turns that into exit status 2.

Environment variables: `STREME_<SECTION>_<FIELD>` (e.g. `STREME_HTTP_PORT=8080`,
`STREME_CACHE_DIR=/srv/cache`), plus the original server's names
`TORRENT_DOWNLOAD_PATH` (cache directory) and `CACHE_CLEANUP_INTERVAL` (seconds), and the
P2P shortcuts `STREME_TRACKERS`, `STREME_DHT`, `STREME_LSD`, `STREME_UPNP`. List fields
take comma-separated values; booleans also take yes/no and on/off.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from streme.cache.mediatypes import DEFAULT_VIDEO_EXTENSIONS
from streme.units import SECONDS, KiB, MiB

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class HTTPConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 7000
    backlog: PositiveInt = 1024
    # Time allowed from a connection's first byte (or its opening) to the end of a request
    # head: the slowloris guard. nginx's client_header_timeout is 60 s; 10 s is plenty on a LAN.
    request_head_timeout: PositiveSeconds = 10 * SECONDS
    # Idle time allowed between requests on a kept-alive connection (nginx: 75 s, uvicorn: 5 s).
    keep_alive_timeout: PositiveSeconds = 15 * SECONDS
    # A response whose client accepts no bytes for this long is aborted.
    write_timeout: PositiveSeconds = 60 * SECONDS
    # nginx keepalive_requests defaults to 1000.
    max_requests_per_connection: PositiveInt = 1000
    # Request line + headers. Node and h11 default to 16 KiB; nginx to 1 KiB + 4 x 8 KiB.
    max_head_bytes: Annotated[int, msgspec.Meta(ge=1 * KiB, le=1 * MiB)] = 16 * KiB
    # Bodies are never needed by our routes; small ones are read and dropped to keep the
    # connection in sync, larger ones get 413.
    max_body_bytes: Annotated[int, msgspec.Meta(ge=0)] = 64 * KiB
    write_buffer_high: PositiveInt = 256 * KiB
    write_buffer_low: Annotated[int, msgspec.Meta(ge=0)] = 64 * KiB
    # Chunk size of the copying body path (used when zero_copy is off or impossible).
    copy_chunk_size: Annotated[int, msgspec.Meta(ge=4 * KiB, le=16 * MiB)] = 256 * KiB
    # Send file bodies with os.sendfile (no copy through user space).
    zero_copy: bool = True
    shutdown_timeout: Annotated[float, msgspec.Meta(ge=0)] = 10 * SECONDS
    access_log: bool = False


class CacheConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    dir: str = "./temp"
    min_size: Annotated[int, msgspec.Meta(ge=0)] = 1 * MiB
    video_extensions: list[str] = msgspec.field(
        default_factory=lambda: list(DEFAULT_VIDEO_EXTENSIONS)
    )
    # Seconds between sweeps of finished torrents (the original's CACHE_CLEANUP_INTERVAL).
    # Read and validated; no sweeping is implemented yet.
    cleanup_interval: PositiveSeconds = 1800 * SECONDS


class P2PConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # A cache miss streams from the swarm; off, it answers 404 not_cached.
    enabled: bool = True
    listen_interfaces: str = "0.0.0.0:6881"
    dht: bool = True
    lsd: bool = True
    upnp: bool = True
    natpmp: bool = True
    utp: bool = True
    # Appended to every magnet streme builds; clients can never add their own.
    trackers: list[str] = msgspec.field(default_factory=list)
    # host:port peers connected to every torrent (LAN seed boxes, tests).
    static_peers: list[str] = msgspec.field(default_factory=list)
    metadata_timeout: PositiveSeconds = 60 * SECONDS
    # No peer connected this long after adding a torrent: 504 no_peers.
    no_peers_timeout: PositiveSeconds = 30 * SECONDS
    # After a torrent failed (no metadata, no peers), requests for it get 503 for this long.
    failure_cooldown: Annotated[float, msgspec.Meta(ge=0)] = 300 * SECONDS
    # Per-torrent transfer limits in bytes/s (0: none), and peer connections per torrent.
    download_rate_limit: Annotated[int, msgspec.Meta(ge=0)] = 0
    upload_rate_limit: Annotated[int, msgspec.Meta(ge=0)] = 0
    max_connections_per_torrent: PositiveInt = 200
    # Torrents in the session at once; a new one past this gets 503 capacity.
    max_active_torrents: PositiveInt = 20
    # Bytes ahead of the reader asked for with deadlines (rqbit: 32 MiB, TorrServer: 16 MiB).
    readahead_bytes: Annotated[int, msgspec.Meta(ge=16 * KiB)] = 16 * MiB
    # Kept wanted at the end of the file when a stream starts at byte 0: players read the
    # container index there right away (TorrServer keeps 8 MiB, torrest 10 MiB).
    tail_pin_bytes: Annotated[int, msgspec.Meta(ge=0)] = 8 * MiB
    # Bound on bytes waiting between the piece reader and the socket, per stream.
    buffer_bytes: Annotated[int, msgspec.Meta(ge=16 * KiB)] = 4 * MiB
    # A piece a reader has waited this long for is asked for afresh (its blocks may be
    # stuck at a peer that never answered a cancel, e.g. transmission 3.00).
    piece_kick_after: PositiveSeconds = 3 * SECONDS
    # A piece that does not arrive for this long ends the response with a logged error.
    stall_timeout: PositiveSeconds = 60 * SECONDS


class LogConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    level: LogLevel = "info"


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    http: HTTPConfig = msgspec.field(default_factory=HTTPConfig)
    cache: CacheConfig = msgspec.field(default_factory=CacheConfig)
    p2p: P2PConfig = msgspec.field(default_factory=P2PConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)


class ConfigError(Exception):
    """A configuration value is invalid; the message names the field."""


# Original (seed) environment names and the fields they set.
LEGACY_ENV = {
    "TORRENT_DOWNLOAD_PATH": ("cache", "dir"),
    "CACHE_CLEANUP_INTERVAL": ("cache", "cleanup_interval"),
    "STREME_TRACKERS": ("p2p", "trackers"),
    "STREME_DHT": ("p2p", "dht"),
    "STREME_LSD": ("p2p", "lsd"),
    "STREME_UPNP": ("p2p", "upnp"),
}


# Booleans from the environment: also yes/no and on/off (msgspec knows true/false/1/0).
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


def _fields(struct_type: type[msgspec.Struct]) -> dict[str, Any]:
    return {f.name: f.type for f in msgspec.structs.fields(struct_type)}


def _sections() -> dict[str, type[msgspec.Struct]]:
    return {"http": HTTPConfig, "cache": CacheConfig, "p2p": P2PConfig, "log": LogConfig}


LIST_FIELDS = {("cache", "video_extensions"), ("p2p", "trackers"), ("p2p", "static_peers")}


def _is_list_field(section: str, field: str) -> bool:
    return (section, field) in LIST_FIELDS


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Overrides from the environment, as strings (msgspec converts them, lax mode)."""
    out: dict[str, dict[str, Any]] = {}
    for name, (section, field) in LEGACY_ENV.items():
        if name in environ:
            raw = environ[name]
            value: Any = raw
            if _is_list_field(section, field):
                value = [item.strip() for item in raw.split(",") if item.strip()]
            elif raw.strip().lower() in BOOL_WORDS:
                value = BOOL_WORDS[raw.strip().lower()]
            out.setdefault(section, {})[field] = value
    for section, struct_type in _sections().items():
        for field in _fields(struct_type):
            name = f"STREME_{section}_{field}".upper()
            if name not in environ:
                continue
            raw = environ[name]
            value = raw
            if _is_list_field(section, field):
                value = [item.strip() for item in raw.split(",") if item.strip()]
            elif raw.strip().lower() in BOOL_WORDS and _fields(struct_type)[field] is bool:
                value = BOOL_WORDS[raw.strip().lower()]
            out.setdefault(section, {})[field] = value
    return out


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
        config = msgspec.convert(merged, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    _check_consistency(config)
    return config


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Expected `int` <= 65535 - at `$.http.port`": lead with the field.
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if sep:
        field = where.rstrip("`").removeprefix("$.")
        return f"invalid config value for {field}: {message}"
    return f"invalid config: {text}"


def _check_consistency(config: Config) -> None:
    http = config.http
    if http.write_buffer_low > http.write_buffer_high:
        raise ConfigError(
            "invalid config value for http.write_buffer_low: must not exceed "
            f"http.write_buffer_high ({http.write_buffer_low} > {http.write_buffer_high})"
        )
    for ext in config.cache.video_extensions:
        if not ext.startswith(".") or len(ext) < 2 or "/" in ext:
            raise ConfigError(
                f"invalid config value for cache.video_extensions: {ext!r} is not an extension "
                "like '.mp4'"
            )
