"""aiohttp's FileResponse on uvloop, serving one file at /stream/proxy/{hash} (a reference)."""

import sys

import uvloop
from aiohttp import web


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]

    async def stream(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/stream/proxy/{hash}", stream)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )


if __name__ == "__main__":
    main()
