"""The web page's files: served from the package with a strong ETag (a reload is a 304), a
Content-Security-Policy that loads nothing from elsewhere, and nothing else under /ui/."""

from __future__ import annotations

from pathlib import Path

import streme
from tests.api.apiclient import call
from tests.conftest import RunningServer

WEB = Path(streme.__file__).parent / "web"


def test_page_and_assets(server: RunningServer) -> None:
    for path, name, kind in [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/ui/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "style.css", "text/css; charset=utf-8"),
    ]:
        status, headers, body = call(server.port, "GET", path)
        assert (status, headers["content-type"]) == (200, kind), path
        assert body == (WEB / name).read_bytes()
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        again = call(server.port, "GET", path, headers={"If-None-Match": headers["etag"]})
        assert again[0] == 304, path
    html = (WEB / "index.html").read_text()
    assert "/ui/app.js" in html
    assert "/ui/style.css" in html
    assert "http://" not in html
    assert "https://" not in html  # no CDN
    for path in ["/ui/index.html", "/ui/", "/ui/..%2Fapp.py", "/ui/missing.js"]:
        status, _, error = call(server.port, "GET", path)
        assert (status, error["error"]) == (404, "not_found"), path
    status, _, error = call(server.port, "POST", "/")
    assert status == 405
