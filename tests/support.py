"""Shared test helpers: where ../shared is, the seed, a recording fake upstream, free ports."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAFTIKO_SHARED") or REPO.parent / "shared")  # .ci/run sets it when shared/ lies elsewhere
SEED = REPO / "runtime" / "naftiko" / "defaults" / "track-customers.yaml"  # the seed, verbatim


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when that folder is not beside the repository."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (the ../shared reference folder is missing)")
    return path


@dataclass
class Recorded:
    method: str
    path: str  # raw path as sent, percent-encoding kept
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class FakeUpstream:
    """Records every request; answers with `respond` (default: 200 and an empty body)."""

    requests: list[Recorded] = field(default_factory=list)
    respond: Callable[[web.Request, bytes], web.StreamResponse] | None = None
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                request.method, request.raw_path.split("?")[0], list(request.query.items()), dict(request.headers), body
            )
        )
        if self.respond is not None:
            return self.respond(request, body)
        return web.Response(status=200)


def eventually(check: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Polls `check` every 50 ms until it holds or `timeout` seconds passed (hot reload promises
    changes within 2 s, the default); its last answer otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def status(url: str) -> int:
    """The HTTP status of a GET to `url`; 0 while nothing listens there."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Serving:
    """A `PortServer` listening on a free port of 127.0.0.1 (tests never take the file's port)."""

    def __init__(self, port_plan: Any, mcp_routes: Callable[[Any], Any] | None = None):
        from dataclasses import replace

        from naftiko.server import PortServer

        self.server = PortServer(replace(port_plan, address="127.0.0.1", port=0), mcp_routes)

    async def start_server(self) -> None:
        await self.server.listen()

    def make_url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    async def close(self) -> None:
        await self.server.close(timeout=5.0)


def mcp_serving(handlers: Any) -> Serving:
    """Serving for `mcp_routes(...)` handlers alone, at `/mcp`."""
    from naftiko.server import PortPlan

    return Serving(PortPlan("127.0.0.1", 0, "mcp"), lambda _: handlers)


MODERN_MCP = "2026-07-28"  # the stateless protocol: one self-contained request, no session


async def call_tool(mcp_url: str, tool: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """One stateless MCP `tools/call` over HTTP; returns its result (asserting HTTP 200 and a
    JSON-RPC result) and the seconds it took."""
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN_MCP,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN_MCP,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, session.post(mcp_url, json=message, headers=headers) as response:
        text = await response.text()
        elapsed = time.monotonic() - started
        assert response.status == 200, text
    reply = json.loads(text)
    assert "result" in reply, reply
    return reply["result"], elapsed


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost and its key, as two PEM files in
    `folder` (made with `cryptography`; the test is skipped without it)."""
    x509 = pytest.importorskip("cryptography.x509", reason="cryptography is needed to make a test certificate")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
