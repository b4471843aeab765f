"""The official `customerio` SDK, unchanged, through customer-io-gateway.yaml.

Callers authenticate to the gateway with its own credentials; the upstream sees the runtime's.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import REPO, FakeUpstream, Serving

customerio = pytest.importorskip("customerio")

GATEWAY = REPO / "capabilities" / "customer-io-gateway.yaml"
ENVIRON = {
    "CUSTOMER_IO_USER": "real-site-id",
    "CUSTOMER_IO_PASS": "real-api-key-0123",
    "GATEWAY_SITE_ID": "caller-site",
    "GATEWAY_API_KEY": "caller-key-4567",
}
RUNTIME_AUTH = "Basic " + base64.b64encode(b"real-site-id:real-api-key-0123").decode()


async def test_sdk_calls_reach_customer_io_with_the_runtime_credentials(upstream: FakeUpstream) -> None:
    capability = compile_capability(
        load_document(GATEWAY), CompileOptions(upstreams={"customer-io-track": upstream.url}, environ=ENVIRON)
    )
    [rest_plan] = plan([capability])
    server = Serving(rest_plan)
    await server.start_server()
    cio = customerio.CustomerIO("caller-site", "caller-key-4567")
    cio.base_url = str(server.make_url("/api/v1"))

    def use_the_sdk() -> None:
        cio.identify(id="cust 1", email="ada@example.com", plan="pro")
        cio.track(customer_id="cust 1", name="purchase", data={"amount": 99})
        cio.track_anonymous(anonymous_id="anon-9", name="page_viewed", data={"url": "/pricing"})
        cio.add_device(customer_id="cust 1", device_id="dev/1", platform="ios")
        cio.delete_device(customer_id="cust 1", device_id="dev/1")
        cio.suppress(customer_id="cust 1")
        cio.unsuppress(customer_id="cust 1")
        cio.merge_customers("email", "a@example.com", "id", "cust 1")
        cio.delete(customer_id="cust 1")

    try:
        await asyncio.to_thread(use_the_sdk)
        wrong = customerio.CustomerIO("caller-site", "not-the-key")
        wrong.base_url = cio.base_url
        with pytest.raises(customerio.CustomerIOException, match="401"):
            await asyncio.to_thread(wrong.suppress, customer_id="x")
    finally:
        await server.close()
        await capability.close()

    seen = [(r.method, r.path) for r in upstream.requests]
    assert seen == [
        ("PUT", "/api/v1/customers/cust%201"),
        ("POST", "/api/v1/customers/cust%201/events"),
        ("POST", "/api/v1/events"),
        ("PUT", "/api/v1/customers/cust%201/devices"),
        ("DELETE", "/api/v1/customers/cust%201/devices/dev%2F1"),
        ("POST", "/api/v1/customers/cust%201/suppress"),
        ("POST", "/api/v1/customers/cust%201/unsuppress"),
        ("POST", "/api/v1/merge_customers"),
        ("DELETE", "/api/v1/customers/cust%201"),
    ]
    assert all(r.headers["Authorization"] == RUNTIME_AUTH for r in upstream.requests)
    bodies = [r.json() for r in upstream.requests]
    assert bodies[0] == {"email": "ada@example.com", "plan": "pro"}
    assert bodies[1]["name"] == "purchase" and bodies[1]["data"] == {"amount": 99}
    assert bodies[2]["anonymous_id"] == "anon-9"
    assert bodies[3]["device"]["id"] == "dev/1" and bodies[3]["device"]["platform"] == "ios"
    assert bodies[7] == {"primary": {"email": "a@example.com"}, "secondary": {"id": "cust 1"}}
