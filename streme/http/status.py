"""Reason phrases (h11 sends an empty one unless told): the standard library's table, with
RFC 9110 §15 names where Python 3.11 has older ones (413, 414, 416)."""

from http import HTTPStatus

REASONS: dict[int, bytes] = {status.value: status.phrase.encode() for status in HTTPStatus}
REASONS.update({413: b"Content Too Large", 414: b"URI Too Long", 416: b"Range Not Satisfiable"})


def reason(status: int) -> bytes:
    return REASONS.get(status, b"")
