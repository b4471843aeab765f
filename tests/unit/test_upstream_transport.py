"""NamespaceClient over a MockTransport (retries, timeouts, the failure taxonomy, without
sockets), the proxy rules read from an environment, and the upstream SSL contexts."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import time
from pathlib import Path

import pytest

from naftiko.consumes.auth import DigestAuth
from naftiko.consumes.client import (
    IDEMPOTENT,
    ClientSettings,
    NamespaceClient,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from naftiko.consumes.connections import ConnectionPool
from naftiko.consumes.proxy import Proxy, ProxyConfigError, ProxyRules
from naftiko.consumes.request import OutgoingRequest
from naftiko.consumes.tls import UpstreamTls, UpstreamTlsError, client_context
from naftiko.consumes.transport import (
    BodyTooLarge,
    BrokenAnswer,
    ConnectionFailed,
    MockTransport,
    UpstreamResponse,
    UpstreamTransport,
    response,
)

URL = "http://upstream.test/api/x"
SETTINGS = ClientSettings(total_timeout=2.0, retries=2, backoff=0.001)


class Script:
    """A MockTransport handler playing one outcome per attempt (the last one repeats); it
    records each attempt's method and the timeout the client gave it."""

    def __init__(self, *outcomes: UpstreamResponse | Exception):
        self.outcomes = outcomes
        self.attempts: list[tuple[str, float]] = []
        self.timeouts: list[float] = []

    def __call__(self, request: OutgoingRequest) -> UpstreamResponse:
        outcome = self.outcomes[min(len(self.attempts), len(self.outcomes) - 1)]
        self.attempts.append((request.method, request.headers.get("Authorization", "")))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def client_for(script: Script, settings: ClientSettings = SETTINGS, **kwargs) -> NamespaceClient:
    transport = MockTransport(script)
    original = transport.send

    async def send(request: OutgoingRequest, timeout: float) -> UpstreamResponse:
        script.timeouts.append(timeout)
        return await original(request, timeout)

    transport.send = send  # type: ignore[method-assign]
    return NamespaceClient("ns", kwargs.pop("auth", None), settings, transport, **kwargs)


# --- the transport seam ------------------------------------------------------------------------


async def test_mock_transport_takes_a_function_or_a_coroutine_function() -> None:
    async def later(request: OutgoingRequest) -> UpstreamResponse:
        await asyncio.sleep(0)
        return response(201, b"{}", Content_Type="application/json")

    for handler in (lambda request: response(201, b"{}", Content_Type="application/json"), later):
        transport = MockTransport(handler)
        client = NamespaceClient("ns", None, SETTINGS, transport)
        answer = await client.send(OutgoingRequest("POST", URL, body=b"{}"))
        assert (answer.status, answer.body, answer.headers["content-type"]) == (201, b"{}", "application/json")
        await client.close()
        assert transport.closed


def test_the_pool_and_the_mock_are_transports() -> None:
    def is_transport(transport: UpstreamTransport) -> bool:
        return callable(transport.send) and callable(transport.close)

    assert is_transport(ConnectionPool(1.0, 1024)) and is_transport(MockTransport(lambda r: response()))
    assert NamespaceClient("ns", None, SETTINGS).transport.__class__ is ConnectionPool  # the default


# --- what is resent, and what is not ----------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(IDEMPOTENT))
async def test_idempotent_call_is_resent_after_connection_failures(method: str) -> None:
    script = Script(ConnectionFailed("refused"), ConnectionFailed("reset"), response(200, b"ok"))
    client = client_for(script)
    assert (await client.send(OutgoingRequest(method, URL))).body == b"ok"
    assert [m for m, _ in script.attempts] == [method] * 3


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_non_idempotent_call_is_sent_once_whatever_fails(method: str) -> None:
    script = Script(ConnectionFailed("closed before any answer"))
    with pytest.raises(UpstreamUnreachable, match="ns: cannot reach http://upstream.test: closed before any answer"):
        await client_for(script).send(OutgoingRequest(method, URL, body=b"{}"))
    assert len(script.attempts) == 1
    script = Script(response(503), response(200))
    assert (await client_for(script).send(OutgoingRequest(method, URL, body=b"{}"))).status == 503
    assert len(script.attempts) == 1


async def test_a_broken_answer_is_never_resent_even_for_get() -> None:
    script = Script(BrokenAnswer("the answer's head exceeds 65,536 bytes"), response(200))
    with pytest.raises(
        UpstreamUnreachable, match="ns: broken answer from http://upstream.test: the answer's head exceeds"
    ):
        await client_for(script).send(OutgoingRequest("GET", URL))
    assert len(script.attempts) == 1


async def test_retries_stop_after_settings_retries_and_the_last_answer_is_returned() -> None:
    script = Script(response(503, b"busy"))
    answer = await client_for(script, ClientSettings(retries=3, backoff=0.001)).send(OutgoingRequest("DELETE", URL))
    assert (answer.status, answer.body) == (503, b"busy") and len(script.attempts) == 4


