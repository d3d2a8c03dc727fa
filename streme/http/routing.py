"""Routing: (method, path) -> handler and path parameters. Pure: no I/O.

Patterns are `/`-separated; a segment `{name}` captures one whole path segment (possibly
empty, so `/stream/proxy/` reaches the handler, which says what is wrong with it). Paths
arrive percent-encoded: they are split on `/` first, then each segment is decoded, so an
encoded `%2F` stays inside its segment. A path
that matches a pattern but not the method gets 405 with the route's `Allow`; a path that
matches nothing gets 404. HEAD is allowed wherever GET is (RFC 9110 §9.3.2).
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

    def add(self, pattern: str, handler: H, methods: Iterable[str] = ("GET",)) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        segments = tuple(pattern.split("/")[1:])
        captures = tuple(i for i, s in enumerate(segments) if s.startswith("{") and s.endswith("}"))
        names = tuple(segments[i][1:-1] for i in captures)
        handlers = {m.upper(): handler for m in methods}
        if "GET" in handlers:
            handlers.setdefault("HEAD", handler)
        if 0 in captures:
            raise ValueError(f"route pattern must start with a literal segment: {pattern!r}")
        same = self._exact.get(pattern) if not captures else None
        if captures:
            key = (len(segments), segments[0])
            same = next((r for r in self._patterned.get(key, ()) if r.segments == segments), None)
        if same is not None:  # more methods for a pattern already routed
            same.handlers.update(handlers)
            return
        route = _Route(segments, captures, names, handlers)
        if not captures:
            self._exact[pattern] = route
        else:
            self._patterned.setdefault((len(segments), segments[0]), []).append(route)

    def resolve(self, method: str, path: str) -> Match[H] | NotFound | MethodNotAllowed:
        route = self._exact.get(path)
        params: dict[str, str] = {}
        if route is None:
            parts = path.split("/")[1:]
            if "%" in path:
                parts = [unquote(part) for part in parts]
            key = (len(parts), parts[0] if parts else "")
            for candidate in self._patterned.get(key, ()):
                found = self._match(candidate, parts)
                if found is not None:
                    route, params = candidate, found
                    break
        if route is None:
            return NotFound()
        handler = route.handlers.get(method)
        if handler is None:
            return MethodNotAllowed(tuple(sorted(route.handlers)))
        return Match(handler, params)

    @staticmethod
    def _match(route: _Route[H], parts: list[str]) -> dict[str, str] | None:
        for i, seg in enumerate(route.segments):
            if i not in route.captures and parts[i] != seg:
                return None
        return {name: parts[i] for name, i in zip(route.names, route.captures, strict=True)}
