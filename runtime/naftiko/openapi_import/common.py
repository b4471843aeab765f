"""What the importer's modules share: version, ports, limits, hints by HTTP method, the error."""

from __future__ import annotations

import re

NAFTIKO_VERSION = "1.0.0-alpha2"
REST_PORT = 8080
MCP_PORT = 9090
PLACEHOLDER_BASE_URI = "https://api.example.invalid"
"""baseUri written when the document names no server: strict-valid, and `.invalid` never
resolves (RFC 6761), so a forgotten override fails loudly instead of calling a stranger."""

METHODS = ("get", "put", "post", "delete", "patch")
_SKIPPED_METHODS = ("head", "options", "trace")
_PARAMETER_NAME = re.compile(r"^[a-zA-Z0-9\-_*]+$")
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}  # OpenAPI: described elsewhere
_LOCATION_ORDER = {"path": 0, "query": 1, "header": 2, "cookie": 3}
_JSONPATH_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSONPATH_KEYWORDS = {"true", "false", "null", "and", "or", "not", "in", "len", "sorted", "this"}
_HINTS = {
    "GET": {"readOnly": True, "destructive": False, "idempotent": True, "openWorld": True},
    "PUT": {"readOnly": False, "destructive": False, "idempotent": True, "openWorld": True},
    "DELETE": {"readOnly": False, "destructive": True, "idempotent": True, "openWorld": True},
    "POST": {"readOnly": False, "destructive": False, "idempotent": False, "openWorld": True},
    "PATCH": {"readOnly": False, "destructive": False, "idempotent": False, "openWorld": True},
}
TOOL_DESCRIPTION_LIMIT = 300
PARAMETER_DESCRIPTION_LIMIT = 200
_MAX_OUTPUT_DEPTH = 2
_MAX_OUTPUT_FIELDS = 30


class OpenApiImportError(Exception):
    """The document cannot be read or is not an OpenAPI/Swagger document we can import."""