async def test_retry_after_is_waited_and_each_attempt_gets_what_is_left_of_the_total() -> None:
    script = Script(response(429, Retry_After="0.2"), response(200))
    started = time.monotonic()
    assert (await client_for(script).send(OutgoingRequest("GET", URL))).status == 200
    assert time.monotonic() - started >= 0.19  # uvloop's timers round to the millisecond
    first, second = script.timeouts
    assert first <= 2.0 and second <= first - 0.19


async def test_transport_timeout_is_upstream_timeout_and_not_resent() -> None:
    script = Script(TimeoutError(), response(200))
    with pytest.raises(UpstreamTimeout, match="ns: no answer within 2 s"):
        await client_for(script).send(OutgoingRequest("GET", URL))
    assert len(script.attempts) == 1


@pytest.mark.parametrize(
    ("failure", "message"),
    [(BodyTooLarge(1024, 4096), "of 4,096 bytes exceeds 1,024"), (BodyTooLarge(1024, None), "exceeds 1,024 bytes")],
)
async def test_body_too_large_is_upstream_too_large(failure: BodyTooLarge, message: str) -> None:
    with pytest.raises(UpstreamTooLarge, match=message):
        await client_for(Script(failure)).send(OutgoingRequest("GET", URL))


async def test_a_digest_challenge_is_answered_once_through_the_transport() -> None:
    challenge = response(401, WWW_Authenticate='Digest realm="r", nonce="n1", qop="auth"')
    script = Script(challenge, response(200))
    client = client_for(script, auth=DigestAuth("user", "pass"))
    assert (await client.send(OutgoingRequest("POST", URL, body=b"{}"))).status == 200
    assert [m for m, _ in script.attempts] == ["POST", "POST"]  # the resend the 401 asked for
    assert script.attempts[0][1] == "" and script.attempts[1][1].startswith('Digest username="user"')
    script = Script(challenge)
    client = client_for(script, auth=DigestAuth("user", "wrong"))
    assert (await client.send(OutgoingRequest("GET", URL))).status == 401
    assert len(script.attempts) == 2  # challenged once; the same nonce again means wrong credentials


async def test_send_once_is_one_attempt_with_the_total_timeout() -> None:
    script = Script(ConnectionFailed("refused"), response(200))
    with pytest.raises(ConnectionFailed):
        await client_for(script).send_once(OutgoingRequest("GET", URL))
    assert len(script.attempts) == 1 and script.timeouts == [2.0]


async def test_a_call_over_the_rate_limit_is_refused_before_anything_is_sent() -> None:
    script = Script(response(200))
    client = client_for(script, rate_limit=20.0)
    for _ in range(20):  # the bucket: one second's worth
        assert (await client.send(OutgoingRequest("GET", URL))).status == 200
    with pytest.raises(UpstreamRateLimited) as refused:
        await client.send(OutgoingRequest("GET", URL))
    assert len(script.attempts) == 20
    assert 0 < refused.value.retry_after <= 1 / 20 and "rate limit of 20" in str(refused.value)


async def test_a_retry_over_the_rate_limit_is_not_made_and_the_last_answer_stands() -> None:
    script = Script(response(503), response(200))
    client = client_for(script, rate_limit=1.0)  # one token: the first attempt takes it
    assert (await client.send(OutgoingRequest("GET", URL))).status == 503
    assert len(script.attempts) == 1


# --- proxies from the environment -----------------------------------------------------------------


def test_no_proxy_variable_means_no_rules() -> None:
    assert ProxyRules.from_environ({}) is None
    assert ProxyRules.from_environ({"NO_PROXY": "*", "http_proxy": " "}) is None


def test_lower_case_wins_and_each_scheme_has_its_proxy() -> None:
    rules = ProxyRules.from_environ(
        {"http_proxy": "http://low:1", "HTTP_PROXY": "http://up:2", "HTTPS_PROXY": "up-tls:3128"}
    )
    assert rules is not None
    assert rules.select("http", "api.test", 80) == Proxy("low", 1)
    assert rules.select("https", "api.test", 443) == Proxy("up-tls", 3128)
    rules = ProxyRules.from_environ({"HTTP_PROXY": "http://up:2"})
    assert (
        rules is not None
        and rules.select("https", "api.test", 443) is None
        and rules.select("http", "a", 80) == Proxy("up", 2)
    )
    assert ProxyRules.from_environ({"HTTPS_PROXY": "http://p"}).https == Proxy("p", 80)  # type: ignore[union-attr]


def test_proxy_credentials_become_basic_proxy_authorization_and_are_never_shown() -> None:
    rules = ProxyRules.from_environ({"HTTPS_PROXY": "http://us%40er:p%3Ass word@proxy.corp:3128"})
    assert rules is not None and rules.https is not None
    assert rules.https.authorization == "Basic " + base64.b64encode(b"us@er:p:ss word").decode()
    assert rules.https.label == "http://proxy.corp:3128"
    assert "ss word" not in repr(rules) and "p%3Ass" not in repr(rules)


