"""A client of a running server's JSON API (stdlib `http.client`), for the command line.

How this works: one request per connection, `Authorization: Bearer <api.token>` when a
token is set (STREME_API_TOKEN), the answer decoded from JSON. What can go wrong becomes
one of two exceptions whose message is the whole story for the user: `Unreachable` (no
server at that address: refused, unknown host, no answer in time) and `APIError` (the
server answered 4xx/5xx, carrying the API's own `{"error", "message"}`, or answered
something that is not the API at all).
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlencode, urlsplit

from streme.config import HTTPConfig

DEFAULT_TIMEOUT = 30.0  # seconds for a whole answer (a prune sweeps the cache first)


class Unreachable(Exception):
    """No streme server answered at the URL; the message says so and what to do."""


class APIError(Exception):
    """The server answered with an error (or with something that is not the API)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def default_url(http_config: HTTPConfig) -> str:
    """The server `streme serve` would start with this config: its host and port, with a
    wildcard address (0.0.0.0, ::) replaced by this host's loopback."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(
        http_config.host, http_config.host
    )
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{http_config.port}"


def check_url(url: str) -> str:
    """`url` without a trailing slash (`host:port` gets http://); raises ValueError."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--url must be http://host:port, got {url!r}")
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError:
        raise ValueError(f"--url has a bad port: {url!r}") from None
    return url.rstrip("/")


class APIClient:
    def __init__(self, url: str, token: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = check_url(url)
        self.token = token
        self.timeout = timeout

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, **query)

    def request(self, method: str, path: str, **query: str) -> Any:
        """The decoded JSON answer of `method path?query`; raises Unreachable, APIError."""
        parts = urlsplit(self.url)
        target = parts.path + path + (f"?{urlencode(query)}" if query else "")
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = kind(parts.hostname or "", parts.port, timeout=self.timeout)
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, target, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError:
            raise Unreachable(
                f"the server at {self.url} did not answer within {self.timeout:g} s (--timeout)"
            ) from None
        except OSError as exc:
            raise Unreachable(
                f"no streme server answers at {self.url}: {why_unreachable(exc, parts.hostname)}; "
                "start one with `streme serve` or pass --url"
            ) from None
        finally:
            conn.close()
        return decode(self.url, response.status, response.getheader("Content-Type", ""), body)


def why_unreachable(exc: OSError, host: str | None) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host {host}"
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError):
        return "the connection was closed without an answer"
    return exc.strerror or str(exc) or type(exc).__name__


def decode(url: str, status: int, content_type: str, body: bytes) -> Any:
    """The JSON body of a 2xx answer; raises APIError with the API's message otherwise."""
    data: Any = None
    if content_type.partition(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    if data is None:
        raise APIError(
            status,
            "not_the_api",
            f"{url} answered HTTP {status} ({content_type or 'no Content-Type'}), not the "
            "streme API's JSON: is --url a streme server?",
        )
    if status >= 400:
        code = data.get("error", "error") if isinstance(data, dict) else "error"
        message = data.get("message", "") if isinstance(data, dict) else ""
        hint = ""
        if status == 401:
            hint = " (set STREME_API_TOKEN, or api.token in --config)"
        raise APIError(status, code, f"{message or code} (HTTP {status} {code}){hint}")
    return data
