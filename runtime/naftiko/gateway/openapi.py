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
CACHED_MERGED = 4


def prefix(namespace: str) -> str:
    return "/" + quote(namespace, safe="")


def prefixed_routes(members: Iterable[Member]) -> list[Route]:
    return [replace(route, path=prefix(m.namespace) + route.path) for m in members for route in m.routes]


def member_url(base: str, namespace: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(prefix(namespace)) else base + prefix(namespace)


class Documents:
    """Built documents by server URL, the most recently used kept: CACHED_DOCUMENTS of single
    exposures, CACHED_MERGED merged ones (those run to megabytes for thousands of files)."""

    def __init__(self) -> None:
        self._members: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._merged: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    @staticmethod
    def _get(
        cache: OrderedDict[tuple[str, str], bytes], size: int, key: tuple[str, str], build: Callable[[], dict]
    ) -> bytes:
        document = cache.get(key)
        if document is None:
            document = json.dumps(build(), ensure_ascii=False).encode()
            cache[key] = document
            if len(cache) > size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return document

    def member(self, member: Member, base: str) -> bytes:
        url = member_url(base, member.namespace)
        return self._get(
            self._members, CACHED_DOCUMENTS, (member.namespace, url), lambda: build_openapi(member.routes, url)
        )

    def merged(self, members: Iterable[Member], base: str) -> bytes:
        return self._get(self._merged, CACHED_MERGED, ("", base), lambda: build_openapi(prefixed_routes(members), base))
