"""The media server's pure parts: the titles as ContentDirectory objects and DIDL-Lite,
paging, the announced address, the UDN, the `dlna` settings; and the catalog over a real
in-process server's cache."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from streme.api.views import CacheEntry, FileView
from streme.config import Config, ConfigError, build_config
from streme.dlna import DlnaError, start_media_server
from streme.dlna.address import choose_address, device_udn

didl_lite = pytest.importorskip("didl_lite.didl_lite", reason="pip install -e '.[dlna]'")

from streme.dlna.catalog import LISTING_TTL, Catalog  # noqa: E402
from streme.dlna.content import (  # noqa: E402
    DLNA_FEATURES,
    Folder,
    Library,
    NoSuchContainer,
    NoSuchObject,
    Video,
    browse,
    build_library,
    display_title,
)
from tests.conftest import RunningServer, wait_until, write_video  # noqa: E402

BASE = "http://192.168.1.20:7000"
EXTS = [".mp4", ".mkv"]
HAND = "5" * 40
PACK = "a" * 40
SINGLE = "b" * 40
PARTIAL = "c" * 40
TEXT_ONLY = "d" * 40


def view(infohash: str, index: int | None, path: str, size: int, content_type: str) -> FileView:
    url = f"/stream/proxy/{infohash}" + ("" if index is None else f"?file={index}")
    return FileView(index, path, size, content_type, url)


def entry(infohash: str, name: str, files: list[FileView], complete: bool = True) -> CacheEntry:
    return CacheEntry(
        infohash=infohash,
        name=name,
        bytes=sum(f.size for f in files),
        origin="downloaded",
        added=0.0,
        last_served=None,
        hits=0,
        bytes_served=0,
        pinned=False,
        complete=complete,
        url=f"/stream/proxy/{infohash}",
        files=files,
    )


ENTRIES = [
    entry(
        PACK,
        "Show S01",
        [
            view(PACK, 0, "Show S01/Show.S01E01.mkv", 300, "video/x-matroska"),
            view(PACK, 1, "Show S01/Show.S01E01.en.srt", 10, "application/x-subrip"),
            view(PACK, 2, "Show S01/notes.nfo", 5, "application/octet-stream"),
            view(PACK, 3, "Show S01/Show.S01E02.mp4", 200, "video/mp4"),
        ],
    ),
    entry(
        HAND,
        f"{HAND}-Zebra & <Friends>.mp4",
        [view(HAND, None, f"{HAND}-x.mp4", 1000, "video/mp4")],
    ),
    entry(
        SINGLE, "Arrival.2016.mkv", [view(SINGLE, 0, "Arrival.2016.mkv", 700, "video/x-matroska")]
    ),
    entry(PARTIAL, "Partial", [view(PARTIAL, 0, "Partial.mkv", 9, "video/x-matroska")], False),
    entry(TEXT_ONLY, "Only text", [view(TEXT_ONLY, 0, "readme.txt", 9, "text/plain")]),
]


def library(token: str = "") -> Library:
    return build_library(
        "Living room", ENTRIES, base_url=BASE, stream_token=token, video_extensions=EXTS
    )


def parse(didl: str) -> list[didl_lite.DidlObject]:
    objects = didl_lite.from_xml_string(didl)
    assert all(isinstance(o, didl_lite.DidlObject) for o in objects)
    return objects  # type: ignore[return-value]


def test_the_tree_of_complete_titles() -> None:
    lib = library()
    # Sorted by title; the partial title and the one without a video are left out.
    assert [(n.id, n.title, type(n)) for n in lib.titles] == [
        (SINGLE, "Arrival.2016.mkv", Video),
        (PACK, "Show S01", Folder),
        (HAND, "Zebra & <Friends>.mp4", Video),
    ]
    single, pack, hand = lib.titles
    assert isinstance(single, Video)
    assert isinstance(pack, Folder)
    assert isinstance(hand, Video)
    assert (single.parent_id, single.url) == ("0", f"{BASE}/stream/proxy/{SINGLE}?file=0")
    assert (hand.url, hand.size, hand.content_type) == (
        f"{BASE}/stream/proxy/{HAND}",
        1000,
        "video/mp4",
    )
    # A folder's children: its videos in the torrent's order, subtitles and .nfo left out.
    assert [(v.id, v.parent_id, v.title, v.url) for v in pack.children] == [
        (f"{PACK}/0", PACK, "Show.S01E01.mkv", f"{BASE}/stream/proxy/{PACK}?file=0"),
        (f"{PACK}/3", PACK, "Show.S01E02.mp4", f"{BASE}/stream/proxy/{PACK}?file=3"),
    ]
    assert lib.find(f"{PACK}/3") is pack.children[1]
    assert lib.find(f"{PACK}/1") is None  # the subtitle is not an object
    assert lib.find(PARTIAL) is None


def test_stream_urls_carry_the_token() -> None:
    lib = library(token="s3 cret&x")
    _, pack, hand = lib.titles
    assert isinstance(pack, Folder)
    assert isinstance(hand, Video)
    assert hand.url == f"{BASE}/stream/proxy/{HAND}?token=s3%20cret%26x"
    assert pack.children[0].url == f"{BASE}/stream/proxy/{PACK}?file=0&token=s3%20cret%26x"
    # Written into DIDL-Lite and read back, the URL is the same.
    found = browse(lib, PACK, metadata=False, start=0, count=0)
    assert "&amp;token=" in found.didl
    assert parse(found.didl)[0].res[0].uri == pack.children[0].url


def test_display_title() -> None:
    assert display_title(f"{HAND}-Film.mp4", HAND) == "Film.mp4"
    assert display_title(f"{HAND} _Film.mp4", HAND) == "Film.mp4"
    assert display_title(f"{HAND}.mp4", HAND) == f"{HAND}.mp4"  # nothing but the hash
    assert display_title(HAND, HAND) == HAND
    assert display_title(f"Film {HAND}.mp4", HAND) == f"Film {HAND}.mp4"
    assert display_title("Show S01", PACK) == "Show S01"


def test_browse_the_root() -> None:
    lib = library()
    found = browse(lib, "0", metadata=False, start=0, count=0)
    assert (found.returned, found.total) == (3, 3)
    objects = parse(found.didl)
    assert [(o.id, o.parent_id, o.upnp_class, o.title) for o in objects] == [
        (SINGLE, "0", "object.item.videoItem", "Arrival.2016.mkv"),
        (PACK, "0", "object.container.storageFolder", "Show S01"),
        (HAND, "0", "object.item.videoItem", "Zebra & <Friends>.mp4"),
    ]
    assert objects[1].child_count == "2"
    assert objects[1].restricted == "1"
    (res,) = objects[0].res
    assert res.uri == f"{BASE}/stream/proxy/{SINGLE}?file=0"
    assert res.protocol_info == f"http-get:*:video/x-matroska:{DLNA_FEATURES}"
    assert res.xml_el is not None
    assert res.xml_el.get("size") == "700"  # python-didl-lite alone would drop it

    # The root itself.
    found = browse(lib, "0", metadata=True, start=0, count=0)
    assert (found.returned, found.total) == (1, 1)
    (root,) = parse(found.didl)
    assert (root.id, root.parent_id, root.title, root.child_count) == (
        "0",
        "-1",
        "Living room",
        "3",
    )
    assert root.upnp_class == "object.container"


@pytest.mark.parametrize(
    ("start", "count", "ids"),
    [
        (0, 1, [SINGLE]),
        (1, 1, [PACK]),
        (1, 0, [PACK, HAND]),  # 0: all the rest
        (2, 5, [HAND]),
        (3, 1, []),
        (9, 0, []),
    ],
)
def test_paging(start: int, count: int, ids: list[str]) -> None:
    found = browse(library(), "0", metadata=False, start=start, count=count)
    assert [o.id for o in parse(found.didl)] == ids
    assert (found.returned, found.total) == (len(ids), 3)


def test_browse_a_folder_and_an_item() -> None:
    lib = library()
    found = browse(lib, PACK, metadata=False, start=1, count=1)
    assert (found.returned, found.total) == (1, 2)
    (video,) = parse(found.didl)
    assert (video.id, video.parent_id, video.title) == (f"{PACK}/3", PACK, "Show.S01E02.mp4")
    assert video.res[0].protocol_info.startswith("http-get:*:video/mp4:DLNA.ORG_OP=01;")

    (folder,) = parse(browse(lib, PACK, metadata=True, start=0, count=0).didl)
    assert (folder.id, folder.parent_id, folder.child_count) == (PACK, "0", "2")
    assert folder.storage_used == "500"
    (item,) = parse(browse(lib, f"{PACK}/0", metadata=True, start=0, count=0).didl)
    assert (item.id, item.title) == (f"{PACK}/0", "Show.S01E01.mkv")

    with pytest.raises(NoSuchContainer):
        browse(lib, HAND, metadata=False, start=0, count=0)
    for missing in (PARTIAL, f"{PACK}/1", f"{PACK}/99", "nonsense", ""):
        with pytest.raises(NoSuchObject):
            browse(lib, missing, metadata=True, start=0, count=0)


def test_an_empty_cache() -> None:
    lib = build_library("x", [], base_url=BASE, stream_token="", video_extensions=EXTS)
    found = browse(lib, "0", metadata=False, start=0, count=0)
    assert (found.returned, found.total, parse(found.didl)) == (0, 0, [])


def no_route() -> str:
    raise AssertionError("the default route was asked for")


def test_the_announced_address() -> None:
    # Set: as it is, loopback included (the operator said so).
    assert choose_address("127.0.0.1", "127.0.0.1", no_route) == "127.0.0.1"
    assert choose_address("192.168.1.20", "0.0.0.0", no_route) == "192.168.1.20"
    # Not set: http.host when it is one address, else the default route's interface.
    assert choose_address("", "192.168.1.30", no_route) == "192.168.1.30"
    for wildcard in ("0.0.0.0", "::", ""):
        assert choose_address("", wildcard, lambda: "10.0.0.7") == "10.0.0.7"
    # A guessed loopback address is refused, saying what to do.
    with pytest.raises(
        DlnaError, match=r"http\.host is 127\.0\.0\.1.*--host 0\.0\.0\.0.*dlna\.address"
    ):
        choose_address("", "127.0.0.1", no_route)
    with pytest.raises(DlnaError, match=r"default route's interface is 127\.0\.1\.1"):
        choose_address("", "0.0.0.0", lambda: "127.0.1.1")
    for host in ("::1", "localhost", "fe80::1"):
        with pytest.raises(DlnaError, match=r"set dlna\.address"):
            choose_address("", host, no_route)


def test_the_udn_is_stable_per_cache_directory() -> None:
    udn = device_udn("/srv/videos")
    assert udn == device_udn("/srv/videos")
    assert udn != device_udn("/srv/other")
    assert udn.startswith("uuid:")
    assert len(udn) == len("uuid:") + 36


def test_dlna_settings(tmp_path: Path) -> None:
    assert Config().dlna.enabled is False
    assert (Config().dlna.name, Config().dlna.address, Config().dlna.port) == ("streme", "", 0)
    env = {
        "STREME_DLNA_ENABLED": "yes",
        "STREME_DLNA_NAME": "Living room",
        "STREME_DLNA_ADDRESS": "192.168.1.20",
        "STREME_DLNA_PORT": "8200",
    }
    dlna = build_config(environ=env).dlna
    assert (dlna.enabled, dlna.name, dlna.address, dlna.port) == (
        True,
        "Living room",
        "192.168.1.20",
        8200,
    )
    toml = tmp_path / "streme.toml"
    toml.write_text('[dlna]\nenabled = true\nname = "Den"\n')
    dlna = build_config(toml_path=str(toml), environ={}).dlna
    assert (dlna.enabled, dlna.name) == (True, "Den")
    bad = [
        ({"STREME_DLNA_ADDRESS": "tv.lan"}, "dlna.address: 'tv.lan' is not an IPv4 address"),
        ({"STREME_DLNA_ADDRESS": "0.0.0.0"}, "dlna.address"),
        ({"STREME_DLNA_ADDRESS": "239.255.255.250"}, "dlna.address"),
        ({"STREME_DLNA_NAME": " "}, "dlna.name"),
        ({"STREME_DLNA_PORT": "70000"}, "dlna.port"),
        ({"STREME_DLNA_ENABLED": "maybe"}, "dlna.enabled"),
    ]
    for environ, field in bad:
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            build_config(environ=environ)


async def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without async-upnp-client, enabling DLNA stops with the extra's name."""
    monkeypatch.setitem(sys.modules, "async_upnp_client", None)  # import raises ImportError
    monkeypatch.delitem(sys.modules, "streme.dlna.server", raising=False)
    config = build_config(environ={"STREME_DLNA_ENABLED": "1"})
    with pytest.raises(DlnaError, match=r"pip install 'streme\[dlna\]'"):
        await start_media_server(config, None, 7000)  # type: ignore[arg-type]


