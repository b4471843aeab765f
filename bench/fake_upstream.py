"""The fake upstream every benchmark calls: 200 `{}` to any method on any path.

Run: python bench/fake_upstream.py PORT
`GET /__bench/stats` answers the count of requests seen so far (per method), so the harness can
check that every call really reached the upstream. Runs in its own process, on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from aiohttp import web

BODY = b"{}"


def make_app() -> web.Application:
    seen: Counter[str] = Counter()

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(dict(seen)).encode(), content_type="application/json")

    async def anything(request: web.Request) -> web.Response:
        await request.read()
        seen[request.method] += 1
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/__bench/stats", stats)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        handle_signals=True,
    )


if __name__ == "__main__":
    main()
