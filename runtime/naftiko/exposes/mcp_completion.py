"""`completion/complete` (capability `completions`): argument values a client may offer.

The refs are checked against what the files declare (a prompt and its arguments, a resource
template and its URI variables). alpha2 gives neither any list of values (prompt arguments are
free strings; consumed and MCP input parameters have no `enum`), so every completion is empty:
an honest answer that lets clients ask without an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .mcp_jsonrpc import INVALID_PARAMS, JsonRpcError


class Completions:
    def __init__(self, prompts: Mapping[str, Iterable[str]], templates: Mapping[str, Iterable[str]]):
        self.refs = {
            "ref/prompt": ("name", "prompt", {name: frozenset(args) for name, args in prompts.items()}),
            "ref/resource": ("uri", "resource template", {uri: frozenset(names) for uri, names in templates.items()}),
        }

    def complete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        ref, argument = params.get("ref"), params.get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict) or not isinstance(argument.get("name"), str):
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: ref and argument {name, value} are required")
        kind = self.refs.get(ref.get("type"))  # type: ignore[arg-type]
        if kind is None:
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: ref.type must be ref/prompt or ref/resource")
        key, label, table = kind
        arguments = table.get(ref.get(key))  # type: ignore[arg-type]
        if arguments is None:
            raise JsonRpcError(INVALID_PARAMS, f"Unknown {label}: {ref.get(key)}")
        if argument["name"] not in arguments:
            raise JsonRpcError(
                INVALID_PARAMS, f"Invalid params: {label} {ref.get(key)} has no argument {argument['name']}"
            )
        return {"completion": {"values": [], "total": 0, "hasMore": False}}
