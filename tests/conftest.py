"""Fixtures shared by every test: a recording fake upstream on 127.0.0.1, and a session-wide
check that no secret the tests hand the runtime ever reaches a log record."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from support import FakeUpstream

# Every credential value the tests put in auth fields, binds or exposure authentication.
TEST_SECRETS = (
    "api-key-SECRET-456",
    "s3cr3t-value-0123456789",
    "real-api-key-0123",
    "caller-key-4567",
    "gateway-token-789",
    "gateway-token-SECRET-789",
    "x-secret-value-321",
    "sk-mcp-token-0123",
)


@pytest.fixture(autouse=True)
def no_secret_in_log_records(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Across the whole suite: whatever a test does, the runtime's log records hold no secret."""
    caplog.set_level(logging.DEBUG, logger="naftiko")
    yield
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        leaked = [secret for secret in TEST_SECRETS if secret in text]
        assert not leaked, f"secret in a log record from {record.name}: {text[:300]}"


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()
