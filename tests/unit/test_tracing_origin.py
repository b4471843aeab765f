"""A CLIENT span's `server.address`/`server.port`, from the URL (cached per origin, the last one first)."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from naftiko.observability.tracing import TracingTransport  # noqa: E402


def test_each_origin_gets_its_own_host_and_port_even_when_one_prefixes_another() -> None:
    transport = TracingTransport(None, None, "up")  # type: ignore[arg-type]
    urls = [
        ("http://api.example:80/v1/customers/1", ("api.example", 80)),
        ("http://api.example:8080/v1/customers/2", ("api.example", 8080)),  # "…:80" prefixes "…:8080"
        ("http://api.example:80/v1/customers/3", ("api.example", 80)),
        ("https://user:pw@[2001:db8::1]/x", ("2001:db8::1", 443)),
        ("https://api.example", ("api.example", 443)),
        ("http://api.example:8080/again", ("api.example", 8080)),
    ]
    assert [transport._origin(url) for url, _ in urls] == [expected for _, expected in urls]
