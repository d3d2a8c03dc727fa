import pytest

from streme.http.urls import BadTarget, split_target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/a/b?x=1", ("/a/b", "x=1")),
        ("/a%20b", ("/a%20b", "")),
        ("/%2e%2e/x", ("/%2e%2e/x", "")),
        ("http://example.com/p?q", ("/p", "q")),
        ("HTTPS://example.com", ("/", "")),
        ("*", ("*", "")),
        ("/x#frag", ("/x", "")),
    ],
)
def test_split_target(target: str, expected: tuple[str, str]) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize("target", ["/a%00b", "/%ff", "ftp://x/y", "relative/path"])
def test_bad_targets(target: str) -> None:
    with pytest.raises(BadTarget):
        split_target(target)
