"""JSON-RPC 2.0 pieces shared by the MCP server and its transports."""

from __future__ import annotations

from typing import Any

from .. import json_text

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603


class JsonRpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def error_response(id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": id, "error": error}


def encode(message: Any) -> bytes:
    """One JSON-RPC message as UTF-8; a lone surrogate a client sent becomes '?', not a crash."""
    return json_text.dumps(message)
