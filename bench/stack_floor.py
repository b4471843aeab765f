"""Our stack's floor: the same minimal JSON-RPC as aiohttp_proxy.py, served by naftiko.http and
calling the upstream through naftiko's ConnectionPool, on uvloop, with no checks, log or
metrics. What the runtime pays at least on this machine, to tell our own logic from the cost of
the protocols, the event loop and the process's wake-ups.

Run: python bench/stack_floor.py PORT UPSTREAM_URL (MCP at /mcp only; /health answers ok).
"""

from __future__ import annotations

import asyncio
import base64
import sys
import uuid

import orjson
import uvloop

from aiohttp_proxy import TOOLS
from naftiko.consumes.connections import ConnectionPool
from naftiko.consumes.request import OutgoingRequest
from naftiko.http import HttpServer, Request, Response

HEADERS = {"Content-Type": "application/json", "Authorization": "Basic " + base64.b64encode(b"site:key").decode()}


def make_handler(upstream: str):
    pool = ConnectionPool(connect_timeout=5.0, max_body_bytes=64 * 1024 * 1024)

    async def handle(request: Request) -> Response:
        if request.raw_path == "/health":
            return Response(200, b"ok")
        message = orjson.loads(request.body)
        method = message.get("method")
        if "id" not in message:
            return Response(202)
        headers = None
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "stack-floor", "version": "0"},
            }
            headers = {"Mcp-Session-Id": uuid.uuid4().hex}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            arguments = message["params"].get("arguments") or {}
            verb = "DELETE" if message["params"]["name"] == "delete-customer" else "PUT"
            body = orjson.dumps(arguments["body"]) if "body" in arguments else None
            url = f"{upstream}/api/v1/customers/{arguments['identifier']}"
            response = await pool.send(OutgoingRequest(verb, url, headers=dict(HEADERS), body=body), 30.0)
            decoded = orjson.loads(response.body)
            result = {
                "content": [{"type": "text", "text": orjson.dumps(decoded).decode()}],
                "structuredContent": decoded,
                "isError": response.status >= 400,
            }
        else:
            result = {}
        answer = orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
        return Response(200, answer, headers, "application/json")

    return handle


async def main(port: int, upstream: str) -> None:
    server = HttpServer(make_handler(upstream))
    await server.listen("127.0.0.1", port)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2]))
