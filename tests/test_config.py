from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streme.config import (
    CacheConfig,
    ConfigError,
    P2PConfig,
    build_config,
    field_types,
    min_free_bytes,
    parse_peer,
)
from streme.units import parse_duration, parse_percent, parse_size, parse_size_or_percent


def test_defaults() -> None:
    config = build_config(environ={})
    assert config.http.host == "127.0.0.1"
    assert config.http.port == 7000
    assert config.cache.dir == "./temp"
    assert config.cache.min_size == 1024 * 1024
    assert ".mkv" in config.cache.video_extensions
    assert config.log.level == "info"


def test_precedence_toml_env_cli(tmp_path: Path) -> None:
    toml = tmp_path / "streme.toml"
    toml.write_text(
        '[http]\nport = 8001\nhost = "0.0.0.0"\n[cache]\ndir = "/from/toml"\nmin_size = 5\n'
    )
    env = {"STREME_HTTP_PORT": "8002", "TORRENT_DOWNLOAD_PATH": "/from/env"}
    config = build_config(toml_path=str(toml), environ=env, cli={"http": {"port": 8003}})
    assert config.http.port == 8003  # CLI beats env beats TOML
    assert config.http.host == "0.0.0.0"  # TOML beats default
    assert config.cache.dir == "/from/env"  # legacy env name
    assert config.cache.min_size == 5


def test_streme_env_beats_legacy_name() -> None:
    env = {"TORRENT_DOWNLOAD_PATH": "/legacy", "STREME_CACHE_DIR": "/new"}
    assert build_config(environ=env).cache.dir == "/new"


