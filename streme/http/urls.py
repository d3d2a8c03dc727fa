"""Request-target parsing (RFC 9112 §3.2): path and query of origin- or absolute-form."""

from __future__ import annotations

from urllib.parse import unquote


class BadTarget(ValueError):
    """The request-target cannot be turned into a path."""


def split_target(target: str) -> tuple[str, str]:
    """Return the path (still percent-encoded) and the query string of a request-target.

    The path is checked to decode as UTF-8 without NUL, but stays encoded: routing splits
    it on `/` first and decodes each segment, so `%2F` is data inside a segment, never a
    separator (RFC 3986 §2.2).
    """
    if target == "*":  # asterisk-form: OPTIONS * only; no route matches it
        return "*", ""
    if not target.startswith("/"):
        # absolute-form (RFC 9112 §3.2.2): servers must accept it; drop scheme and authority.
        scheme, sep, rest = target.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            raise BadTarget(f"request-target must be a path: {target[:64]!r}")
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    path = path.partition("#")[0]
    decoded = path
    if "%" in path:
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError as exc:
            raise BadTarget("path is not valid percent-encoded UTF-8") from exc
    if "\x00" in decoded:
        raise BadTarget("path contains a NUL byte")
    return path, query
