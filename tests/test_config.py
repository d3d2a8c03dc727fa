from pathlib import Path

import pytest

from streme.config import ConfigError, build_config


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
