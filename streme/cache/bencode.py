"""A strict bencode decoder (BEP 3) that also reports the raw span of the `info` dict. Pure."""

from __future__ import annotations

Value = int | bytes | list["Value"] | dict[bytes, "Value"]

MAX_DEPTH = 64


class BencodeError(ValueError):
    """The bytes are not valid bencode."""


def decode(data: bytes) -> tuple[Value, tuple[int, int] | None]:
    """Decode `data`; also return the (start, end) byte span of the top-level `info` value."""
    decoder = _Decoder(data)
    value = decoder.value(0)
    if decoder.pos != len(data):
        raise BencodeError(f"trailing bytes after the value at offset {decoder.pos}")
    return value, decoder.info_span


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.info_span: tuple[int, int] | None = None

    def value(self, depth: int) -> Value:
        if depth > MAX_DEPTH:
            raise BencodeError("nesting too deep")
        data = self.data
        if self.pos >= len(data):
            raise BencodeError("unexpected end of data")
        lead = data[self.pos]
        if lead == ord("i"):
            return self.integer()
        if lead == ord("l"):
            self.pos += 1
            items: list[Value] = []
            while self._peek() != ord("e"):
                items.append(self.value(depth + 1))
            self.pos += 1
            return items
        if lead == ord("d"):
            self.pos += 1
            out: dict[bytes, Value] = {}
            previous: bytes | None = None
            while self._peek() != ord("e"):
                key = self.string()
                if previous is not None and key <= previous:
                    raise BencodeError("dictionary keys are not sorted and unique")
                previous = key
                start = self.pos
                out[key] = self.value(depth + 1)
                if depth == 0 and key == b"info":
                    self.info_span = (start, self.pos)
            self.pos += 1
            return out
        if ord("0") <= lead <= ord("9"):
            return self.string()
        raise BencodeError(f"unexpected byte {lead:#x} at offset {self.pos}")

    def _peek(self) -> int:
        if self.pos >= len(self.data):
            raise BencodeError("unexpected end of data")
        return self.data[self.pos]

    def integer(self) -> int:
        end = self.data.find(b"e", self.pos)
        if end < 0:
            raise BencodeError("unterminated integer")
        digits = self.data[self.pos + 1 : end]
        if (
            not digits
            or digits == b"-0"
            or (digits.startswith(b"0") and len(digits) > 1)
            or (digits.startswith(b"-0"))
            or not digits.lstrip(b"-").isdigit()
            or digits.count(b"-") > 1
            or len(digits) > 32
        ):
            raise BencodeError(f"invalid integer at offset {self.pos}")
        self.pos = end + 1
        return int(digits)

    def string(self) -> bytes:
        colon = self.data.find(b":", self.pos)
        if colon < 0:
            raise BencodeError("unterminated string length")
        digits = self.data[self.pos : colon]
        if (
            not digits.isdigit()
            or (digits.startswith(b"0") and len(digits) > 1)
            or len(digits) > 12
        ):
            raise BencodeError(f"invalid string length at offset {self.pos}")
        length = int(digits)
        start = colon + 1
        end = start + length
        if end > len(self.data):
            raise BencodeError("string runs past the end of data")
        self.pos = end
        return self.data[start:end]
