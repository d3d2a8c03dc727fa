"""A complete request -> its handler's answer (a response, or an awaitable of one). No I/O.

The errors every route shares are decided here: a bad request target (400), a method
RFC 9110 does not define (501), no route (404), a route without that method (405, with
`Allow`), and a handler that raises (500, logged).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Final

from streme.http import routing
from streme.http.messages import Answer, Handler, Request, Response, error_response
from streme.http.urls import BadTarget, split_target

log = logging.getLogger("streme.http")

# Methods RFC 9110 defines (plus PATCH): unknown ones get 501, known ones 404/405 by route.
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def dispatch(router: routing.Router[Handler], request: Request) -> Answer | Awaitable[Answer]:
    try:
        request.path, request.query_string = split_target(request.target)
    except BadTarget as exc:
        return error_response(400, "bad_request", str(exc))
    if request.method not in KNOWN_METHODS:
        return error_response(501, "not_implemented", f"method {request.method} is not supported")
    found = router.resolve(request.method, request.path)
    if isinstance(found, routing.NotFound):
        return error_response(404, "not_found", f"no route for {request.path}")
    if isinstance(found, routing.MethodNotAllowed):
        allow = ", ".join(found.allow).encode()
        message = f"{request.method} is not allowed on {request.path}"
        return error_response(405, "method_not_allowed", message, [(b"Allow", allow)])
    try:
        return found.handler(request, found.params)
    except Exception:
        log.exception("handler failed for %s %s", request.method, request.target)
        return handler_failed()


def handler_failed() -> Response:
    return error_response(500, "internal_error", "the server failed to answer")