def test_env_conversions() -> None:
    env = {
        "CACHE_CLEANUP_INTERVAL": "60",
        "STREME_HTTP_ZERO_COPY": "false",
        "STREME_CACHE_VIDEO_EXTENSIONS": ".mp4, .mkv",
        "STREME_HTTP_KEEP_ALIVE_TIMEOUT": "2.5",
    }
    config = build_config(environ=env)
    assert config.cache.cleanup_interval == 60
    assert config.http.zero_copy is False
    assert config.cache.video_extensions == [".mp4", ".mkv"]
    assert config.http.keep_alive_timeout == 2.5


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"STREME_HTTP_PORT": "70000"}, "http.port"),
        ({"STREME_HTTP_PORT": "seven"}, "http.port"),
        ({"CACHE_CLEANUP_INTERVAL": "-1"}, "cache.cleanup_interval"),
        ({"STREME_LOG_LEVEL": "loud"}, "log.level"),
        ({"STREME_CACHE_VIDEO_EXTENSIONS": "mp4"}, "cache.video_extensions"),
        ({"STREME_HTTP_WRITE_BUFFER_LOW": "999999999"}, "http.write_buffer_low"),
    ],
)
def test_bad_values_name_the_field(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_config(environ=env)


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[http]\nprot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        build_config(toml_path=str(toml), environ={})


def test_missing_and_broken_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        build_config(toml_path=str(tmp_path / "nope.toml"), environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[http\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_config(toml_path=str(broken), environ={})


def test_p2p_settings_from_environment() -> None:
    env = {
        "STREME_DHT": "0",
        "STREME_LSD": "off",
        "STREME_UPNP": "no",
        "STREME_TRACKERS": "udp://127.0.0.1:6969/announce, http://127.0.0.1:8000/announce",
        "STREME_P2P_STATIC_PEERS": "127.0.0.1:6881",
        "STREME_P2P_ENABLED": "yes",
    }
    p2p = build_config(environ=env).p2p
    assert p2p.enabled is True
    assert (p2p.dht, p2p.lsd, p2p.upnp) == (False, False, False)
    assert p2p.trackers == ["udp://127.0.0.1:6969/announce", "http://127.0.0.1:8000/announce"]
    assert p2p.static_peers == ["127.0.0.1:6881"]
    assert build_config(environ={}).p2p.enabled is True
    assert build_config(environ={"STREME_P2P_ENABLED": "0"}).p2p.enabled is False


def test_p2p_tests_run_the_server_on_its_defaults_but_for_loopback() -> None:
    """The P2P tests' `p2p_settings`: uTP and everything else as a user's server has it,
    but what keeps it on loopback, the tracker it finds seeders through, and the bounds
    on its waits. A test that changes more names it where it does."""
    from tests.torrent.swarm import p2p_settings

    tested = build_config(environ={}, cli={"p2p": p2p_settings(None)}).p2p
    defaults = P2PConfig()
    assert (tested.utp, tested.outgoing_utp) == (defaults.utp, defaults.outgoing_utp)
    changed = {f for f in P2PConfig.__struct_fields__ if getattr(tested, f) != getattr(defaults, f)}
    loopback = {"listen_interfaces", "dht", "lsd", "upnp", "natpmp"}
    assert changed == loopback | {"metadata_timeout", "stall_timeout"}


# One typed conversion for every environment name, by the target field's declared type.


def test_env_bool_words() -> None:
    for word, expected in [("on", True), ("OFF", False), ("Yes", True), ("0", False)]:
        assert build_config(environ={"STREME_HTTP_ACCESS_LOG": word}).http.access_log is expected
    with pytest.raises(ConfigError, match=r"http\.access_log: 'maybe' is not a boolean"):
        build_config(environ={"STREME_HTTP_ACCESS_LOG": "maybe"})


def test_env_int() -> None:
    assert build_config(environ={"STREME_HTTP_BACKLOG": " 77 "}).http.backlog == 77
    with pytest.raises(ConfigError, match=r"http\.backlog: '1\.5' is not an integer"):
        build_config(environ={"STREME_HTTP_BACKLOG": "1.5"})


def test_env_float_seconds() -> None:
    assert build_config(environ={"STREME_HTTP_WRITE_TIMEOUT": "2.5"}).http.write_timeout == 2.5
    with pytest.raises(ConfigError, match=r"http\.write_timeout"):
        build_config(environ={"STREME_HTTP_WRITE_TIMEOUT": "inf"})


def test_env_str_stays_str() -> None:
    config = build_config(environ={"STREME_HTTP_HOST": "1", "STREME_CACHE_DIR": "off"})
    assert config.http.host == "1"
    assert config.cache.dir == "off"


def test_env_list() -> None:
    env = {"STREME_CACHE_VIDEO_EXTENSIONS": " .mp4,, .mkv ,"}
    assert build_config(environ=env).cache.video_extensions == [".mp4", ".mkv"]
    assert build_config(environ={"STREME_TRACKERS": ""}).p2p.trackers == []


def test_env_size() -> None:
    env = {"STREME_CACHE_MAX_SIZE": "50GiB", "STREME_P2P_READAHEAD_BYTES": "32M"}
    config = build_config(environ=env)
    assert config.cache.max_size == 50 * 1024**3
    assert config.p2p.readahead_bytes == 32 * 1024**2
    assert build_config(environ={"STREME_CACHE_MAX_SIZE": "123"}).cache.max_size == 123


def test_env_percent_or_size() -> None:
    assert build_config(environ={"STREME_CACHE_MIN_FREE": "10 %"}).cache.min_free == "10%"
    assert build_config(environ={"STREME_CACHE_MIN_FREE": "1.5GB"}).cache.min_free == 1_500_000_000
    assert build_config(environ={"STREME_CACHE_MIN_FREE": "0"}).cache.min_free == 0


def test_env_duration() -> None:
    env = {
        "STREME_CACHE_INCOMPLETE_MAX_AGE": "12h",
        "STREME_CACHE_CLEANUP_INTERVAL": "30m",
        "STREME_P2P_IDLE_TIMEOUT": "90s",
    }
    config = build_config(environ=env)
    assert config.cache.incomplete_max_age == 12 * 3600
    assert config.cache.cleanup_interval == 1800
    assert config.p2p.idle_timeout == 90


def test_legacy_names_convert_by_field_type() -> None:
    assert build_config(environ={"CACHE_CLEANUP_INTERVAL": "1"}).cache.cleanup_interval == 1.0
    assert build_config(environ={"CACHE_CLEANUP_INTERVAL": "3d"}).cache.cleanup_interval == 259200
    assert build_config(environ={"TORRENT_DOWNLOAD_PATH": "on"}).cache.dir == "on"
    assert build_config(environ={"TORRENT_DOWNLOAD_PATH": "/some/dir"}).cache.dir == "/some/dir"
    assert build_config(environ={"STREME_DHT": "off"}).p2p.dht is False
    assert build_config(environ={"STREME_DHT": "off", "STREME_P2P_DHT": "on"}).p2p.dht is True
    with pytest.raises(ConfigError, match=r"p2p\.lsd"):
        build_config(environ={"STREME_LSD": "sometimes"})


def _as_env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def test_every_field_reads_its_default_back_from_the_environment() -> None:
    defaults = build_config(environ={})
    for section, field in field_types():
        default = getattr(getattr(defaults, section), field)
        env = {f"STREME_{section}_{field}".upper(): _as_env_text(default)}
        assert getattr(getattr(build_config(environ=env), section), field) == default, env


# New cache and P2P settings.


def test_new_setting_defaults() -> None:
    config = build_config(environ={})
    assert config.cache.max_size == 0
    assert config.cache.min_free == "5%"
    assert config.cache.cleanup_interval == 1800
    assert config.cache.incomplete_max_age == 3 * 24 * 3600
    assert config.cache.evict_hand_placed is False
    assert config.p2p.idle_timeout == 300


def test_sizes_and_durations_in_toml_and_cli(tmp_path: Path) -> None:
    toml = tmp_path / "streme.toml"
    toml.write_text(
        '[cache]\nmax_size = "1.5GB"\nmin_free = 1024\nincomplete_max_age = "3d"\n'
        'evict_hand_placed = true\n[p2p]\nidle_timeout = "2m"\n'
    )
    config = build_config(toml_path=str(toml), environ={})
    assert config.cache.max_size == 1_500_000_000
    assert config.cache.min_free == 1024
    assert config.cache.incomplete_max_age == 259200
    assert config.cache.evict_hand_placed is True
    assert config.p2p.idle_timeout == 120
    cli = {"cache": {"max_size": "10g", "min_free": "2.5%"}}
    config = build_config(toml_path=str(toml), environ={}, cli=cli)
    assert config.cache.max_size == 10 * 1024**3
    assert config.cache.min_free == "2.5%"


@pytest.mark.parametrize(
    ("source", "value", "field"),
    [
        ("env", "50 gigs", "cache.max_size"),
        ("env", "-1", "cache.max_size"),
        ("toml", '"lots"', "cache.max_size"),
        ("toml", "-5", "cache.max_size"),
        ("cli", "1.5XB", "cache.max_size"),
        ("env", "101%", "cache.min_free"),
        ("env", "-5%", "cache.min_free"),
        ("toml", '"plenty"', "cache.min_free"),
        ("toml", "-1", "cache.min_free"),
        ("cli", "5%%", "cache.min_free"),
    ],
)
def test_bad_size_values_name_the_field(
    tmp_path: Path, source: str, value: str, field: str
) -> None:
    section, name = field.split(".")
    toml = tmp_path / "streme.toml"
    toml.write_text(f"[{section}]\n{name} = {value}\n")
    kwargs: dict[str, Any] = {
        "env": {"environ": {f"STREME_{section}_{name}".upper(): value}},
        "toml": {"environ": {}, "toml_path": str(toml)},
        "cli": {"environ": {}, "cli": {section: {name: value}}},
    }[source]
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_config(**kwargs)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"STREME_P2P_IDLE_TIMEOUT": "-1"}, "p2p.idle_timeout"),
        ({"STREME_P2P_IDLE_TIMEOUT": "5 minutes"}, "p2p.idle_timeout"),
        ({"STREME_CACHE_INCOMPLETE_MAX_AGE": "0"}, "cache.incomplete_max_age"),
        ({"STREME_CACHE_CLEANUP_INTERVAL": "1w"}, "cache.cleanup_interval"),
        ({"STREME_CACHE_EVICT_HAND_PLACED": "2"}, "cache.evict_hand_placed"),
    ],
)
def test_bad_new_values_name_the_field(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_config(environ=env)


def test_min_free_bytes() -> None:
    assert min_free_bytes(CacheConfig(), 1000) == 50  # the default 5%
    assert min_free_bytes(CacheConfig(min_free="0.1%"), 1001) == 2  # rounded up
    assert min_free_bytes(CacheConfig(min_free="0%"), 10**12) == 0
    assert min_free_bytes(CacheConfig(min_free="100%"), 4096) == 4096
    assert min_free_bytes(CacheConfig(min_free=123), 10) == 123
    assert min_free_bytes(CacheConfig(min_free="1KiB"), 10) == 1024  # not normalized yet
    config = build_config(environ={"STREME_CACHE_MIN_FREE": "2.5%"})
    assert min_free_bytes(config.cache, 4 * 10**12) == 10**11
    assert min_free_bytes(config.cache, 2 * 1024**4) == 2 * 1024**4 // 40 + 1  # ceil


# Static peers are checked at load.


def test_bad_static_peer_names_the_entry() -> None:
    env = {"STREME_P2P_STATIC_PEERS": "127.0.0.1:6881,localhost"}
    with pytest.raises(ConfigError) as info:
        build_config(environ=env)
    assert str(info.value) == (
        "invalid config value for p2p.static_peers[1]: 'localhost' is not host:port"
    )


def test_bad_static_peer_in_toml(tmp_path: Path) -> None:
    toml = tmp_path / "streme.toml"
    toml.write_text('[p2p]\nstatic_peers = ["[::1]:6881", "seedbox:0"]\n')
    with pytest.raises(ConfigError, match=r"p2p\.static_peers\[1\]: 'seedbox:0'.*1\.\.65535"):
        build_config(toml_path=str(toml), environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:6881", ("127.0.0.1", 6881)),
        ("seedbox.lan:1", ("seedbox.lan", 1)),
        ("[::1]:6881", ("::1", 6881)),
        ("[fe80::1%eth0]:65535", ("fe80::1%eth0", 65535)),
        (" host:80 ", ("host", 80)),
    ],
)
def test_parse_peer(text: str, expected: tuple[str, int]) -> None:
    assert parse_peer(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("localhost", "is not host:port"),
        ("host:", "is not host:port"),
        ("host:http", "is not host:port"),
        ("host:-1", "is not host:port"),
        (":6881", "empty host"),
        ("host:0", "port must be 1..65535"),
        ("host:65536", "port must be 1..65535"),
        ("::1:6881", r"\[::1\]:6881"),
        ("[nonsense]:6881", "not an IPv6 address"),
        ("[::1:6881", "is not host:port"),
        ("a b:1", "bad host"),
    ],
)
def test_parse_peer_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_peer(text)


