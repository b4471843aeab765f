"""Arcade peer: the `arcade-customerio-track-api` toolkit served by `arcade-mcp-server` over HTTP.

Run with the peers' venv: bench/.venv-peers/bin/python bench/peer_arcade.py UPSTREAM_URL PORT
The toolkit hard-codes https://track.customer.io in every tool and sends through a module-level
`HTTP_CLIENT` (httpx.AsyncClient, read at call time by `make_request`). Here, and only in this
launcher process, that client is replaced by one whose transport rewrites scheme/host/port to the
fake upstream, keeping the toolkit's own client settings (timeouts, pool limits, retries,
redirects; HTTP/2 is moot on plain http). The rest is `arcade-mcp-server`'s production path
(`python -m arcade_mcp_server --tool-package …`: discover_tools, create_arcade_mcp,
serve_with_force_quit; single uvicorn worker, INFO logs), with one addition it needs to run these
tools at all: arcade-mcp-server refuses, over HTTP, every tool that requires secrets unless the
request went through front-door authentication (a `ResourceServerValidator` that yields a resource
owner). In production that validator checks a JWT against a JWKS; here it accepts one static bearer
token (`BENCH_TOKEN`), which costs Arcade less CPU per call than the real thing would. Arcade's
usage tracking is turned off (ARCADE_USAGE_TRACKING=0): it spawns a subprocess per tool call that
posts to an outside host, which a loopback benchmark must not do (and which would cost far more).
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import httpx

TOOLKIT = "customerio_track_api"
BENCH_TOKEN = "bench-token"


class RedirectTransport(httpx.AsyncBaseTransport):
    """Send every request to the fake upstream: same method, path, query, headers and body."""

    def __init__(self, upstream: str, inner: httpx.AsyncBaseTransport):
        parts = urlsplit(upstream)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self.scheme, host=self.host, port=self.port)
        request.headers["Host"] = f"{self.host}:{self.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def redirect_toolkit(upstream: str) -> int:
    """Swap HTTP_CLIENT in every loaded copy of the toolkit's module; returns how many were patched.

    Arcade's discovery imports the tools a second time as `….tools.__init__` (a distinct module
    object whose functions are the ones served), so this runs after discovery and patches all.
    """
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, connect=10.0),
        limits=httpx.Limits(max_keepalive_connections=20, max_connections=100),
        transport=RedirectTransport(upstream, httpx.AsyncHTTPTransport(retries=3)),
        follow_redirects=True,
    )
    patched = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("arcade_customerio_track_api") and hasattr(module, "HTTP_CLIENT"):
            module.HTTP_CLIENT = client
            patched += 1
    return patched


def static_validator():
    from arcade_mcp_server.resource_server.base import (
        ResourceOwner,
        ResourceServerValidator,
    )

    class StaticTokenValidator(ResourceServerValidator):
        async def validate_token(self, token: str) -> ResourceOwner:
            if token != BENCH_TOKEN:
                from arcade_mcp_server.resource_server.base import InvalidTokenError

                raise InvalidTokenError("unknown token")
            return ResourceOwner(user_id="bench-user", client_id="bench")

    return StaticTokenValidator()


def main() -> None:
    upstream, port = sys.argv[1], int(sys.argv[2])
    # Arcade's usage tracking (on by default) sends a PostHog event per tool call from a freshly
    # spawned Python subprocess: that would leave the loopback and cost far more than the call.
    os.environ["ARCADE_USAGE_TRACKING"] = "0"
    os.environ.setdefault("CUSTOMERIO_SITE_ID", "bench-site")
    os.environ.setdefault("CUSTOMERIO_API_KEY", "bench-key")
    import asyncio

    from arcade_core.discovery import discover_tools
    from arcade_mcp_server.logging_utils import setup_logging
    from arcade_mcp_server.settings import MCPSettings
    from arcade_mcp_server.worker import create_arcade_mcp, serve_with_force_quit

    setup_logging(level="INFO", stdio_mode=False)
    catalog = discover_tools(tool_package=TOOLKIT)
    if not redirect_toolkit(upstream):
        raise SystemExit("peer_arcade: the toolkit's HTTP_CLIENT was not found; cannot redirect it")
    app = create_arcade_mcp(
        catalog=catalog,
        mcp_settings=MCPSettings.from_env(),
        resource_server_validator=static_validator(),
    )
    asyncio.run(serve_with_force_quit(app=app, host="127.0.0.1", port=port, log_level="info"))


if __name__ == "__main__":
    main()
