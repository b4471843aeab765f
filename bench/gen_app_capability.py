"""Generate a large Naftiko capability from Customer.io's App API OpenAPI document (115 operations).

Run: python bench/gen_app_capability.py OUT.yaml [--spec PATH]
Used by run_all.py for the start-up measurement when capabilities/ holds no large App
capability. One consumes namespace `app` with every operation, one REST exposure `app-rest`
(one resource per path) and one MCP exposure `app-mcp` (one tool per operation), in the style of
the corpus files (api-evangelist__customer-io): path parameters are implicit, query parameters
and the JSON body are declared as inputs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

SPEC = Path(__file__).resolve().parents[2] / "shared" / "upstreams" / "customer-io" / "customer-io-app-api-openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")
TYPES = {"string", "integer", "number", "boolean", "object", "array"}


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
        seen += 1
    return node


def _kebab(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()


def _param_type(spec: dict[str, Any], param: dict[str, Any]) -> str:
    schema = _resolve(spec, param.get("schema") or {})
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return kind if kind in TYPES else "string"


def _name(text: str) -> str:
    """A parameter name the schema's identifier pattern takes."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def build(spec: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, dict[str, Any]] = {}
    rest_resources: dict[str, dict[str, Any]] = {}
    tools: list[dict[str, Any]] = []
    used: set[str] = set()
    for path, item in spec["paths"].items():
        shared = [_resolve(spec, p) for p in item.get("parameters", [])]
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            base = _kebab(operation.get("operationId") or f"{method}-{path}") or method
            name, n = base, 2
            while name in used:
                name, n = f"{base}-{n}", n + 1
            used.add(name)
            op_name = name.replace("-", "")
            summary = (operation.get("summary") or operation.get("description") or name).strip().splitlines()[0][:200]
            params = shared + [_resolve(spec, p) for p in operation.get("parameters", [])]
            inputs = [
                {
                    "name": _name(p["name"]),
                    "in": "query",
                    "type": _param_type(spec, p),
                    "description": (p.get("description") or p["name"]).strip()[:200],
                }
                for p in params
                if isinstance(p, dict) and p.get("in") == "query" and p.get("name")
            ]
            if "requestBody" in operation:
                inputs.append(
                    {
                        "name": "body",
                        "in": "body",
                        "type": "object",
                        "description": "Request body (JSON).",
                        "required": False,
                    }
                )
            resource_name = _kebab(path) or "root"
            consumed: dict[str, Any] = {
                "name": op_name,
                "method": method.upper(),
                "description": summary,
                "outputRawFormat": "json",
                "outputParameters": [{"name": "result", "type": "object", "value": "$."}],
            }
            if inputs:
                consumed["inputParameters"] = inputs
            resources.setdefault(path, {"name": resource_name, "path": path, "operations": []})["operations"].append(
                consumed
            )
            with_ = {i["name"]: f"rest.{i['name']}" for i in inputs}
            rest_op: dict[str, Any] = {
                "method": method.upper(),
                "name": op_name,
                "description": summary,
                "call": f"app.{op_name}",
            }
            if with_:
                rest_op["with"] = with_
            rest_op["outputParameters"] = [{"type": "object", "mapping": "$."}]
            rest_resources.setdefault(
                path,
                {
                    "path": path,
                    "name": resource_name,
                    "description": f"REST surface for {path}.",
                    "operations": [],
                },
            )["operations"].append(rest_op)
            tool: dict[str, Any] = {
                "name": name,
                "description": summary,
                "hints": {
                    "readOnly": method == "get",
                    "destructive": method == "delete",
                    "idempotent": method in ("get", "put", "delete"),
                },
                "call": f"app.{op_name}",
            }
            if inputs:
                tool["with"] = {i["name"]: f"tools.{i['name']}" for i in inputs}
            tool["outputParameters"] = [{"type": "object", "mapping": "$."}]
            tools.append(tool)
    count = len(tools)
    return {
        "naftiko": "1.0.0-alpha2",
        "info": {
            "label": "Customer.io App API (generated for the start-up benchmark)",
            "description": f"Customer.io App API, {count} operations, generated by bench/gen_app_capability.py from the App OpenAPI document.",
            "tags": ["Customer Io", "App"],
        },
        "capability": {
            "consumes": [
                {
                    "type": "http",
                    "namespace": "app",
                    "baseUri": "https://api.customer.io",
                    "description": "Customer.io App API.",
                    "resources": list(resources.values()),
                    "authentication": {
                        "type": "bearer",
                        "token": "{{env.CUSTOMER_IO_APP_TOKEN}}",
                    },
                }
            ],
            "exposes": [
                {
                    "type": "rest",
                    "namespace": "app-rest",
                    "port": 8081,
                    "description": "REST adapter for the App API.",
                    "resources": list(rest_resources.values()),
                },
                {
                    "type": "mcp",
                    "namespace": "app-mcp",
                    "port": 9091,
                    "transport": "http",
                    "description": "MCP adapter for the App API.",
                    "tools": tools,
                },
            ],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--spec", default=str(SPEC))
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    document = build(spec)
    Path(args.out).write_text(
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120),
        encoding="utf-8",
    )
    print(
        f"{args.out}: {len(document['capability']['exposes'][1]['tools'])} operations",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
