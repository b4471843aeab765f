"""OpenAPI documents of a gateway REST port: each exposure's own at `/NS/openapi.json` (paths as
the file declares them, `servers[0].url` ending in `/NS`, the `root_path` convention of
uvicorn/FastAPI and Swagger UI) and one merged at `/openapi.json` (paths prefixed).

Documents are built when first asked for, not at start: a gateway of two thousand files would
otherwise spend its start-up and memory on documents few clients read."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from urllib.parse import quote

from ..exposes.openapi import build_openapi
from ..exposes.rest import Route
from .members import Member

CACHED_DOCUMENTS = 64


def prefix(namespace: str) -> str:
    return "/" + quote(namespace, safe="")


def prefixed_routes(members: Iterable[Member]) -> list[Route]:
    return [replace(route, path=prefix(m.namespace) + route.path) for m in members for route in m.routes]


def member_url(base: str, namespace: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(prefix(namespace)) else base + prefix(namespace)


class Documents:
    """Built documents by (namespace or "" for the merged one, server URL), the most recent kept."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def get(self, key: tuple[str, str], build: Callable[[], dict]) -> bytes:
        document = self._cache.get(key)
        if document is None:
            document = json.dumps(build(), ensure_ascii=False).encode()
            self._cache[key] = document
            if len(self._cache) > CACHED_DOCUMENTS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return document

    def member(self, member: Member, base: str) -> bytes:
        url = member_url(base, member.namespace)
        return self.get((member.namespace, url), lambda: build_openapi(member.routes, url))

    def merged(self, members: Iterable[Member], base: str) -> bytes:
        return self.get(("", base), lambda: build_openapi(prefixed_routes(members), base))
