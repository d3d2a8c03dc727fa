"""A DLNA control point made of async-upnp-client, run by test_dlna.py inside the test's
network namespace (`python tests/dlna/client.py`): what a TV does, reported as JSON lines
on stdout.

1. It listens for SSDP advertisements (NOTIFY on 239.255.255.250:1900, joined on
   127.0.0.1) from the start, and prints `{"listening": true}`.
2. On the line `browse` (stdin) it searches for a MediaServer:1 (M-SEARCH, multicast from
   127.0.0.1), reads the device description at the answer's LOCATION, calls the
   ContentDirectory and ConnectionManager actions, parses the DIDL-Lite, downloads every
   `<res>` (sha256 of each body) and prints the report with the NOTIFYs heard so far.
3. On the line `byebye` (the test has stopped the server) it waits up to 5 s for the
   device's ssdp:byebye and prints what it heard; then it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
from typing import Any

import aiohttp
from async_upnp_client.advertisement import SsdpAdvertisementListener
from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client import UpnpDevice, UpnpService
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpActionError
from async_upnp_client.search import async_search
from async_upnp_client.utils import CaseInsensitiveDict
from didl_lite import didl_lite

SOURCE = ("127.0.0.1", 0)
MEDIA_SERVER = "urn:schemas-upnp-org:device:MediaServer:1"
CONTENT_DIRECTORY = "urn:schemas-upnp-org:service:ContentDirectory:1"
CONNECTION_MANAGER = "urn:schemas-upnp-org:service:ConnectionManager:1"
SEARCH_SECONDS = 2
BYEBYE_SECONDS = 5.0


def emit(report: dict[str, Any]) -> None:
    print(json.dumps(report), flush=True)


def heard(headers: CaseInsensitiveDict) -> dict[str, str]:
    return {key: str(headers.get(key, "")) for key in ("NT", "NTS", "USN", "LOCATION")}


async def next_line() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


async def browse(
    service: UpnpService, object_id: str, flag: str, start: int = 0, count: int = 0
) -> dict[str, Any]:
    """One Browse: its numbers and the objects of its DIDL-Lite, or the error code."""
    try:
        result = await service.action("Browse").async_call(
            ObjectID=object_id,
            BrowseFlag=flag,
            Filter="*",
            StartingIndex=start,
            RequestedCount=count,
            SortCriteria="",
        )
    except UpnpActionError as exc:
        return {"error": exc.error_code}
    objects = []
    for found in didl_lite.from_xml_string(result["Result"]):
        assert isinstance(found, didl_lite.DidlObject)
        objects.append(
            {
                "id": found.id,
                "parent_id": found.parent_id,
                "class": found.upnp_class,
                "title": found.title,
                "child_count": getattr(found, "child_count", None),
                "res": [
                    {
                        "url": res.uri,
                        "protocol_info": res.protocol_info,
                        "size": res.xml_el.get("size") if res.xml_el is not None else None,
                    }
                    for res in found.res
                ],
            }
        )
    return {
        "objects": objects,
        "returned": result["NumberReturned"],
        "total": result["TotalMatches"],
        "update_id": result["UpdateID"],
    }


async def download(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
        async for chunk in response.content.iter_chunked(1 << 16):
            digest.update(chunk)
        return {
            "status": response.status,
            "content_type": response.headers.get("Content-Type", ""),
            "sha256": digest.hexdigest(),
        }


async def control(device: UpnpDevice) -> dict[str, Any]:
    directory = device.service(CONTENT_DIRECTORY)
    manager = device.service(CONNECTION_MANAGER)
    root = await browse(directory, "0", "BrowseDirectChildren")
    containers = {
        o["id"]: await browse(directory, o["id"], "BrowseDirectChildren")
        for o in root.get("objects", [])
        if o["class"].startswith("object.container")
    }
    videos = [o for o in root.get("objects", []) if o["res"]]
    videos += [o for c in containers.values() for o in c.get("objects", [])]
    async with aiohttp.ClientSession() as session:
        bodies = {o["id"]: await download(session, o["res"][0]["url"]) for o in videos}
    protocols = await manager.action("GetProtocolInfo").async_call()
    info = await manager.action("GetCurrentConnectionInfo").async_call(ConnectionID=0)
    return {
        "friendly_name": device.friendly_name,
        "udn": device.udn,
        "device_type": device.device_type,
        "root": root,
        "containers": containers,
        "bodies": bodies,
        "root_metadata": await browse(directory, "0", "BrowseMetadata"),
        "first_page": await browse(directory, "0", "BrowseDirectChildren", 0, 1),
        "second_page": await browse(directory, "0", "BrowseDirectChildren", 1, 1),
        "item_metadata": {
            o["id"]: await browse(directory, o["id"], "BrowseMetadata") for o in videos
        },
        "unknown_object": await browse(directory, "f" * 40, "BrowseMetadata"),
        "system_update_id": (await directory.action("GetSystemUpdateID").async_call())["Id"],
        "search_caps": (await directory.action("GetSearchCapabilities").async_call())["SearchCaps"],
        "sort_caps": (await directory.action("GetSortCapabilities").async_call())["SortCaps"],
        "source_protocols": protocols["Source"],
        "connection_ids": (await manager.action("GetCurrentConnectionIDs").async_call())[
            "ConnectionIDs"
        ],
        "connection_status": info["Status"],
    }


async def main() -> None:
    notifies: list[dict[str, str]] = []
    byebye = asyncio.Event()

    def on_notify(headers: CaseInsensitiveDict) -> None:
        notifies.append(heard(headers))
        if notifies[-1]["NTS"] == "ssdp:byebye":
            byebye.set()

    listener = SsdpAdvertisementListener(on_alive=on_notify, on_byebye=on_notify, source=SOURCE)
    await listener.async_start()
    try:
        emit({"listening": True})
        if await next_line() != "browse":
            return
        answers: list[dict[str, str]] = []

        async def on_answer(headers: CaseInsensitiveDict) -> None:
            answers.append({k: str(headers.get(k, "")) for k in ("ST", "USN", "LOCATION")})

        await async_search(on_answer, SEARCH_SECONDS, MEDIA_SERVER, source=SOURCE)
        report: dict[str, Any] = {"answers": answers}
        if answers:
            requester = AiohttpRequester()
            device = await UpnpFactory(requester).async_create_device(answers[0]["LOCATION"])
            report.update(await control(device))
        report["notifies"] = list(notifies)
        emit(report)
        if await next_line() != "byebye":
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(byebye.wait(), BYEBYE_SECONDS)
        emit({"notifies": notifies})
    finally:
        await listener.async_stop()


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), timeout=90))
