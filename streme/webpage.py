"""The web page for people on the LAN: `GET /` and its two assets under `/ui/`.

How this works: the page is plain HTML, one script and one stylesheet in `streme/web/`
(no build step, nothing from a CDN), read once when the server starts and answered from
memory with a strong ETag (a reload costs a 304). The page reads the operator's API
(`/api/...`, with the API token the person enters, kept in the browser's localStorage)
and plays streams in a `<video>`; it is open like the stream route, the data behind it
is not. Its Content-Security-Policy lets it load nothing from anywhere else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from streme.http.fileresponse import bytes_response
from streme.http.messages import Handler, Request, Response, error_response
from streme.http.routing import Router

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
HEADERS = [
    (b"Cache-Control", b"no-cache"),  # revalidated each load: a new version shows at once
    (
        b"Content-Security-Policy",
        b"default-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Referrer-Policy", b"no-referrer"),
]


@dataclass(frozen=True, slots=True)
class Asset:
    data: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """The page's files, from the installed package."""
    folder = resources.files("streme").joinpath("web")
    assets = {}
    for name, content_type in ASSETS.items():
        data = folder.joinpath(name).read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        assets[name] = Asset(data, content_type, etag)
    return assets


class WebPage:
    def __init__(self, assets: dict[str, Asset] | None = None) -> None:
        self.assets = assets if assets is not None else load_assets()

    def _answer(self, request: Request, name: str) -> Response:
        asset = self.assets[name]
        return bytes_response(request, asset.data, asset.content_type, asset.etag, HEADERS)

    def page(self, request: Request, params: dict[str, str]) -> Response:
        return self._answer(request, "index.html")

    def asset(self, request: Request, params: dict[str, str]) -> Response:
        name = params["name"]
        if name == "index.html" or name not in self.assets:
            return error_response(404, "not_found", f"no route for {request.path}")
        return self._answer(request, name)


def add_page_routes(router: Router[Handler], page: WebPage) -> None:
    router.add("/", page.page)
    router.add("/ui/{name}", page.asset)
