"""`GET /config` on the control port: the effective configuration, with nothing secret in it.

What is shown is chosen field by field (an allow-list, never the document with some fields
removed): capabilities with their files, labels and bind names; consumed namespaces with their
base URI as written (templates unrendered), the `--upstream` override when one applies, the
authentication type and the operations; exposures with their kind, namespace, address, port,
authentication type and operations or tools; the ports served. No bind value, credential or
header value is among those fields. As a second guard, every string is then scrubbed of each
secret the runtime knows (bind values, consumed and exposed credentials) in plain, base64 and
URL-encoded form, and of the user-info part of any URL.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ..engine.capability import Capability, Exposure
from ..templates import Template

MASK = "****"
_USERINFO = re.compile(r"(?<=://)[^/@\s?#]+@")
_MIN_SECRET = 4  # shorter values would mask ordinary text (as engine/secrets.Masker)


def effective_config(servers: Sequence[Any]) -> dict[str, Any]:
    """The configuration the process serves now; `servers` are control.ServerView."""
    capabilities: dict[str, Capability] = {}
    for server in servers:
        for capability, _ in server.entries:
            capabilities.setdefault(capability.file, capability)
    config = {
        "capabilities": [_capability(c) for c in capabilities.values()],
        "ports": [
            {
                "address": server.address,
                "port": server.port,
                "type": server.kind,
                "namespaces": sorted({e.namespace for _, e in server.entries if e.namespace}),
                "state": "started" if server.started else "stopped",
            }
            for server in servers
        ],
    }
    return redact(config, secret_forms(_secrets(capabilities.values())))


def _capability(capability: Capability) -> dict[str, Any]:
    data = capability.document.resolved or {}
    info = data.get("info") if isinstance(data.get("info"), Mapping) else {}
    spec = data.get("capability") if isinstance(data.get("capability"), Mapping) else {}
    consumes = [c for c in spec.get("consumes") or [] if isinstance(c, Mapping)]
    return {
        "file": capability.file,
        "label": info.get("label"),
        "specVersion": data.get("naftiko"),
        "dryRun": capability.dry_run,
        "binds": {name: MASK for name in sorted(capability.binds)},
        "consumes": [_consumed(capability, c) for c in consumes],
        "exposes": [_exposure(e) for e in capability.exposures],
    }


def _consumed(capability: Capability, spec: Mapping[str, Any]) -> dict[str, Any]:
    namespace = str(spec.get("namespace"))
    written = str(spec.get("baseUri", ""))
    entry: dict[str, Any] = {"namespace": namespace, "baseUri": written}
    effective = capability.base_uris.get(namespace)
    if effective is not None and effective != Template.compile(written).render(lambda n: capability.binds.get(n, "")):
        entry["upstream"] = effective  # --upstream (user-info removed below, with every other string)
    entry["authentication"] = _auth_type(spec.get("authentication"))
    entry["operations"] = [
        {"name": t.name, "method": t.operation.method, "path": _path(t.operation.path.parts)}
        for key, t in capability.consumed.items()
        if t.operation is not None and t.namespace == namespace
    ]
    return entry


def _exposure(exposure: Exposure) -> dict[str, Any]:
    spec = exposure.spec
    entry: dict[str, Any] = {"type": exposure.kind}
    if exposure.namespace:
        entry["namespace"] = exposure.namespace
    for field in ("address", "port", "transport"):
        if isinstance(spec.get(field), (str, int)):
            entry[field] = spec[field]
    entry["authentication"] = _auth_type(spec.get("authentication"))
    if exposure.kind == "rest":
        entry["operations"] = [
            {"name": t.name, "method": str(t.spec.get("method", "GET")).upper(), "calls": t.calls}
            for t in exposure.targets
        ]
    elif exposure.kind == "mcp":
        entry["tools"] = [{"name": t.name, "calls": t.calls} for t in exposure.targets]
    elif exposure.kind == "skill":
        entry["skills"] = [str(s.get("name")) for s in spec.get("skills") or [] if isinstance(s, Mapping)]
    elif exposure.kind == "control":
        management = spec.get("management")
        entry["management"] = (
            {k: v for k, v in management.items() if isinstance(v, (bool, int))}
            if isinstance(management, Mapping)
            else {}
        )
    return entry


def _path(parts: Sequence[str]) -> str:
    return "".join("{" + part + "}" if index % 2 else part for index, part in enumerate(parts))


def _auth_type(spec: Any) -> dict[str, str] | None:
    return {"type": str(spec.get("type"))} if isinstance(spec, Mapping) else None


def _secrets(capabilities: Iterable[Capability]) -> set[str]:
    found: set[str] = set()
    for capability in capabilities:
        found.update(capability.binds.values())
        found.update(capability.masker.secrets)
        for exposure in capability.exposures:
            if exposure.auth is not None:
                found.update(exposure.auth.secrets)
                found.add(exposure.auth.expected.decode("utf-8", "replace"))
        for client in capability.clients:
            if client.auth is not None:
                found.update(client.auth.secrets)
    return {s for s in found if isinstance(s, str) and len(s) >= _MIN_SECRET}


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as it could appear: plain, base64 (standard and URL-safe, padded or not),
    percent-encoded; longest first, so a longer form is masked before a part of it."""
    forms: set[str] = set()
    for secret in secrets:
        raw = secret.encode()
        for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            forms.update((encoded, encoded.rstrip("=")))
        forms.update((secret, quote(secret, safe=""), quote(secret)))
    return sorted((f for f in forms if len(f) >= _MIN_SECRET), key=len, reverse=True)


def redact(value: Any, forms: Sequence[str]) -> Any:
    if isinstance(value, str):
        value = _USERINFO.sub(MASK + "@", value)
        for form in forms:
            if form in value:
                value = value.replace(form, MASK)
        return value
    if isinstance(value, Mapping):
        return {redact(str(k), forms): redact(v, forms) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, forms) for v in value]
    return value
