"""The HTTP answer to each P2P failure (`streme.torrent.errors`): shared by the stream
route and the API. Other codes are 502."""

from __future__ import annotations

from streme.http.messages import Response, error_response
from streme.torrent.errors import CoolingDown, P2PError

STATUS_FOR_CODE = {
    "metadata_timeout": 504,
    "no_peers": 504,
    "stalled": 504,
    "cooldown": 503,
    "capacity": 503,
    "shutting_down": 503,
    "disk_full": 507,
}


def p2p_error_response(exc: P2PError) -> Response:
    status = STATUS_FOR_CODE.get(exc.code, 502)
    if isinstance(exc, CoolingDown):
        retry = [(b"Retry-After", str(exc.retry_after).encode())]
        return error_response(status, exc.code, str(exc), retry)
    return error_response(status, exc.code, str(exc))
