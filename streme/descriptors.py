"""File descriptors: raise the process's limit, and size the connection cap from it.

How this works: every connection is a descriptor (two while a file body goes out with
`sendfile`: the socket and its dup), and so are cached files, libtorrent's files and
peer sockets, and the records database. The soft `RLIMIT_NOFILE` is often 1024 while
the hard one is far higher (systemd: 524288), so `raise_limit()` lifts the soft limit
to the hard one at startup, as nginx's `worker_rlimit_nofile` and uvicorn's users do.
`connection_cap()` then keeps a reserve for everything that is not a connection and
allows two descriptors per connection: past the cap a connection is answered 503 and
closed, rather than `accept` failing with EMFILE for every client (what happens to a
server with no cap). Pure but for `raise_limit`.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("streme")

# Descriptors kept for what is not a connection, at most (a quarter of a small limit).
RESERVE = 1024
# Descriptors one connection may hold.
PER_CONNECTION = 2
# The cap never goes below this, whatever the limit.
MIN_CONNECTIONS = 16


def raise_limit() -> int:
    """Lift the soft descriptor limit to the hard one; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.debug("could not raise the descriptor limit to %d: %s", target, exc)
    return soft


def connection_cap(configured: int, descriptor_limit: int) -> int:
    """`http.max_connections`, or with 0 (auto) what `descriptor_limit` allows."""
    if configured > 0:
        return configured
    reserve = min(RESERVE, descriptor_limit // 4)
    return max(MIN_CONNECTIONS, (descriptor_limit - reserve) // PER_CONNECTION)
