"""Request-target parsing (RFC 9112 §3.2): path and query of origin- or absolute-form."""

from __future__ import annotations

from urllib.parse import unquote


class BadTarget(ValueError):
    """The request-target cannot be turned into a path."""


def split_target(target: str) -> tuple[str, str]:
    """Return the percent-decoded path and the raw query string of a request-target."""
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
    if "%" in path:
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError as exc:
            raise BadTarget("path is not valid percent-encoded UTF-8") from exc
    if "\x00" in path:
        raise BadTarget("path contains a NUL byte")
    return path, query
