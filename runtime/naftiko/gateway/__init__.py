"""Gateway mode (`naftiko run --gateway`): a folder of capabilities from many providers served as
one gateway, each exposure under its own namespace so that files written for the same ports
(nearly all put REST on 8080 and MCP on 9090) do not collide.

- REST: exposure NS answers under the path prefix `/NS` (members.py, port.py), with its own
  OpenAPI document at `/NS/openapi.json` and a merged one at `/openapi.json` (openapi.py).
- MCP: `/mcp/NS` is NS's own MCP server; `/mcp` is a view over all of them whose tools are
  named `NS.TOOL` (union.py, naming.py).
- Loading is per file and a broken file is reported and left out (load.py); reloads re-read
  only the files whose stamp changed and rebuild only their routers and servers (reload.py).
"""
