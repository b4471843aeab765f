"""The upstream client against hostile or unusual networks, through the real engine (REST and
MCP), with real sockets on 127.0.0.1: an upstream that never ends its head, one that drops a
POST on a kept-alive connection, forward proxies (absolute-form and CONNECT) written here, and
TLS with a private CA and client certificates made here with `cryptography` (DESIGN §7).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from naftiko.consumes.client import ClientSettings
from naftiko.consumes.tls import UpstreamTls
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.exposes.mcp import McpServer
from naftiko.exposes.mcp_http import mcp_routes
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import SEED, Serving, call_tool

NAMESPACE = "track-customers"
CREDENTIALS = {"CUSTOMER_IO_USER": "site-id-123", "CUSTOMER_IO_PASS": "api-key-SECRET-456"}
FAST = ClientSettings(connect_timeout=2.0, total_timeout=3.0, retries=2, backoff=0.02)
PROXY_PASSWORD = "pr0xy-pa$$word-7781"  # must never reach an answer or a log record
MiB = 1024 * 1024

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter


# --- raw HTTP/1.1 on streams -------------------------------------------------------------------


@dataclass
class Message:
    line: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def method(self) -> str:
        return self.line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.line.split(" ")[1]


async def read_message(reader: Reader) -> Message | None:
    """One request or answer with a Content-Length body; None at the end of the stream."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length") or 0))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
        return None
    return Message(lines[0], headers, body)


def ok(body: bytes = b'{"ok":true}') -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


# Serve: (upstream, request, its index on its connection, writer) -> False to close the connection
Serve = Callable[["Upstream", Message, int, Writer], Awaitable[bool]]


async def keep_alive(upstream: Upstream, request: Message, index: int, writer: Writer) -> bool:
    writer.write(ok())
    await writer.drain()
    return True


