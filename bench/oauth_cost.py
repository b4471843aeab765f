"""What OAuth costs: server CPU per MCP `tools/call` with the MCP exposure as an OAuth 2.1
resource server (`authentication: {type: oauth2}`, every call carrying an RS256 bearer token)
and without authentication, in the same run.

Run: python bench/oauth_cost.py [--calls 3000] [--concurrency 16] [--repeats 9]

Starts the fake upstream (bench/fake_upstream.py), an authorization server (tests/oauth_issuer.py:
RFC 8414 metadata and a JWKS, in a thread of this process) and two `naftiko run` of
capabilities/track-customers.yaml: one as it is, one whose MCP exposure declares oauth2. Batches
alternate between the two servers (N sequential then N concurrent `delete-customer` calls each,
per repeat, in turns off-first and on-first: harness.alternate_on_off); CPU is the scheduler's
run time of the server's threads around each batch (bench/harness.py). A
client sends the same token on every call, as MCP clients do, so after the first call each check
is a cache hit; the cost of one full verification (a token seen for the first time) is measured
apart, in this process, with the runtime's own verifier.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent / "tests"))
from harness import (  # noqa: E402
    Processes,
    alternate_on_off,
    cost_parser,
    free_port,
    http_answers,
    pin_servers,
    wait_until,
)
from oauth_issuer import Issuer  # noqa: E402
from run_all import SECRETS, TRACK_CAPABILITY, mcp_load, naftiko_argv, track_tools  # noqa: E402

SCOPE = "customers:write"


def protected_copy(tmp: Path, issuer: str, mcp_port: int) -> Path:
    document = yaml.safe_load(TRACK_CAPABILITY.read_text(encoding="utf-8"))
    for exposure in document["capability"]["exposes"]:
        if exposure["type"] == "mcp":
            exposure["authentication"] = {
                "type": "oauth2",
                "authorizationServerUri": issuer,
                "resource": f"http://127.0.0.1:{mcp_port}/mcp",
                "scopes": [SCOPE],
            }
    path = tmp / "track-customers-oauth.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def verification_us(issuer: Issuer, audience: str, kid: str, rounds: int = 2000) -> float:
    """µs of CPU for one full check of a token never seen before (signature, claims, scope)."""
    from naftiko.auth.authorization_server import AuthorizationServer
    from naftiko.auth.oauth_settings import OAuthSettings
    from naftiko.auth.tokens import granted_scopes, verify_jwt

    settings = OAuthSettings(issuer.url, audience, audience, (SCOPE,))
    server = AuthorizationServer(settings)
    tokens = [issuer.sign(kid, aud=audience, scope=SCOPE) for _ in range(rounds)]

    async def check_all() -> float:
        await server.ready()
        started = time.process_time()
        for token in tokens:
            granted_scopes(await verify_jwt(token, server, settings))
        return time.process_time() - started

    return asyncio.run(check_all()) / rounds * 1e6


def cached_check_us(issuer: Issuer, audience: str, rounds: int = 100_000) -> float:
    """µs of CPU for the check of a token already verified (what every call after the first pays)."""
    from multidict import CIMultiDict, CIMultiDictProxy

    from naftiko.auth.oauth_settings import OAuthSettings
    from naftiko.auth.resource_server import ResourceServer
    from naftiko.http import Request

    token = issuer.sign(aud=audience, scope=SCOPE)
    checker = ResourceServer(OAuthSettings(issuer.url, audience, audience, (SCOPE,)))
    checker.cache.keep(token, time.time() + 3600)
    request = Request("POST", "/mcp", CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {token}"})), b"")
    started = time.process_time()
    for _ in range(rounds):
        assert checker.check(request) is None
    return (time.process_time() - started) / rounds * 1e6


def main() -> int:
    args = cost_parser(__doc__.split("\n\n")[0]).parse_args()
    server_cpus = pin_servers(args.no_pin)
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-oauth-cost-"))
    env = {**os.environ, **SECRETS, "PYTHONUNBUFFERED": "1"}
    issuer = Issuer().start()
    try:
        with Processes(tmp) as procs:
            upstream_port = free_port()
            upstream = procs.start(
                "upstream", [sys.executable, str(BENCH / "fake_upstream.py"), str(upstream_port)], env=env
            )
            upstream_url = f"http://127.0.0.1:{upstream_port}"
            wait_until(http_answers(f"{upstream_url}/__bench/stats"), 30, upstream)
            ports = {"off": free_port(), "on": free_port()}
            files = {"off": TRACK_CAPABILITY, "on": protected_copy(tmp, issuer.url, ports["on"])}
            servers, urls, headers = {}, {}, {}
            for name, file in files.items():
                argv = naftiko_argv() + [
                    "run", "--upstream", f"track-customers={upstream_url}/api/v1",
                    "--port", f"track-customers-mcp={ports[name]}", "--port", f"track-customers-rest={free_port()}",
                    str(file),
                ]  # fmt: skip
                servers[name] = procs.start(f"naftiko-{name}", argv, env=env, cpus=server_cpus)
                wait_until(http_answers(f"http://127.0.0.1:{ports[name]}/health"), 60, servers[name])
                urls[name] = f"http://127.0.0.1:{ports[name]}/mcp"
            token = issuer.sign(aud=urls["on"], scope=SCOPE, exp=int(time.time()) + 3600)
            headers = {"off": {}, "on": {"Authorization": f"Bearer {token}"}}
            tool, args_for = track_tools()["delete"]
            for name in files:
                asyncio.run(mcp_load(urls[name], headers[name], tool, args_for, args.warmup, 4, 60))

            def batch(name: str, concurrency: int) -> tuple[Any, dict[str, float]]:
                return asyncio.run(
                    mcp_load(
                        urls[name], headers[name], tool, args_for, args.calls, concurrency, 120,
                        (servers[name], upstream),
                    )
                )  # fmt: skip

            costs = alternate_on_off(batch, args.concurrency, args.repeats)
        rs256 = verification_us(issuer, urls["on"], "rsa-1")
        es256 = verification_us(issuer, urls["on"], "ec-1")
        cached = cached_check_us(issuer, urls["on"])
    finally:
        issuer.close()
    print(f"oauth cost, server CPU per MCP tools/call ({tool}, {args.calls} calls per batch, {args.repeats} pairs):")
    print(costs.line("seq", "sequential", "oauth2"))
    print(costs.line("conc", f"concurrent (c{args.concurrency})", "oauth2"))
    print(
        f"  in this process: a known token's check {cached:.1f} µs; a new token's (cache miss) RS256 {rs256:.0f} µs, ES256 {es256:.0f} µs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
