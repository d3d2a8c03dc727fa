import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streme.cache.infohash import InvalidInfohash, infohashes_in_name, parse_infohash

H = "0123456789abcdef0123456789abcdef01234567"


@given(st.binary(min_size=20, max_size=20))
def test_hex_and_base32_name_the_same_hash(raw: bytes) -> None:
    hexed = raw.hex()
    b32 = base64.b32encode(raw).decode()
    assert parse_infohash(hexed) == hexed
    assert parse_infohash(hexed.upper()) == hexed
    assert parse_infohash(b32) == hexed
    assert parse_infohash(b32.lower()) == hexed


@pytest.mark.parametrize(
    "text",
    ["", H[:39], H + "0", "g" * 40, "..", "../" * 13 + "a", H[:20] + "\x00" + H[21:], "1" * 32],
)
def test_rejects(text: str) -> None:
    with pytest.raises(InvalidInfohash, match="40 hex digits or 32 base32"):
        parse_infohash(text)


@given(st.text(max_size=80))
def test_never_raises_anything_else(text: str) -> None:
    try:
        result = parse_infohash(text)
    except InvalidInfohash:
        return
    assert len(result) == 40
    int(result, 16)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"{H}-test.mp4", {H}),
        (f"{H.upper()}.mkv", {H}),
        (f"movie.[{H}].mp4", {H}),
        (f"{H}0-too-long.mp4", set()),
        (f"a{H}.mp4", set()),  # 'a' is hex: a 41-digit run carries no hash
        (f"{H[:39]}.mp4", set()),
        (f"{H}_{'f' * 40}", {H, "f" * 40}),
        ("short.mp4", set()),
    ],
)
def test_infohashes_in_name(name: str, expected: set[str]) -> None:
    assert infohashes_in_name(name) == expected
