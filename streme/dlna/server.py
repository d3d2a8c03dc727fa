"""The UPnP side of the media server, on async-upnp-client's server: the MediaServer:1
device with ContentDirectory:1 and ConnectionManager:1, its SSDP announcements and answers
(the library's), and its start and stop. The only module that imports the library.

No `from __future__ import annotations` here: the library checks each action's argument
annotations against its state variables' Python types (`str`, `int`) at run time.
"""

import contextlib
import logging
import socket
import xml.etree.ElementTree as ET
from types import MappingProxyType
from typing import Any, ClassVar

from async_upnp_client.client import UpnpStateVariable
from async_upnp_client.const import DeviceInfo, ServiceInfo
from async_upnp_client.exceptions import UpnpActionError, UpnpError
from async_upnp_client.server import (
    UpnpServer,
    UpnpServerDevice,
    UpnpServerService,
    callable_action,
    create_event_var,
    create_state_var,
)

from streme import __version__
from streme.api.cache_api import CacheAPI
from streme.cache.mediatypes import CONTENT_TYPES
from streme.config import Config
from streme.dlna.address import choose_address, default_route_address, device_udn
from streme.dlna.catalog import Catalog
from streme.dlna.content import Library, NoSuchContainer, NoSuchObject, browse
from streme.dlna.errors import DlnaError

log = logging.getLogger("streme.dlna")

DEVICE_TYPE = "urn:schemas-upnp-org:device:MediaServer:1"
CONTENT_DIRECTORY = "urn:schemas-upnp-org:service:ContentDirectory:1"
CONNECTION_MANAGER = "urn:schemas-upnp-org:service:ConnectionManager:1"
DESCRIPTION_PATH = "/description.xml"
# ContentDirectory errors (UPnP ContentDirectory:1, 2.7.4).
NO_SUCH_OBJECT = 701
NO_SUCH_CONTAINER = 710
# ConnectionManager error: a connection id other than 0 (we keep no connections).
INVALID_CONNECTION_REFERENCE = 706
# What the server sends: every video type the stream routes name.
SOURCE_PROTOCOLS = ",".join(
    f"http-get:*:{kind}:*"
    for kind in sorted(set(CONTENT_TYPES.values()))
    if kind.startswith("video/")
)


def _service_info(name: str, service_type: str) -> ServiceInfo:
    return ServiceInfo(
        service_id=f"urn:upnp-org:serviceId:{name}",
        service_type=service_type,
        control_url=f"/upnp/control/{name}",
        event_sub_url=f"/upnp/event/{name}",
        scpd_url=f"/{name}.xml",
        xml=ET.Element("server_service"),
    )


