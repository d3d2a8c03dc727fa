from streme.http.routing import Match, MethodNotAllowed, NotFound, Router


def make_router() -> Router[str]:
    router: Router[str] = Router()
    router.add("/health", "health")
    router.add("/stream/proxy/{infohash}", "stream")
    return router


def test_exact_route() -> None:
    found = make_router().resolve("GET", "/health")
    assert found == Match("health", {})


def test_capture_route() -> None:
    found = make_router().resolve("GET", "/stream/proxy/abc")
    assert found == Match("stream", {"infohash": "abc"})


def test_head_allowed_wherever_get_is() -> None:
    assert make_router().resolve("HEAD", "/stream/proxy/abc") == Match(
        "stream", {"infohash": "abc"}
    )


def test_empty_capture_reaches_handler() -> None:
    assert make_router().resolve("GET", "/stream/proxy/") == Match("stream", {"infohash": ""})


def test_method_not_allowed_lists_allow() -> None:
    assert make_router().resolve("POST", "/health") == MethodNotAllowed(("GET", "HEAD"))


def test_unknown_paths() -> None:
    router = make_router()
    for path in ["/", "/healthz", "/stream/proxy", "/stream/proxy/a/b", "/stream/proxy/../x", "*"]:
        assert router.resolve("GET", path) == NotFound(), path


def test_segments_are_decoded_after_splitting() -> None:
    router = make_router()
    assert router.resolve("GET", "/stream/proxy/a%2Fb") == Match("stream", {"infohash": "a/b"})
    assert router.resolve("GET", "/stream/%70roxy/x") == Match("stream", {"infohash": "x"})


def test_methods_added_separately_share_one_route() -> None:
    router: Router[str] = Router()
    router.add("/api/cache/{infohash}", "get", methods=("GET",))
    router.add("/api/cache/{infohash}", "delete", methods=("DELETE",))
    router.add("/api/stats", "stats", methods=("GET",))
    router.add("/api/stats", "preflight", methods=("OPTIONS",))
    assert router.resolve("DELETE", "/api/cache/ab") == Match("delete", {"infohash": "ab"})
    assert router.resolve("GET", "/api/cache/ab") == Match("get", {"infohash": "ab"})
    assert router.resolve("OPTIONS", "/api/stats") == Match("preflight", {})
    found = router.resolve("PUT", "/api/cache/ab")
    assert isinstance(found, MethodNotAllowed)
    assert found.allow == ("DELETE", "GET", "HEAD")


def test_patterns_starting_with_a_capture() -> None:
    router = make_router()
    router.add("/{infohash}/{file}", "play")
    router.add("/{infohash}/stats.json", "stats")  # added later, still more specific
    router.add("/{infohash}/create", "create", methods=("POST",))
    router.add("/stats.json", "all stats")
    assert router.resolve("GET", "/ab/3") == Match("play", {"infohash": "ab", "file": "3"})
    assert router.resolve("GET", "/ab/stats.json") == Match("stats", {"infohash": "ab"})
    assert router.resolve("POST", "/ab/create") == Match("create", {"infohash": "ab"})
    assert router.resolve("GET", "/stats.json") == Match("all stats", {})
    # A literal first segment wins: the stream route is not a file named "ab".
    assert router.resolve("GET", "/stream/proxy/ab") == Match("stream", {"infohash": "ab"})
    assert router.resolve("GET", "/stream/x") == Match("play", {"infohash": "stream", "file": "x"})
    assert router.resolve("GET", "/ab/3/4") == NotFound()