@pytest.mark.parametrize(
    "value", ["https://user:hunter2@proxy:3128", "socks5://user:hunter2@proxy:1080", "http://user:hunter2@proxy:99999"]
)
def test_an_unusable_proxy_is_an_error_without_its_password(value: str) -> None:
    with pytest.raises(ProxyConfigError) as caught:
        ProxyRules.from_environ({"HTTPS_PROXY": value})
    assert "hunter2" not in str(caught.value) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("no_proxy", "scheme", "host", "port", "direct"),
    [
        ("example.com", "https", "example.com", 443, True),
        ("example.com", "https", "api.example.com", 443, True),
        (".example.com", "https", "example.com", 443, True),
        (".example.com", "https", "a.b.example.com", 443, True),
        ("*.example.com", "https", "a.example.com", 443, True),
        ("example.com", "https", "notexample.com", 443, False),
        ("example.com", "https", "example.com.evil.test", 443, False),
        ("EXAMPLE.com.", "http", "Example.COM", 80, True),
        ("*", "http", "anything.test", 80, True),
        ("a.test, *", "http", "anything.test", 80, True),
        ("example.com:8443", "https", "example.com", 8443, True),
        ("example.com:8443", "https", "example.com", 443, False),
        ("127.0.0.1", "http", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "http", "127.0.0.1", 8080, True),
        ("127.0.0.1:8080", "http", "127.0.0.1", 8081, False),
        ("127.0.0.2", "http", "127.0.0.1", 80, False),
        ("10.0.0.0/8", "http", "10.2.3.4", 80, True),
        ("10.0.0.0/8", "http", "11.2.3.4", 80, False),
        ("::1", "http", "::1", 80, True),
        ("[::1]:8080", "http", "::1", 8080, True),
        ("[::1]:8080", "http", "::1", 8081, False),
        ("fd00::/8", "https", "fd12::5", 443, True),
        ("localhost", "http", "127.0.0.1", 80, False),  # names are not resolved, as in curl
        ("", "http", "example.com", 80, False),
        (" , ,api.test ", "http", "api.test", 80, True),
    ],
)
def test_no_proxy(no_proxy: str, scheme: str, host: str, port: int, direct: bool) -> None:
    rules = ProxyRules.from_environ({"http_proxy": "http://p:1", "https_proxy": "http://p:2", "no_proxy": no_proxy})
    assert rules is not None
    assert (rules.select(scheme, host, port) is None) is direct


def test_lower_case_no_proxy_wins() -> None:
    rules = ProxyRules.from_environ({"HTTP_PROXY": "http://p:1", "no_proxy": "a.test", "NO_PROXY": "b.test"})
    assert rules is not None
    assert rules.select("http", "a.test", 80) is None and rules.select("http", "b.test", 80) is not None


# --- TLS contexts -------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    from test_upstream_connections import self_signed as make

    return make(folder)


def test_tls_contexts_are_built_once_per_value(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = UpstreamTls(cafile=str(cert), certfile=str(cert), keyfile=str(key))
    context = client_context(tls, None)
    assert client_context(UpstreamTls(cafile=str(cert), certfile=str(cert), keyfile=str(key)), None) is context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert client_context(None, str(cert)) is not context
    assert len(client_context(None, str(cert)).get_ca_certs()) == 1  # SSL_CERT_FILE replaces the store
    (tmp_path / "renewed").mkdir()
    for old, new in zip((cert, key), self_signed(tmp_path / "renewed")):
        old.write_bytes(new.read_bytes())
        os.utime(old, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert client_context(tls, None) is not context  # renewed in place: read again (on reload)


def test_unusable_tls_files_name_the_file(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    missing = str(tmp_path / "missing.pem")
    cases = [
        (UpstreamTls(cafile=missing), f"cafile {missing} cannot be read"),
        (UpstreamTls(cafile=str(garbage)), f"cafile {garbage} holds no PEM certificate"),
        (UpstreamTls(certfile=str(cert), keyfile=missing), f"keyfile {missing} cannot be read"),
        (UpstreamTls(certfile=str(garbage), keyfile=str(key)), f"certfile {garbage} and keyfile {key}"),
        (UpstreamTls(certfile=str(cert)), f"certfile {cert}"),  # no key inside it
        (UpstreamTls(keyfile=str(key)), "without a certfile"),
    ]
    for tls, message in cases:
        with pytest.raises(UpstreamTlsError) as caught:
            client_context(tls, None)
        assert message in str(caught.value) and isinstance(caught.value, ValueError)
    with pytest.raises(UpstreamTlsError, match=f"SSL_CERT_FILE {missing} cannot be read"):
        client_context(None, missing)