class ContentDirectory(UpnpServerService):
    """ContentDirectory:1: Browse (no search, no sort), over `CATALOG`, which the device
    class made for one server sets (`media_server_device`)."""

    CATALOG: ClassVar[Catalog]
    SERVICE_DEFINITION = _service_info("ContentDirectory", CONTENT_DIRECTORY)
    STATE_VARIABLE_DEFINITIONS = MappingProxyType(
        {
            "SearchCapabilities": create_state_var("string", default=""),
            "SortCapabilities": create_state_var("string", default=""),
            "SystemUpdateID": create_event_var("ui4", default="1"),
            "A_ARG_TYPE_ObjectID": create_state_var("string"),
            "A_ARG_TYPE_Result": create_state_var("string"),
            "A_ARG_TYPE_BrowseFlag": create_state_var(
                "string", allowed=["BrowseMetadata", "BrowseDirectChildren"]
            ),
            "A_ARG_TYPE_Filter": create_state_var("string"),
            "A_ARG_TYPE_SortCriteria": create_state_var("string"),
            "A_ARG_TYPE_Index": create_state_var("ui4"),
            "A_ARG_TYPE_Count": create_state_var("ui4"),
            "A_ARG_TYPE_UpdateID": create_state_var("ui4"),
        }
    )

    async def _library(self) -> Library:
        library = await self.CATALOG.library()
        # Evented: subscribers hear of a changed listing.
        self.state_variable("SystemUpdateID").value = self.CATALOG.update_id
        return library

    @callable_action(
        name="Browse",
        in_args={
            "ObjectID": "A_ARG_TYPE_ObjectID",
            "BrowseFlag": "A_ARG_TYPE_BrowseFlag",
            "Filter": "A_ARG_TYPE_Filter",
            "StartingIndex": "A_ARG_TYPE_Index",
            "RequestedCount": "A_ARG_TYPE_Count",
            "SortCriteria": "A_ARG_TYPE_SortCriteria",
        },
        out_args={
            "Result": "A_ARG_TYPE_Result",
            "NumberReturned": "A_ARG_TYPE_Count",
            "TotalMatches": "A_ARG_TYPE_Count",
            "UpdateID": "A_ARG_TYPE_UpdateID",
        },
    )
    async def browse(
        self,
        ObjectID: str,
        BrowseFlag: str,
        Filter: str,  # every property is always sent ("*")
        StartingIndex: int,
        RequestedCount: int,
        SortCriteria: str,  # SortCapabilities is empty: the titles' own order
    ) -> dict[str, Any]:
        library = await self._library()
        metadata = BrowseFlag == "BrowseMetadata"
        try:
            found = browse(
                library, ObjectID, metadata=metadata, start=StartingIndex, count=RequestedCount
            )
        except NoSuchObject:
            raise UpnpActionError(error_code=NO_SUCH_OBJECT, error_desc="No such object") from None
        except NoSuchContainer:
            raise UpnpActionError(
                error_code=NO_SUCH_CONTAINER, error_desc="No such container"
            ) from None
        return {
            "Result": found.didl,
            "NumberReturned": found.returned,
            "TotalMatches": found.total,
            "UpdateID": self.CATALOG.update_id,
        }

    @callable_action(
        name="GetSearchCapabilities",
        in_args={},
        out_args={"SearchCaps": "SearchCapabilities"},
    )
    async def get_search_capabilities(self) -> dict[str, UpnpStateVariable[Any]]:
        return {"SearchCaps": self.state_variable("SearchCapabilities")}

    @callable_action(
        name="GetSortCapabilities",
        in_args={},
        out_args={"SortCaps": "SortCapabilities"},
    )
    async def get_sort_capabilities(self) -> dict[str, UpnpStateVariable[Any]]:
        return {"SortCaps": self.state_variable("SortCapabilities")}

    @callable_action(
        name="GetSystemUpdateID",
        in_args={},
        out_args={"Id": "SystemUpdateID"},
    )
    async def get_system_update_id(self) -> dict[str, UpnpStateVariable[Any]]:
        await self._library()
        return {"Id": self.state_variable("SystemUpdateID")}


class ConnectionManager(UpnpServerService):
    """ConnectionManager:1 of a server without PrepareForConnection: connection 0 only."""

    SERVICE_DEFINITION = _service_info("ConnectionManager", CONNECTION_MANAGER)
    STATE_VARIABLE_DEFINITIONS = MappingProxyType(
        {
            "SourceProtocolInfo": create_event_var("string", default=SOURCE_PROTOCOLS),
            "SinkProtocolInfo": create_event_var("string", default=""),
            "CurrentConnectionIDs": create_event_var("string", default="0"),
            "A_ARG_TYPE_ConnectionStatus": create_state_var(
                "string",
                allowed=[
                    "OK",
                    "ContentFormatMismatch",
                    "InsufficientBandwidth",
                    "UnreliableChannel",
                    "Unknown",
                ],
            ),
            "A_ARG_TYPE_ConnectionManager": create_state_var("string"),
            "A_ARG_TYPE_Direction": create_state_var("string", allowed=["Input", "Output"]),
            "A_ARG_TYPE_ProtocolInfo": create_state_var("string"),
            "A_ARG_TYPE_ConnectionID": create_state_var("i4"),
            "A_ARG_TYPE_AVTransportID": create_state_var("i4"),
            "A_ARG_TYPE_RcsID": create_state_var("i4"),
        }
    )

    @callable_action(
        name="GetProtocolInfo",
        in_args={},
        out_args={"Source": "SourceProtocolInfo", "Sink": "SinkProtocolInfo"},
    )
    async def get_protocol_info(self) -> dict[str, UpnpStateVariable[Any]]:
        return {
            "Source": self.state_variable("SourceProtocolInfo"),
            "Sink": self.state_variable("SinkProtocolInfo"),
        }

    @callable_action(
        name="GetCurrentConnectionIDs",
        in_args={},
        out_args={"ConnectionIDs": "CurrentConnectionIDs"},
    )
    async def get_current_connection_ids(self) -> dict[str, UpnpStateVariable[Any]]:
        return {"ConnectionIDs": self.state_variable("CurrentConnectionIDs")}

    @callable_action(
        name="GetCurrentConnectionInfo",
        in_args={"ConnectionID": "A_ARG_TYPE_ConnectionID"},
        out_args={
            "RcsID": "A_ARG_TYPE_RcsID",
            "AVTransportID": "A_ARG_TYPE_AVTransportID",
            "ProtocolInfo": "A_ARG_TYPE_ProtocolInfo",
            "PeerConnectionManager": "A_ARG_TYPE_ConnectionManager",
            "PeerConnectionID": "A_ARG_TYPE_ConnectionID",
            "Direction": "A_ARG_TYPE_Direction",
            "Status": "A_ARG_TYPE_ConnectionStatus",
        },
    )
    async def get_current_connection_info(self, ConnectionID: int) -> dict[str, Any]:
        if ConnectionID != 0:
            raise UpnpActionError(
                error_code=INVALID_CONNECTION_REFERENCE, error_desc="Invalid connection reference"
            )
        return {
            "RcsID": -1,
            "AVTransportID": -1,
            "ProtocolInfo": "",
            "PeerConnectionManager": "",
            "PeerConnectionID": -1,
            "Direction": "Output",
            "Status": "OK",
        }


