import h11

from streme.http.framing import encode_head, status_line


def parse_with_h11(head: bytes) -> h11.Response:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(head)
    event = client.next_event()
    assert isinstance(event, h11.Response)
    return event


def test_head_is_valid_http_that_h11_parses() -> None:
    head = encode_head(206, [(b"Content-Range", b"bytes 0-9/100"), (b"Content-Length", b"10")])
    event = parse_with_h11(head)
    assert event.status_code == 206
    assert event.reason == b"Partial Content"
    assert dict(event.headers) == {b"content-range": b"bytes 0-9/100", b"content-length": b"10"}


def test_exact_bytes() -> None:
    assert encode_head(200, [(b"A", b"1")]) == b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n"


def test_status_without_known_reason() -> None:
    assert status_line(299) == b"HTTP/1.1 299 \r\n"
    assert parse_with_h11(encode_head(299, [(b"Content-Length", b"0")])).status_code == 299


def test_every_status_streme_sends_has_its_reason() -> None:
    # The API's among them (202, 401, 403, 409, 507): an empty reason confused clients.
    expected = {202: b"Accepted", 401: b"Unauthorized", 403: b"Forbidden", 409: b"Conflict"}
    expected |= {413: b"Content Too Large", 414: b"URI Too Long", 507: b"Insufficient Storage"}
    for code, phrase in expected.items():
        assert status_line(code) == b"HTTP/1.1 %d %s\r\n" % (code, phrase)


def test_every_known_status_parses() -> None:
    for code in (200, 206, 304, 400, 404, 405, 408, 412, 413, 416, 431, 500, 501, 503, 504):
        assert parse_with_h11(encode_head(code, [(b"Content-Length", b"0")])).status_code == code
