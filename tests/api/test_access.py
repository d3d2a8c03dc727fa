"""Who may use the API, over real sockets: with `api.token` every API route and
`/metrics` answer 401 without it and 2xx with it; without a token, changes are refused
to a client that is not on this host (127.0.0.2 bound as the client's source address
stands in for a LAN client); CORS preflight; `http.stream_token` on the stream route."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streme.api.routes import ROUTES
from tests.api.apiclient import call
from tests.conftest import RunningServer, write_video

MiB = 1024 * 1024
H = "e" * 40
TOKEN = "correct horse battery staple"

# One request per route and method, in an order that leaves the title for the next.
REQUESTS: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/api/stats", None),
    ("GET", "/metrics", None),
    ("GET", "/api/cache", None),
    ("GET", f"/api/cache/{H}", None),
    ("PUT", f"/api/cache/{H}/pin", None),
    ("DELETE", f"/api/cache/{H}/pin", None),
    ("POST", "/api/cache/prune?dry_run=1", None),
    ("GET", "/api/torrents", None),
    ("GET", f"/api/torrents/{H}", None),
    ("GET", f"/api/files/{H}", None),
    ("POST", "/api/prefetch", {"infohash": H}),  # cached already: 200
    ("DELETE", f"/api/cache/{H}", None),
]


def test_every_route_is_listed_here() -> None:
    listed = {(m, p.partition("?")[0].replace(H, "{infohash}")) for m, p, _ in REQUESTS}
    assert listed == {(m, p) for p, methods in ROUTES.items() for m in methods}


def test_token_required_on_every_route(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    write_video(cache_dir, f"{H}.mp4", 2 * MiB)
    server = make_server(api={"token": TOKEN})
    for method, path, body in REQUESTS:
        status, headers, error = call(server.port, method, path, body)
        assert status == 401, (method, path)
        assert error["error"] == "unauthorized"
        assert headers["www-authenticate"] == 'Bearer realm="streme"'
        status, _, _ = call(server.port, method, path, body, token="wrong")
        assert status == 401, (method, path)
        status, _, answer = call(server.port, method, path, body, token=TOKEN, source="127.0.0.2")
        assert 200 <= status < 300, (method, path, answer)
    # The stream route stays open: a player cannot send the header.
    write_video(cache_dir, f"{H}.mp4", 2 * MiB)
    assert call(server.port, "GET", f"/stream/proxy/{H}")[0] == 200


def test_without_token_changes_only_from_this_host(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    write_video(cache_dir, f"{H}.mp4", 2 * MiB)
    server = make_server()
    for method, path, body in REQUESTS:
        status, _, answer = call(server.port, method, path, body, source="127.0.0.2")
        if method == "GET":
            assert status == 200, (method, path, answer)
        else:
            assert status == 403, (method, path)
            assert answer["error"] == "forbidden"
            assert "api.token" in answer["message"]
    assert (cache_dir / f"{H}.mp4").exists()
    status, _, answer = call(server.port, "DELETE", f"/api/cache/{H}")  # from 127.0.0.1
    assert status == 200
    assert not (cache_dir / f"{H}.mp4").exists()


def test_cors_and_stream_token(make_server: Callable[..., RunningServer], cache_dir: Path) -> None:
    write_video(cache_dir, f"{H}.mp4", 2 * MiB)
    server = make_server(api={"cors_origin": "http://tv.lan"}, stream_token="s3")
    status, headers, _ = call(
        server.port,
        "OPTIONS",
        "/api/cache",
        headers={"Origin": "http://tv.lan", "Access-Control-Request-Method": "GET"},
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == "http://tv.lan"
    assert headers["access-control-allow-methods"] == "GET, OPTIONS"
    assert "Authorization" in headers["access-control-allow-headers"]
    status, headers, _ = call(server.port, "GET", "/api/stats")
    assert headers["access-control-allow-origin"] == "http://tv.lan"
    status, headers, error = call(server.port, "GET", f"/stream/proxy/{H}")
    assert (status, error["error"]) == (401, "stream_token")
    status, headers, _ = call(server.port, "GET", f"/stream/proxy/{H}?token=s3")
    assert status == 200
    assert headers["access-control-allow-origin"] == "http://tv.lan"