def test_an_address_not_on_this_machine_is_refused(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server()
    assert server.app.api is not None
    environ = {"STREME_DLNA_ENABLED": "1", "STREME_DLNA_ADDRESS": "192.0.2.55"}  # TEST-NET-1
    starting = start_media_server(build_config(environ=environ), server.app.api.cache, server.port)
    with pytest.raises(DlnaError, match=r"cannot listen on 192\.0\.2\.55 for DLNA"):
        asyncio.run_coroutine_threadsafe(starting, server.loop).result(10)


def test_the_catalog_over_a_real_cache(
    make_server: Callable[..., RunningServer], cache_dir: Path
) -> None:
    """The catalog lists what the cache API describes; one listing serves LISTING_TTL s;
    a changed listing raises the update id."""
    write_video(cache_dir, f"{HAND}-Film.mp4", 1024 * 1024)
    write_video(cache_dir, f"{SINGLE}-Other.mp4", 1024 * 1024, seed=3)
    server = make_server()
    assert server.app.api is not None
    now = [0.0]
    catalog = Catalog(
        server.app.api.cache,
        name="streme",
        base_url="http://10.0.0.7:7000",
        stream_token="",
        clock=lambda: now[0],
    )

    def listing() -> Library:
        now[0] += LISTING_TTL  # a fresh listing each time
        return asyncio.run_coroutine_threadsafe(catalog.library(), server.loop).result(10)

    assert wait_until(lambda: len(listing().titles) == 2)  # once the first sweep recorded them
    titles = listing().titles
    assert [(t.id, t.title) for t in titles] == [(HAND, "Film.mp4"), (SINGLE, "Other.mp4")]
    assert isinstance(titles[0], Video)
    assert titles[0].url == f"http://10.0.0.7:7000/stream/proxy/{HAND}"
    first = catalog.update_id
    (cache_dir / f"{SINGLE}-Other.mp4").unlink()
    assert wait_until(lambda: len(listing().titles) == 1)
    assert catalog.update_id == first + 1
    listing()
    assert catalog.update_id == first + 1  # the same listing: the same id
    # Within LISTING_TTL the last listing is served as it was.
    write_video(cache_dir, f"{SINGLE}-Other.mp4", 1024 * 1024, seed=3)
    served = asyncio.run_coroutine_threadsafe(catalog.library(), server.loop).result(10)
    assert [t.id for t in served.titles] == [HAND]
