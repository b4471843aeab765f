"""FastMCP peer: `FastMCP.from_openapi` on an OpenAPI document, served over streamable HTTP.

Run with the peers' venv: bench/.venv-peers/bin/python bench/peer_fastmcp.py SPEC UPSTREAM_URL PORT
The httpx client's base_url is the fake upstream (basic auth, as the Track API wants); everything
else is FastMCP's defaults (SSE answers, stateful sessions, INFO logs), as a user would run it.
"""

from __future__ import annotations

import json
import sys
import warnings

warnings.simplefilter("ignore")

try:  # FastMCP 4 ships its own fork of httpx; older releases take httpx itself
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the FastMCP release installed
    import httpx
from fastmcp import FastMCP  # noqa: E402 - after the httpx choice above


def main() -> None:
    spec_path, upstream, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    client = httpx.AsyncClient(base_url=upstream, auth=httpx.BasicAuth("bench-site", "bench-key"), timeout=30.0)
    server = FastMCP.from_openapi(openapi_spec=spec, client=client, name="customer-io")
    server.run(transport="http", host="127.0.0.1", port=port, show_banner=False)


if __name__ == "__main__":
    main()
