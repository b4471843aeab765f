"""The layer that serves each OAuth-protected exposure's RFC 9728 metadata document on its port,
without a token (an MCP client reads it after a 401 to find the authorization server), and
starts fetching the authorization servers' keys when the port begins serving. Installed only on
ports where an exposure declares oauth2."""

from __future__ import annotations

from collections.abc import Iterable

from ..http import Answer, Request, Responder, Response
from .resource_server import ResourceServer


def resource_servers(auths: Iterable[object]) -> list[ResourceServer]:
    return [auth for auth in auths if isinstance(auth, ResourceServer)]


def with_resource_metadata(servers: list[ResourceServer], inner: Responder) -> Responder:
    """`inner`, plus `GET /.well-known/oauth-protected-resource<path>` for each of `servers`
    (the first one wins a path two exposures share); `inner` itself when there is none."""
    if not servers:
        return inner
    documents: dict[str, bytes] = {}
    for server in servers:
        documents.setdefault(server.settings.metadata_path, server.metadata_document)
        server.start()

    def serve(request: Request) -> Answer:
        document = documents.get(request.raw_path.partition("?")[0])
        if document is None:
            return inner(request)
        request.route = request.raw_path.partition("?")[0]
        if request.method not in ("GET", "HEAD"):
            return Response(405, headers={"Allow": "GET, HEAD"})
        return Response(200, document, {"Cache-Control": "max-age=300"}, content_type="application/json")

    return serve
