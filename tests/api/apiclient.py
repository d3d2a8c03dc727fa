"""A small JSON client for the API tests: one request per connection, from any source
address (127.0.0.2 stands in for a client on the LAN)."""

from __future__ import annotations

import http.client
import json
from typing import Any


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    *,
    token: str | None = None,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """(status, lower-case headers, the decoded JSON body or the raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = None
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = body
    try:
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        raw = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    if got.get("content-type", "").startswith("application/json"):
        return resp.status, got, json.loads(raw)
    return resp.status, got, raw
