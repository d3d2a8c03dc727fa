"""Who may use the API, and the CORS headers. Pure: a request in, a refusal or None out.

- `api.token` set: every `/api/` route and `/metrics` need `Authorization: Bearer
  <token>` (compared in constant time); otherwise 401 with `WWW-Authenticate: Bearer`.
- `api.token` unset: reads are open; a method that changes something (POST, PUT,
  DELETE) answers only clients at 127.0.0.1 or ::1 (where a command line on this host
  connects from), anyone else gets 403 naming the setting. Other 127.x addresses are
  refused too: the tests use 127.0.0.2 as a stand-in for a LAN client. A reverse proxy on
  this host connects from 127.0.0.1 for every client: set a token behind one.
- `api.cors_origin` set: its `Access-Control-Allow-Origin` goes on every answer, and a
  preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered 204.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Final

from streme.http.messages import Request, Response, error_response

MUTATING: Final = frozenset({"POST", "PUT", "DELETE"})
ALLOWED_HEADERS: Final = b"Authorization, Content-Type"
MAX_AGE: Final = b"600"


LOCAL: Final = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))


def is_local(address: str) -> bool:
    """127.0.0.1, ::1, or ::ffff:127.0.0.1 (an IPv4 client of a dual-stack socket)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in LOCAL


def bearer_token(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class Access:
    def __init__(self, token: str, cors_origin: str) -> None:
        self.token = token
        self.cors_origin = cors_origin

    def refusal(self, request: Request) -> Response | None:
        """The answer refusing `request`, or None when it may go on."""
        if self.token:
            given = bearer_token(request)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                why = "missing" if given is None else "wrong"
                return error_response(
                    401,
                    "unauthorized",
                    f"the API token is {why}: send Authorization: Bearer <api.token>",
                    [(b"WWW-Authenticate", b'Bearer realm="streme"')],
                )
            return None
        if request.method in MUTATING and not is_local(request.client):
            return error_response(
                403,
                "forbidden",
                f"{request.method} is only answered to clients on this host (127.0.0.1, ::1) "
                "while api.token "
                "(STREME_API_TOKEN) is unset; set a token to manage the server remotely",
            )
        return None

    def cors_headers(self) -> list[tuple[bytes, bytes]]:
        if not self.cors_origin:
            return []
        headers = [(b"Access-Control-Allow-Origin", self.cors_origin.encode())]
        if self.cors_origin != "*":
            headers.append((b"Vary", b"Origin"))
        return headers

    def preflight(self, allow: str) -> Response:
        """204 to a CORS preflight, allowing `allow` (the route's methods)."""
        headers = [
            *self.cors_headers(),
            (b"Access-Control-Allow-Methods", allow.encode()),
            (b"Access-Control-Allow-Headers", ALLOWED_HEADERS),
            (b"Access-Control-Max-Age", MAX_AGE),
        ]
        return Response(204, headers)
