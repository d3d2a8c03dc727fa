"""Routing: (method, path) -> handler and path parameters. Pure: no I/O.

Patterns are `/`-separated; a segment `{name}` captures one whole path segment (possibly
empty, so `/stream/proxy/` reaches the handler, which says what is wrong with it). Paths
arrive percent-encoded: they are split on `/` first, then each segment is decoded, so an
encoded `%2F` stays inside its segment. A path
that matches a pattern but not the method gets 405 with the route's `Allow`; a path that
matches nothing gets 404. HEAD is allowed wherever GET is (RFC 9110 §9.3.2).

A pattern may start with a capture (`/{infohash}/{file}`, Stremio's routes): those are
tried only when no pattern with a literal first segment matches, the ones with fewer
captures first, so `/{infohash}/stats.json` wins over `/{infohash}/{file}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote

H = TypeVar("H")


@dataclass(frozen=True, slots=True)
class Match(Generic[H]):
    handler: H
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class NotFound:
    pass


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    allow: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Route(Generic[H]):
    segments: tuple[str, ...]
    captures: tuple[int, ...]  # indexes of `{name}` segments
    names: tuple[str, ...]
    handlers: dict[str, H]  # method -> handler


class Router(Generic[H]):
    def __init__(self) -> None:
        self._exact: dict[str, _Route[H]] = {}
        # Patterned routes by (segment count, first segment): one dict probe per request.
        self._patterned: dict[tuple[int, str], list[_Route[H]]] = {}
        # Patterns starting with a capture, by segment count.
        self._open: dict[int, list[_Route[H]]] = {}

    def add(self, pattern: str, handler: H, methods: Iterable[str] = ("GET",)) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        segments = tuple(pattern.split("/")[1:])
        captures = tuple(i for i, s in enumerate(segments) if s.startswith("{") and s.endswith("}"))
        names = tuple(segments[i][1:-1] for i in captures)
        handlers = {m.upper(): handler for m in methods}
        if "GET" in handlers:
            handlers.setdefault("HEAD", handler)
        if not captures:
            same = self._exact.get(pattern)
            routes = None
        elif 0 in captures:
            routes = self._open.setdefault(len(segments), [])
        else:
            routes = self._patterned.setdefault((len(segments), segments[0]), [])
        if routes is not None:
            same = next((r for r in routes if r.segments == segments), None)
        if same is not None:  # more methods for a pattern already routed
            same.handlers.update(handlers)
            return
        route = _Route(segments, captures, names, handlers)
        if routes is None:
            self._exact[pattern] = route
        else:
            routes.append(route)
            routes.sort(key=lambda r: len(r.captures))  # stable: the same count keeps its order

    def resolve(self, method: str, path: str) -> Match[H] | NotFound | MethodNotAllowed:
        route = self._exact.get(path)
        params: dict[str, str] = {}
        if route is None:
            parts = path.split("/")[1:]
            if "%" in path:
                parts = [unquote(part) for part in parts]
            key = (len(parts), parts[0] if parts else "")
            route, params = self._first(self._patterned.get(key, ()), parts)
            if route is None:
                route, params = self._first(self._open.get(len(parts), ()), parts)
        if route is None:
            return NotFound()
        handler = route.handlers.get(method)
        if handler is None:
            return MethodNotAllowed(tuple(sorted(route.handlers)))
        return Match(handler, params)

    @classmethod
    def _first(
        cls, routes: Iterable[_Route[H]], parts: list[str]
    ) -> tuple[_Route[H] | None, dict[str, str]]:
        for candidate in routes:
            found = cls._match(candidate, parts)
            if found is not None:
                return candidate, found
        return None, {}

    @staticmethod
    def _match(route: _Route[H], parts: list[str]) -> dict[str, str] | None:
        for i, seg in enumerate(route.segments):
            if i not in route.captures and parts[i] != seg:
                return None
        return {name: parts[i] for name, i in zip(route.names, route.captures, strict=True)}
