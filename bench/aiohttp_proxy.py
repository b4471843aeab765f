"""The architecture's floor: a bare aiohttp server forwarding through one shared aiohttp
ClientSession to the upstream, with no logging, checks or metrics: what any aiohttp-based runtime
pays at least.

Run: python bench/aiohttp_proxy.py PORT UPSTREAM_URL
- REST: /v1/… is forwarded to UPSTREAM_URL/api/v1/… (same method and body).
- MCP: POST /mcp answers a minimal JSON-RPC: initialize (with an Mcp-Session-Id),
  notifications (202), tools/list (the two tools), tools/call of `delete-customer` (DELETE) and
  `identify-customer` (PUT with `body`), to UPSTREAM_URL/api/v1/customers/{identifier}.
"""

from __future__ import annotations

import json
import sys
import uuid

import aiohttp
from aiohttp import web

TOOLS = [
    {
        "name": "delete-customer",
        "inputSchema": {
            "type": "object",
            "properties": {"identifier": {"type": "string"}},
            "required": ["identifier"],
        },
    },
    {
        "name": "identify-customer",
        "inputSchema": {
            "type": "object",
            "properties": {
                "identifier": {"type": "string"},
                "body": {"type": "object"},
            },
            "required": ["identifier"],
        },
    },
]
JSON = {"Content-Type": "application/json"}


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    auth = aiohttp.BasicAuth("site", "key")

    async def start(app: web.Application) -> None:
        app["client"] = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def stop(app: web.Application) -> None:
        await app["client"].close()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        async with app["client"].request(
            request.method,
            f"{upstream}/api{request.path}",
            data=body or None,
            headers=JSON,
            auth=auth,
        ) as response:
            payload = await response.read()
            return web.Response(body=payload, status=response.status, content_type="application/json")

    async def mcp(request: web.Request) -> web.Response:
        message = json.loads(await request.read())
        method = message.get("method")
        if "id" not in message:
            return web.Response(status=202)
        headers = None
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bare", "version": "0"},
            }
            headers = {"Mcp-Session-Id": uuid.uuid4().hex}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            params = message["params"]
            arguments = params.get("arguments") or {}
            verb = "DELETE" if params["name"] == "delete-customer" else "PUT"
            data = json.dumps(arguments["body"]).encode() if "body" in arguments else None
            url = f"{upstream}/api/v1/customers/{arguments['identifier']}"
            async with app["client"].request(verb, url, data=data, headers=JSON, auth=auth) as response:
                decoded = json.loads(await response.read())
            result = {
                "content": [{"type": "text", "text": json.dumps(decoded)}],
                "structuredContent": decoded,
                "isError": response.status >= 400,
            }
        else:
            result = {}
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        return web.Response(body=body, content_type="application/json", headers=headers)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/v1/{tail:.*}", forward)
    app.router.add_post("/mcp", mcp)
    app.router.add_get("/health", lambda request: web.Response(text="ok"))
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(sys.argv[2]),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
    )