class Upstream:
    """A keep-alive HTTP/1.1 upstream on 127.0.0.1 (TLS when given a context) that records
    every request it reads, with the client certificate's subject when there is one."""

    def __init__(self, serve: Serve = keep_alive, ssl_context: ssl.SSLContext | None = None):
        self.serve = serve
        self.ssl_context = ssl_context
        self.requests: list[Message] = []
        self.peers: list[str | None] = []  # client certificate common name, per request
        self.connections = 0
        self.tasks: set[asyncio.Task] = set()
        self.url = ""

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=self.ssl_context)
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    def paths(self) -> list[str]:
        return [f"{r.method} {r.target}" for r in self.requests]

    async def _connection(self, reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        certificate = writer.get_extra_info("peercert")
        subject = dict(pair[0] for pair in certificate["subject"]).get("commonName") if certificate else None
        try:
            index = 0
            while (request := await read_message(reader)) is not None:
                self.requests.append(request)
                self.peers.append(subject)
                index += 1
                if not await self.serve(self, request, index, writer):
                    break
        except (ConnectionError, asyncio.CancelledError, ssl.SSLError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()


# --- a forward proxy -----------------------------------------------------------------------------


class RecordingProxy:
    """An HTTP forward proxy: absolute-form requests are forwarded one by one (origin-form, to
    a new upstream connection each), CONNECT opens a byte tunnel. Records every request line
    and its headers; `refuse` answers CONNECT with that status instead."""

    def __init__(self, refuse: int | None = None):
        self.refuse = refuse
        self.requests: list[Message] = []
        self.forwarded: list[Message] = []  # what the upstream got from the proxy
        self.tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> RecordingProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    async def _client(self, reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            while (request := await read_message(reader)) is not None:
                self.requests.append(request)
                if request.method == "CONNECT":
                    await self._tunnel(request, reader, writer)
                    return
                await self._forward(request, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()

    async def _tunnel(self, request: Message, reader: Reader, writer: Writer) -> None:
        if self.refuse is not None:
            writer.write(
                b'HTTP/1.1 %d Refused\r\nProxy-Authenticate: Basic realm="p"\r\nContent-Length: 0\r\n\r\n' % self.refuse
            )
            await writer.drain()
            return
        host, _, port = request.target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _forward(self, request: Message, writer: Writer) -> None:
        parts = urlsplit(request.target)
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        headers = {k: v for k, v in request.headers.items() if k not in ("proxy-authorization", "connection")}
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        forwarded = Message(f"{request.method} {target} HTTP/1.1", headers, request.body)
        self.forwarded.append(forwarded)
        head = [forwarded.line, *(f"{k}: {v}" for k, v in headers.items()), "Connection: close", "", ""]
        up_writer.write("\r\n".join(head).encode("latin-1") + request.body)
        answer = await read_message(up_reader)
        up_writer.close()
        assert answer is not None
        lines = [answer.line, *(f"{k}: {v}" for k, v in answer.headers.items() if k != "connection"), "", ""]
        writer.write("\r\n".join(lines).encode("latin-1") + answer.body)
        await writer.drain()


async def pipe(source: Reader, sink: Writer) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        sink.close()


# --- certificates ----------------------------------------------------------------------------------


@dataclass
class Pki:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate, all from it."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed none of them

    def server_context(self, require_client_certificate: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_certificate:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    x509 = pytest.importorskip("cryptography.x509", reason="cryptography makes the test certificates")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key: Any, file: str) -> Path:
        path = folder / file
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return path

    def write_cert(cert: Any, file: str) -> Path:
        path = folder / file
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def authority(common: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(name(common))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )  # keyCertSign, cRLSign
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(ca_key: Any, ca_cert: Any, common: str, usage: Any, san: list[Any] | None) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    ca_key, ca_cert = authority("naftiko test private CA")
    server_key, server_cert = leaf(
        ca_key,
        ca_cert,
        "127.0.0.1",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_key, client_cert = leaf(ca_key, ca_cert, "naftiko-test-client", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    _, other_cert = authority("some other CA")
    return Pki(
        ca=write_cert(ca_cert, "ca.pem"),
        server_cert=write_cert(server_cert, "server.pem"),
        server_key=write_key(server_key, "server-key.pem"),
        client_cert=write_cert(client_cert, "client.pem"),
        client_key=write_key(client_key, "client-key.pem"),
        other_ca=write_cert(other_cert, "other-ca.pem"),
    )


# --- the runtime under test --------------------------------------------------------------------


@dataclass
class Stack:
    rest: str
    mcp: str


@asynccontextmanager
async def serving(
    upstream_url: str, environ: dict[str, str] | None = None, tls: UpstreamTls | None = None
) -> AsyncIterator[Stack]:
    capability = compile_capability(
        load_document(SEED),
        CompileOptions(
            upstreams={NAMESPACE: upstream_url + "/api/v1"},
            environ={**CREDENTIALS, **(environ or {})},
            settings=FAST,
            upstream_tls={NAMESPACE: tls} if tls else {},
        ),
    )
    servers = {}
    for port_plan in plan([capability]):
        if port_plan.kind in ("rest", "mcp"):
            server = Serving(port_plan, lambda p: mcp_routes(McpServer(list(p.entries)), None))
            await server.start_server()
            servers[port_plan.kind] = server
    try:
        yield Stack(servers["rest"].make_url(""), servers["mcp"].make_url("/mcp"))
    finally:
        for server in servers.values():
            await server.close()
        await capability.close()


ROUTES = {  # REST route and MCP tool of the seed, by upstream method
    "DELETE": ("DELETE", "/v1/customers/c1", "delete-customer", {"identifier": "c1"}),
    "POST": ("POST", "/v1/customers/c1/suppress", "suppress-customer", {"identifier": "c1"}),
}


async def rest_call(stack: Stack, method: str) -> tuple[int, Any, float]:
    verb, path, _, _ = ROUTES[method]
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, session.request(verb, stack.rest + path) as response:
        raw = await response.read()
        return response.status, (json.loads(raw) if raw else None), time.monotonic() - started


async def mcp_call(stack: Stack, method: str) -> dict[str, Any]:
    _, _, tool, arguments = ROUTES[method]
    return (await call_tool(stack.mcp, tool, arguments))[0]


def unreachable(status: int, body: Any) -> str:
    """The detail of a 502 upstream-unreachable problem."""
    assert status == 502, body
    assert body["type"].endswith("/upstream-unreachable"), body
    return body["detail"]


def tool_failure(result: dict[str, Any]) -> str:
    assert result["isError"] is True, result
    error = json.loads(result["content"][0]["text"])
    assert error["error"] == "upstream_unreachable", error
    return error["message"]


# --- the answer's head is bounded ---------------------------------------------------------------


def rss_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field_name} in /proc/self/status")


@contextmanager
def peak_rss_growth() -> Iterator[Callable[[], int]]:
    """Bytes the peak resident set grew by inside the block: VmHWM after resetting it
    (/proc/self/clear_refs), else VmRSS sampled every millisecond by a thread."""
    before = rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # VmHWM := VmRSS
        sampler = None
    except OSError:
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.001):
                peak[0] = max(peak[0], rss_kib("VmRSS"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    result = [0]
    yield lambda: result[0]
    if sampler is None:
        result[0] = (rss_kib("VmHWM") - before) * 1024
    else:
        done.set()
        sampler.join()
        result[0] = (peak[0] - before) * 1024


async def test_an_endless_header_line_is_502_quickly_and_memory_stays_bounded() -> None:
    streamed = [0]

    async def endless_header(upstream: Upstream, request: Message, index: int, writer: Writer) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Endless: ")
        piece = b"a" * 65536
        while streamed[0] < 32 * MiB:  # 32 MB of one header line, never a CRLF
            writer.write(piece)
            streamed[0] += len(piece)
            await writer.drain()
        return False

    async with Upstream(endless_header) as upstream, serving(upstream.url) as stack:
        await rest_call(stack, "DELETE")  # warm: buffers, pools and code paths exist before measuring
        for method in ("DELETE", "POST"):
            streamed[0] = 0
            with peak_rss_growth() as growth:
                status, body, elapsed = await rest_call(stack, method)
            assert "the answer's head exceeds 65,536 bytes" in unreachable(status, body)
            assert elapsed < 1.0 and streamed[0] < 16 * MiB, (elapsed, streamed[0])
            assert growth() < 10 * MiB, f"the process grew by {growth() / MiB:.1f} MiB"
        streamed[0] = 0
        with peak_rss_growth() as growth:
            assert "head exceeds 65,536 bytes" in tool_failure(await mcp_call(stack, "DELETE"))
        assert growth() < 10 * MiB, f"the process grew by {growth() / MiB:.1f} MiB"
    assert all(r.method in ("DELETE", "POST") for r in upstream.requests)
    assert len(upstream.requests) == 4  # a broken answer is never resent, even for DELETE


# --- at most once -----------------------------------------------------------------------------------


async def drop_second_request(upstream: Upstream, request: Message, index: int, writer: Writer) -> bool:
    """Answers a connection's first request and keeps it open; reads the second and closes
    without answering, as a server whose keep-alive timeout fires just then."""
    if index == 1:
        writer.write(ok())
        await writer.drain()
        return True
    writer.transport.abort()
    return False


async def test_a_post_on_a_reused_connection_closed_unanswered_reaches_the_upstream_once() -> None:
    async with Upstream(drop_second_request) as upstream, serving(upstream.url) as stack:
        status, body, _ = await rest_call(stack, "POST")
        assert status == 200, body
        status, body, _ = await rest_call(stack, "POST")  # on the kept-alive connection: dropped
        assert "POST is not sent twice" in unreachable(status, body)
        assert upstream.paths() == ["POST /api/v1/customers/c1/suppress"] * 2 and upstream.connections == 1

        upstream.requests.clear()
        assert (await mcp_call(stack, "POST"))["isError"] is False  # a fresh connection
        assert "POST is not sent twice" in tool_failure(await mcp_call(stack, "POST"))
        assert len(upstream.requests) == 2 and upstream.connections == 2


async def test_a_delete_on_a_reused_connection_closed_unanswered_is_resent_once() -> None:
    async with Upstream(drop_second_request) as upstream, serving(upstream.url) as stack:
        assert (await rest_call(stack, "DELETE"))[0] == 200
        assert (await rest_call(stack, "DELETE"))[0] == 200  # dropped, then resent on a fresh connection
    assert upstream.paths() == ["DELETE /api/v1/customers/c1"] * 3 and upstream.connections == 2


# --- proxies ------------------------------------------------------------------------------------------


def no_password_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert (
            PROXY_PASSWORD not in text
            and base64.b64encode(f"proxy-user:{PROXY_PASSWORD}".encode()).decode() not in text
        )


async def test_http_upstream_through_an_http_proxy_with_credentials(caplog: pytest.LogCaptureFixture) -> None:
    async with Upstream() as upstream, RecordingProxy() as proxy:
        port = upstream.url.rsplit(":", 1)[1]
        environ = {
            "http_proxy": proxy.url(f"proxy-user:{PROXY_PASSWORD.replace('$', '%24')}"),
            "HTTP_PROXY": "http://127.0.0.1:9",
        }
        async with serving(upstream.url, environ) as stack:
            assert (await rest_call(stack, "DELETE"))[0] == 200
            assert (await mcp_call(stack, "POST"))["isError"] is False
    assert [r.line for r in proxy.requests] == [
        f"DELETE http://127.0.0.1:{port}/api/v1/customers/c1 HTTP/1.1",  # absolute-form
        f"POST http://127.0.0.1:{port}/api/v1/customers/c1/suppress HTTP/1.1",
    ]
    expected = "Basic " + base64.b64encode(f"proxy-user:{PROXY_PASSWORD}".encode()).decode()
    assert all(r.headers.get("proxy-authorization") == expected for r in proxy.requests)
    assert all(r.headers["host"] == f"127.0.0.1:{port}" for r in proxy.requests)
    assert all(
        r.headers["authorization"].startswith("Basic ") for r in upstream.requests
    )  # the upstream's own credentials
    assert upstream.paths() == ["DELETE /api/v1/customers/c1", "POST /api/v1/customers/c1/suppress"]
    no_password_in_logs(caplog)


async def test_https_upstream_through_a_connect_tunnel(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    async with Upstream(ssl_context=pki.server_context()) as upstream, RecordingProxy() as proxy:
        port = upstream.url.rsplit(":", 1)[1]
        environ = {
            "HTTPS_PROXY": proxy.url(f"proxy-user:{PROXY_PASSWORD.replace('$', '%24')}"),
            "HTTP_PROXY": "http://127.0.0.1:9",
        }
        async with serving(upstream.url, environ, UpstreamTls(cafile=str(pki.ca))) as stack:
            for _ in range(2):
                assert (await rest_call(stack, "DELETE"))[0] == 200
            assert (await mcp_call(stack, "POST"))["isError"] is False
    assert [r.line for r in proxy.requests] == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]  # one tunnel, kept alive
    connect = proxy.requests[0]
    assert connect.headers["host"] == f"127.0.0.1:{port}"
    assert (
        connect.headers["proxy-authorization"]
        == "Basic " + base64.b64encode(f"proxy-user:{PROXY_PASSWORD}".encode()).decode()
    )
    assert len(upstream.requests) == 3 and upstream.connections == 1
    assert all("proxy-authorization" not in r.headers for r in upstream.requests)  # inside the tunnel: none
    no_password_in_logs(caplog)


async def test_no_proxy_reaches_the_upstream_directly(pki: Pki) -> None:
    async with Upstream() as plain, Upstream(ssl_context=pki.server_context()) as secure, RecordingProxy() as proxy:
        for upstream, no_proxy in (
            (plain, "example.com, 127.0.0.1"),
            (secure, f".example.org,127.0.0.1:{secure.url.rsplit(':', 1)[1]}"),
            (plain, "*"),
        ):
            environ = {"HTTP_PROXY": proxy.url(), "HTTPS_PROXY": proxy.url(), "NO_PROXY": no_proxy}
            async with serving(upstream.url, environ, UpstreamTls(cafile=str(pki.ca))) as stack:
                assert (await rest_call(stack, "DELETE"))[0] == 200
        environ = {"HTTP_PROXY": proxy.url(), "NO_PROXY": "127.0.0.2,localhost,127.0.0.1:1"}  # none of them matches
        async with serving(plain.url, environ) as stack:
            assert (await rest_call(stack, "DELETE"))[0] == 200
    assert len(plain.requests) == 3 and len(secure.requests) == 1
    assert len(proxy.requests) == 1 and proxy.requests[0].line.startswith("DELETE http://127.0.0.1:")


async def test_a_proxy_refusing_connect_is_502_naming_its_status(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    async with Upstream(ssl_context=pki.server_context()) as upstream, RecordingProxy(refuse=407) as proxy:
        environ = {"HTTPS_PROXY": proxy.url(f"proxy-user:{PROXY_PASSWORD.replace('$', '%24')}")}
        async with serving(upstream.url, environ, UpstreamTls(cafile=str(pki.ca))) as stack:
            status, body, _ = await rest_call(stack, "POST")
            detail = unreachable(status, body)
            assert f"the proxy http://127.0.0.1:{proxy.port} answered 407" in detail and "CONNECT 127.0.0.1:" in detail
            assert PROXY_PASSWORD not in json.dumps(body) and "proxy-user" not in json.dumps(body)
            message = tool_failure(await mcp_call(stack, "POST"))
            assert "answered 407" in message and PROXY_PASSWORD not in message
    assert not upstream.requests
    no_password_in_logs(caplog)


# --- TLS: a private CA, mutual TLS -------------------------------------------------------------------


async def test_a_private_ca_upstream_needs_its_ca(pki: Pki) -> None:
    async with Upstream(ssl_context=pki.server_context()) as upstream:
        async with serving(upstream.url) as stack:  # the system's CAs only
            status, body, _ = await rest_call(stack, "DELETE")
            assert "certificate" in unreachable(status, body)
            assert "certificate" in tool_failure(await mcp_call(stack, "POST"))
        async with serving(upstream.url, tls=UpstreamTls(cafile=str(pki.other_ca))) as stack:  # the wrong CA
            assert "certificate" in unreachable(*(await rest_call(stack, "POST"))[:2])
        assert not upstream.requests
        async with serving(upstream.url, tls=UpstreamTls(cafile=str(pki.ca))) as stack:
            assert (await rest_call(stack, "DELETE"))[:2] == (200, {"ok": True})
            assert (await mcp_call(stack, "POST"))["isError"] is False
        async with serving(upstream.url, {"SSL_CERT_FILE": str(pki.ca)}) as stack:  # the environment's bundle
            assert (await rest_call(stack, "DELETE"))[0] == 200
    assert len(upstream.requests) == 3


async def test_an_upstream_requiring_a_client_certificate(pki: Pki) -> None:
    async with Upstream(ssl_context=pki.server_context(require_client_certificate=True)) as upstream:
        async with serving(upstream.url, tls=UpstreamTls(cafile=str(pki.ca))) as stack:
            status, body, _ = await rest_call(stack, "POST")
            assert status == 502, body
            assert tool_failure(await mcp_call(stack, "DELETE"))
        assert not upstream.requests
        tls = UpstreamTls(cafile=str(pki.ca), certfile=str(pki.client_cert), keyfile=str(pki.client_key))
        async with serving(upstream.url, tls=tls) as stack:
            assert (await rest_call(stack, "POST"))[:2] == (200, {"ok": True})
            assert (await mcp_call(stack, "DELETE"))["isError"] is False
    assert upstream.peers == ["naftiko-test-client"] * 2


@pytest.mark.parametrize("what", ["cafile", "certfile", "keyfile"])
def test_an_unusable_tls_file_fails_the_load_naming_namespace_and_file(pki: Pki, tmp_path: Path, what: str) -> None:
    files = {"cafile": str(pki.ca), "certfile": str(pki.client_cert), "keyfile": str(pki.client_key)}
    for bad in (tmp_path / "missing.pem", tmp_path / "not-pem.pem"):
        if bad.name == "not-pem.pem":
            bad.write_text("not a certificate\n")
        tls = UpstreamTls(**{**files, what: str(bad)})
        with pytest.raises(ValueError) as caught:
            compile_capability(
                load_document(SEED),
                CompileOptions(
                    upstreams={NAMESPACE: "https://127.0.0.1:1"}, environ=CREDENTIALS, upstream_tls={NAMESPACE: tls}
                ),
            )
        message = str(caught.value)
        assert f"namespace {NAMESPACE!r}" in message and str(bad) in message, message
    tls = UpstreamTls(certfile=str(pki.client_cert), keyfile=str(pki.server_key))  # the key of another certificate
    with pytest.raises(ValueError) as caught:
        compile_capability(load_document(SEED), CompileOptions(environ=CREDENTIALS, upstream_tls={NAMESPACE: tls}))
    assert f"namespace {NAMESPACE!r}" in str(caught.value) and str(pki.server_key) in str(caught.value)
