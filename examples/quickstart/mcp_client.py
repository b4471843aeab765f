"""List the tools of a running `naftiko run --dry-run` and call one, with the official MCP SDK."""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import Client

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9090/mcp"


async def main() -> None:
    async with Client(URL) as client:
        for tool in (await client.list_tools()).tools:
            required = tool.input_schema.get("required", [])
            print(f"{tool.name}: {tool.description} (required: {', '.join(required) or 'none'})")
        result = await client.call_tool(
            "identify-customer", {"identifier": "cust-42", "body": {"email": "ada@example.com"}}
        )
        print(json.dumps(result.structured_content, indent=2))


asyncio.run(main())
