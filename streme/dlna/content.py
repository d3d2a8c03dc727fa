"""What a TV browses: the cache's complete titles as ContentDirectory objects, in pages,
written as DIDL-Lite (python-didl-lite). Pure: the titles come in as `CacheEntry`s.

The tree: object `0` is the root container; its children are the titles, sorted by name.
A title with one video file is an `object.item.videoItem` whose id is its infohash; a title
with several is a storage folder `<infohash>` whose children are its videos,
`<infohash>/<file index>`, in the torrent's order. A hand-placed file's title loses the
infohash its name starts with. Files that are not videos (subtitles, .nfo) are left out,
and so are titles without a video. Each video's one resource is its stream URL on the
main port (with `token=` when `http.stream_token` is set), with its content type and size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote
from xml.etree import ElementTree

from didl_lite import didl_lite

from streme.api.views import CacheEntry, FileView
from streme.cache.lookup import is_video

ROOT_ID = "0"
ROOT_PARENT_ID = "-1"
# DLNA.ORG_OP=01: byte ranges (the stream routes answer Range); CI=0: not transcoded;
# FLAGS: streaming transfer mode, background transfer mode, connection stalling, DLNA 1.5.
DLNA_FEATURES = "DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000"


def protocol_info(content_type: str) -> str:
    return f"http-get:*:{content_type}:{DLNA_FEATURES}"


@dataclass(frozen=True, slots=True)
class Video:
    id: str
    parent_id: str
    title: str
    url: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Folder:
    id: str
    title: str
    children: tuple[Video, ...]

    parent_id = ROOT_ID


Node = Video | Folder


@dataclass(frozen=True)
class Library:
    """One listing of the cache: the root's children and every object by id."""

    name: str  # the root container's title (dlna.name)
    titles: tuple[Node, ...]

    @cached_property
    def _by_id(self) -> dict[str, Node]:
        found: dict[str, Node] = {}
        for title in self.titles:
            found[title.id] = title
            if isinstance(title, Folder):
                found.update((video.id, video) for video in title.children)
        return found

    def find(self, object_id: str) -> Node | None:
        return self._by_id.get(object_id)


class NoSuchObject(Exception):
    """ContentDirectory error 701."""


class NoSuchContainer(Exception):
    """ContentDirectory error 710: direct children of an item were asked for."""


def display_title(name: str, infohash: str) -> str:
    """A title as a TV shows it: a hand-placed file's name without the infohash it starts
    with (`<infohash>-Film.mp4` -> `Film.mp4`); other names as they are."""
    if not name.lower().startswith(infohash):
        return name
    rest = name[len(infohash) :].lstrip(" -_")
    return rest if rest and not rest.startswith(".") else name


def _basename(file: FileView) -> str:
    return file.path.rsplit("/", 1)[-1]


def stream_url(base_url: str, file: FileView, stream_token: str) -> str:
    url = base_url + file.url
    if stream_token:
        url += ("&" if "?" in url else "?") + f"token={quote(stream_token)}"
    return url


def build_library(
    name: str,
    entries: Iterable[CacheEntry],
    *,
    base_url: str,
    stream_token: str,
    video_extensions: Sequence[str],
) -> Library:
    """The tree of the complete titles among `entries`; `base_url` is
    `http://<address>:<http port>`."""
    exts = tuple(video_extensions)
    titles: list[Node] = []
    for entry in entries:
        videos = [f for f in entry.files if is_video(f.path, exts)]
        if not entry.complete or not videos:
            continue
        ih = entry.infohash
        if len(videos) == 1:
            (file,) = videos
            title = display_title(entry.name or _basename(file), ih)
            titles.append(_video(ih, ROOT_ID, title, file, base_url, stream_token))
            continue
        children = tuple(
            _video(f"{ih}/{f.index}", ih, _basename(f), f, base_url, stream_token) for f in videos
        )
        titles.append(Folder(ih, display_title(entry.name or ih, ih), children))
    titles.sort(key=lambda node: (node.title.lower(), node.id))
    return Library(name, tuple(titles))


def _video(
    object_id: str, parent_id: str, title: str, file: FileView, base_url: str, token: str
) -> Video:
    url = stream_url(base_url, file, token)
    return Video(object_id, parent_id, title, url, file.content_type, file.size)


def page(items: Sequence[Node], start: int, count: int) -> Sequence[Node]:
    """`count` items from `start` (ContentDirectory's StartingIndex and RequestedCount;
    a count of 0 means all the rest)."""
    return items[start : start + count] if count else items[start:]


@dataclass(frozen=True)
class BrowseResult:
    didl: str  # the DIDL-Lite document
    returned: int  # NumberReturned
    total: int  # TotalMatches


def browse(
    library: Library, object_id: str, *, metadata: bool, start: int, count: int
) -> BrowseResult:
    """A ContentDirectory Browse: the object itself (`metadata`, BrowseMetadata) or a page
    of its children (BrowseDirectChildren). Raises NoSuchObject, NoSuchContainer."""
    node = None if object_id == ROOT_ID else library.find(object_id)
    if object_id != ROOT_ID and node is None:
        raise NoSuchObject(object_id)
    if metadata:
        one = root_object(library) if node is None else didl_object(node)
        return BrowseResult(to_didl([one]), 1, 1)
    if isinstance(node, Video):
        raise NoSuchContainer(object_id)
    children = library.titles if node is None else node.children
    chosen = page(children, start, count)
    return BrowseResult(to_didl([didl_object(n) for n in chosen]), len(chosen), len(children))


class SizedResource(didl_lite.Resource):
    """A `<res>` that keeps its `size` (python-didl-lite 1.5 writes protocolInfo only)."""

    def to_xml(self) -> ElementTree.Element:
        element = super().to_xml()
        if self.size is not None:
            element.set("size", self.size)
        return element


def root_object(library: Library) -> didl_lite.DidlObject:
    return didl_lite.Container(
        id=ROOT_ID,
        parent_id=ROOT_PARENT_ID,
        restricted="1",
        searchable="0",
        title=library.name,
        child_count=str(len(library.titles)),
    )


def didl_object(node: Node) -> didl_lite.DidlObject:
    if isinstance(node, Folder):
        return didl_lite.StorageFolder(
            id=node.id,
            parent_id=node.parent_id,
            restricted="1",
            searchable="0",
            title=node.title,
            child_count=str(len(node.children)),
            storage_used=str(sum(v.size for v in node.children)),
        )
    resource = SizedResource(node.url, protocol_info(node.content_type), size=str(node.size))
    return didl_lite.VideoItem(
        id=node.id, parent_id=node.parent_id, restricted="1", title=node.title, res=[resource]
    )


def to_didl(objects: Iterable[didl_lite.DidlObject]) -> str:
    return didl_lite.to_xml_string(*objects).decode()
