"""securitySchemes → the capability's authentication block and the binds it needs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .common import _PARAMETER_NAME
from .source import _Operation, _Resolver

# -- authentication -----------------------------------------------------------------------------


def _schemes(spec: dict[str, Any], resolve: _Resolver) -> dict[str, dict[str, Any]]:
    if "swagger" in spec:
        raw = spec.get("securityDefinitions") or {}
    else:
        raw = (spec.get("components") or {}).get("securitySchemes") or {}
    return {str(k): resolve(v) for k, v in raw.items() if isinstance(resolve(v), dict)} if isinstance(raw, dict) else {}


def _authentication(
    spec, ops: list[_Operation], prefix: str, resolve, warn
) -> tuple[dict | None, list[str], list[dict]]:
    schemes = _schemes(spec, resolve)
    if not schemes:
        return None, [], []
    default = spec.get("security") if isinstance(spec.get("security"), list) else None
    chosen: Counter[str] = Counter()
    for op in ops:
        requirements = op.security if op.security is not None else default
        for requirement in requirements or []:
            if isinstance(requirement, dict) and requirement:
                names = [n for n in requirement if n in schemes]
                if names:
                    chosen[names[0]] += 1
                break
    if not chosen:
        if default is None and all(op.security is None for op in ops):
            name = next(iter(schemes))
            warn(f"no operation requires a security scheme: {name!r} is applied to every request")
        else:
            return None, [], []
    else:
        name = chosen.most_common(1)[0][0]
        if len(chosen) > 1:
            others = ", ".join(n for n in chosen if n != name)
            warn(f"operations use several security schemes ({others} besides {name!r}): only {name!r} is applied")
    scheme = schemes[name]
    kind = str(scheme.get("type", "")).lower()

    def var(suffix: str) -> str:
        return f"{prefix}_{suffix}"

    def ref(suffix: str) -> str:
        return "{{env." + var(suffix) + "}}"

    if kind == "basic" or (kind == "http" and str(scheme.get("scheme", "")).lower() == "basic"):
        return {"type": "basic", "username": ref("USER"), "password": ref("PASS")}, [var("USER"), var("PASS")], []
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        return {"type": "bearer", "token": ref("TOKEN")}, [var("TOKEN")], []
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "digest":
        return {"type": "digest", "username": ref("USER"), "password": ref("PASS")}, [var("USER"), var("PASS")], []
    if kind == "apikey":
        key, where = str(scheme.get("name") or "X-API-Key"), str(scheme.get("in") or "header")
        if where == "cookie":
            if not _PARAMETER_NAME.match(key):
                warn(f"API key cookie {key!r} has a name outside [A-Za-z0-9-_*]: it is not sent")
                return None, [], []
            # apikey placement `cookie` is not in the official schema: a consume-level cookie is.
            return None, [var("API_KEY")], [{"name": key, "in": "cookie", "value": ref("API_KEY")}]
        return (
            {
                "type": "apikey",
                "key": key,
                "value": ref("API_KEY"),
                "placement": "query" if where == "query" else "header",
            },
            [var("API_KEY")],
            [],
        )
    if kind == "oauth2":
        flows = scheme.get("flows") if isinstance(scheme.get("flows"), dict) else {}
        client = flows.get("clientCredentials") if isinstance(flows.get("clientCredentials"), dict) else None
        if client is None and scheme.get("flow") == "application":  # Swagger 2.0
            client = scheme
        if client is not None and client.get("tokenUrl"):
            auth: dict[str, Any] = {
                "type": "oauth2",
                "tokenEndpoint": str(client["tokenUrl"]),
                "clientId": ref("CLIENT_ID"),
                "clientSecret": ref("CLIENT_SECRET"),
            }
            scopes = list((client.get("scopes") or {}).keys()) if isinstance(client.get("scopes"), dict) else []
            if scopes:
                auth["scopes"] = scopes
            warn(
                "OAuth2 client credentials (clientId, clientSecret, tokenEndpoint) are outside the official alpha2 schema: "
                "the file runs, but `naftiko validate --strict` reports them"
            )
            return auth, [var("CLIENT_ID"), var("CLIENT_SECRET")], []
        warn(
            f"security scheme {name!r} ({kind} without client credentials) needs an interactive login: "
            f"a bearer token is read from {var('TOKEN')} instead"
        )
        return {"type": "bearer", "token": ref("TOKEN")}, [var("TOKEN")], []
    if kind == "openidconnect":
        warn(f"security scheme {name!r} (OpenID Connect) is imported as a bearer token read from {var('TOKEN')}")
        return {"type": "bearer", "token": ref("TOKEN")}, [var("TOKEN")], []
    warn(f"security scheme {name!r} ({kind}) is not supported: requests are sent without credentials")
    return None, [], []
