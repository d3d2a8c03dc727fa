"""An optional DLNA/UPnP media server (`dlna.enabled`): smart TVs and DLNA players on the
LAN find streme and browse and play the cache's complete titles.

How this works: the first process (the one with the operator API) starts it at the end of
its start, with async-upnp-client (`pip install 'streme[dlna]'`), imported only then. It
announces a MediaServer:1 root device over SSDP (NOTIFY alive, answers to M-SEARCH, byebye
at the stop) and serves its description, ContentDirectory:1 and ConnectionManager:1 on its
own small HTTP server (`dlna.port`). Browsing lists the titles `/api/cache` knows, complete
ones only (catalog.py, read through the API's cache object); each item's resource is the
ordinary stream URL on the main port, so a TV plays from the cache like any other player.
`content.py` turns those titles into DIDL-Lite objects and pages (pure), `address.py`
chooses the announced address, `server.py` holds everything that touches the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streme.dlna.errors import DlnaError

if TYPE_CHECKING:
    from streme.api.cache_api import CacheAPI
    from streme.config import Config
    from streme.dlna.server import MediaServer

# The distributions the `dlna` extra brings; an ImportError naming one of them means the
# extra is missing (any other ImportError is a bug and is raised as it is).
EXTRA_MODULES = ("async_upnp_client", "didl_lite", "aiohttp", "defusedxml", "voluptuous")
__all__ = ["DlnaError", "start_media_server"]

MISSING_EXTRA = (
    "dlna.enabled is set but the DLNA library is not installed "
    "({module} is missing): pip install 'streme[dlna]'"
)


async def start_media_server(config: Config, cache: CacheAPI, http_port: int) -> MediaServer:
    """Start announcing; `http_port` is the port the stream URLs point at."""
    try:
        from streme.dlna.server import MediaServer
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        if module not in EXTRA_MODULES:
            raise
        raise DlnaError(MISSING_EXTRA.format(module=module)) from exc
    server = MediaServer(config, cache, http_port)
    await server.start()
    return server