# The pure unit parsers.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123", 123),
        ("0", 0),
        ("123B", 123),
        ("50GiB", 50 * 1024**3),
        ("500MiB", 500 * 1024**2),
        ("500mib", 500 * 1024**2),
        ("1.5GB", 1_500_000_000),
        ("10G", 10 * 1024**3),
        ("10g", 10 * 1024**3),
        ("2 KiB", 2048),
        ("1k", 1024),
        ("1KB", 1000),
        ("1MB", 1000**2),
        ("2TB", 2 * 1000**4),
        ("2TiB", 2 * 1024**4),
        ("2T", 2 * 1024**4),
        (".5K", 512),
        ("1.1KiB", 1126),  # rounded down to whole bytes
        (" 7 ", 7),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1", "1e3", "1.5XB", "5%", "1/2G", "1 2", "nan"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", 90.0),
        ("1.5", 1.5),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("12h", 43200.0),
        ("3d", 259200.0),
        ("1.5H", 5400.0),
        ("0", 0.0),
    ],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "s", "-5", "1w", "5 minutes", "1h30m", "inf"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_parse_percent() -> None:
    assert parse_percent("5%") == 5
    assert parse_percent(" 2.5 % ") == Fraction(5, 2)
    assert parse_percent("100%") == 100
    assert parse_percent("0%") == 0
    with pytest.raises(ValueError, match="more than 100%"):
        parse_percent("100.5%")
    for bad in ["5", "%", "-1%", "five%"]:
        with pytest.raises(ValueError, match="not a percentage"):
            parse_percent(bad)


SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1024, "KiB": 1024, "KB": 1000, "MiB": 1024**2}
SIZE_SUFFIXES |= {"MB": 1000**2, "G": 1024**3, "GiB": 1024**3, "GB": 1000**3, "TiB": 1024**4}


@given(st.integers(min_value=0, max_value=10**30))
def test_plain_size_round_trips(n: int) -> None:
    assert parse_size(f"{n}") == n


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(SIZE_SUFFIXES)))
def test_size_with_unit_round_trips(n: int, unit: str) -> None:
    assert parse_size(f"{n}{unit}") == n * SIZE_SUFFIXES[unit]
    assert parse_size(f"{n} {unit.lower()}") == n * SIZE_SUFFIXES[unit]


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["", "s", "m", "h", "d"]))
def test_duration_round_trips(n: int, unit: str) -> None:
    seconds = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{n}{unit}") == n * seconds


@given(st.decimals(min_value=0, max_value=100, places=4))
def test_percent_round_trips(p: Decimal) -> None:
    assert parse_percent(f"{p:f}%") == Fraction(p)


def test_parse_size_or_percent() -> None:
    assert parse_size_or_percent("10GiB") == 10 * 1024**3
    assert parse_size_or_percent("123") == 123
    assert parse_size_or_percent(" 5 % ") == "5%"
    assert parse_size_or_percent("0.5%") == "0.5%"
    with pytest.raises(ValueError, match="more than 100%"):
        parse_size_or_percent("200%")
    with pytest.raises(ValueError, match="not a size or a percentage"):
        parse_size_or_percent("half")