def media_server_device(
    name: str, udn: str, presentation_url: str, catalog: Catalog
) -> type[UpnpServerDevice]:
    """The device class the library instantiates: its definition is per server (name,
    UDN), and its ContentDirectory reads `catalog`."""

    class Directory(ContentDirectory):
        CATALOG = catalog

    class MediaServerDevice(UpnpServerDevice):
        DEVICE_DEFINITION = DeviceInfo(
            device_type=DEVICE_TYPE,
            friendly_name=name,
            manufacturer="streme",
            manufacturer_url=None,
            model_description="streme: torrent streaming server",
            model_name="streme",
            model_number=__version__,
            model_url=None,
            serial_number=None,
            udn=udn,
            upc=None,
            presentation_url=presentation_url,  # the web page
            url=DESCRIPTION_PATH,
            icons=[],
            xml=ET.Element("server_device"),
        )
        EMBEDDED_DEVICES = ()
        SERVICES = (Directory, ConnectionManager)

    return MediaServerDevice


def free_port(address: str) -> int:
    """A TCP port free on `address` now (the library needs the port before it binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


class MediaServer:
    """One announced media server: `start()`, then `stop()` (which says byebye)."""

    def __init__(self, config: Config, cache: CacheAPI, http_port: int) -> None:
        dlna = config.dlna
        self.name = dlna.name
        self.address = choose_address(dlna.address, config.http.host, default_route_address)
        self.port = dlna.port
        self.udn = device_udn(cache.parts.cache_root)
        base_url = f"http://{self.address}:{http_port}"
        self.presentation_url = base_url + "/"
        self.catalog = Catalog(
            cache, name=dlna.name, base_url=base_url, stream_token=config.http.stream_token
        )
        self._server: UpnpServer | None = None

    @property
    def description_url(self) -> str:
        return f"http://{self.address}:{self.port}{DESCRIPTION_PATH}"

    async def start(self) -> None:
        try:
            port = self.port or free_port(self.address)
        except OSError as exc:
            raise DlnaError(
                f"cannot listen on {self.address} for DLNA ({exc.strerror}): set dlna.address "
                "to an address of this machine"
            ) from None
        device = media_server_device(self.name, self.udn, self.presentation_url, self.catalog)
        server = UpnpServer(device, (self.address, 0), http_port=port)
        try:
            await server.async_start()
        except (OSError, UpnpError) as exc:
            # Best effort: what started is closed; the library's stop assumes a full start.
            with contextlib.suppress(Exception):
                await server.async_stop()
            raise DlnaError(
                f"cannot start the DLNA media server on {self.address} (port {port}, and "
                f"SSDP multicast on its interface): {exc}"
            ) from exc
        self._server, self.port = server, port
        log.info(
            'DLNA media server "%s" announced on %s (description %s)',
            self.name,
            self.address,
            self.description_url,
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.async_stop()
