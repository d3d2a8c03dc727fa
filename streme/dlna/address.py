"""The address the media server announces and puts in its URLs (`dlna.address`), and the
device's UDN. Pure, but for `default_route_address`, which asks the kernel's routing
table (no packet is sent)."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Callable

from streme.dlna.errors import DlnaError

# http.host values that mean "every address": the LAN address has to be found.
WILDCARDS = ("", "0.0.0.0", "::")
# Where the routing table is asked to route to: TEST-NET-1 (RFC 5737), never a local
# network, so it takes the default route. Connecting a UDP socket sends nothing.
ROUTE_PROBE = ("192.0.2.1", 9)
# Namespace of the device's UDN (uuid5 of it and the cache directory's path).
UDN_NAMESPACE = uuid.UUID("8f0c8a52-3a64-5c55-9a4c-5d7b1f3e2a10")


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def choose_address(configured: str, http_host: str, default_route: Callable[[], str]) -> str:
    """`dlna.address` if set (loopback included: the operator said so); else `http.host`
    when it is one IPv4 address; else, when the server listens on every address, the
    address of the default route's interface (`default_route()`). A guessed loopback
    address is refused: a TV could not reach it. Raises DlnaError."""
    if configured:
        return configured
    if http_host in WILDCARDS:
        guessed = default_route()
        why = "the default route's interface"
    else:
        if _ipv4(http_host) is None:
            raise DlnaError(
                f"dlna.address is not set and http.host {http_host!r} is not an IPv4 "
                "address: set dlna.address to the LAN address TVs reach this server on"
            )
        guessed = http_host
        why = "http.host"
    address = _ipv4(guessed)
    if address is None or address.is_loopback:
        raise DlnaError(
            f"dlna.address is not set and {why} is {guessed}, which TVs on the LAN cannot "
            "reach: listen on the LAN (--host 0.0.0.0 or the machine's address) or set "
            "dlna.address"
        )
    return guessed


def default_route_address() -> str:
    """This machine's address on the interface of its default route. Raises DlnaError."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(ROUTE_PROBE)  # a route lookup: UDP sends nothing on connect
        except OSError as exc:
            raise DlnaError(
                f"cannot find this machine's LAN address (no IPv4 default route: "
                f"{exc.strerror}); set dlna.address"
            ) from None
        return str(sock.getsockname()[0])


def device_udn(cache_root: str) -> str:
    """The device's UDN: the same for the same cache directory across restarts, so a TV
    keeps it as one server."""
    return f"uuid:{uuid.uuid5(UDN_NAMESPACE, cache_root)}"
