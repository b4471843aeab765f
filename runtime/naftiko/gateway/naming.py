"""Names of tools and prompts in the gateway's union `/mcp`: `NS.NAME`, kept valid MCP names.

A valid name is 1–128 characters of `A-Z a-z 0-9 _ - .`. `NS.NAME` is used as it is when it is
valid and no other pair spells it too; otherwise characters outside the set become `_`, the
name is cut to 117 characters and `-` plus 10 hex digits of the SHA-256 of the pair is
appended. The result depends only on the pair (and on whether another pair spells the same
text), so adding or removing another file never renames a tool.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

MAX_LENGTH = 128
VALID_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_INVALID = re.compile(r"[^A-Za-z0-9_.\-]")
_DIGEST = 10


def union_names(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The union name of each (namespace, name) pair."""
    pairs = list(pairs)
    spelled = Counter(f"{ns}.{name}" for ns, name in pairs)
    names = {}
    for ns, name in pairs:
        plain = f"{ns}.{name}"
        names[(ns, name)] = plain if spelled[plain] == 1 and VALID_NAME.fullmatch(plain) else _shortened(ns, name)
    return names


def _shortened(namespace: str, name: str) -> str:
    digest = hashlib.sha256(f"{namespace}\0{name}".encode()).hexdigest()[:_DIGEST]
    cleaned = _INVALID.sub("_", f"{namespace}.{name}")
    return f"{cleaned[: MAX_LENGTH - _DIGEST - 1]}-{digest}"
