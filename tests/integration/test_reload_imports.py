"""A changed consumes file that others import reloads those files, and only those: the watcher
of `naftiko run DIR` and of `run --gateway DIR` alike (real servers on 127.0.0.1, real HTTP)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from naftiko.config import RunConfig
from naftiko.consumes.client import ClientSettings
from naftiko.engine.compile import CompileOptions
from naftiko.gateway import reload as gateway_reload
from naftiko.gateway.catalogue import assemble
from naftiko.gateway.load import load_files
from naftiko.gateway.reload import GatewayReloader
from naftiko.gateway.runtime import GatewayRuntime
from naftiko.run_command import load_capabilities
from naftiko.server import Runtime, plan
from naftiko.watch import Reloader
from support import free_port

SHARED = """naftiko: 1.0.0-alpha2
consumes:
  - type: http
    namespace: things-api
    baseUri: https://{region}.example.com
    resources:
      - name: things
        path: /things/{{{{id}}}}
        operations:
          - name: get-thing
            method: GET
"""
CAPABILITY = """naftiko: 1.0.0-alpha2
capability:
  consumes:
{consumes}
  exposes:
    - type: rest
      namespace: {name}-rest
      port: {port}
      resources:
        - path: /{name}/{{{{id}}}}
          operations:
            - method: GET
              name: get-thing
              call: things-api.get-thing
"""
IMPORTED = "    - location: ./shared.yaml\n      import: things-api"
OWN = SHARED.split("consumes:\n", 1)[1].replace("\n  ", "\n    ").replace("  - type", "    - type", 1).rstrip()


def folder(tmp_path: Path) -> int:
    """shared.yaml, a.yaml importing it, b.yaml with its own consumes; one REST port (routes /a/{id}, /b/{id})."""
    port = free_port()
    (tmp_path / "shared.yaml").write_text(SHARED.format(region="us"))
    (tmp_path / "a.yaml").write_text(CAPABILITY.format(consumes=IMPORTED, name="a", port=port))
    (tmp_path / "b.yaml").write_text(CAPABILITY.format(consumes=OWN.format(region="b"), name="b", port=port))
    return port


async def upstream_url(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        answer = await response.json()
    assert response.status == 200, answer
    return answer["request"]["url"]


def counting(load: Callable[..., Any], reads: list[str]) -> Callable[..., Any]:
    def counted(path: Path, *args: Any) -> Any:
        reads.append(path.name)
        return load(path, *args)

    return counted


async def test_the_watcher_reads_again_only_the_files_importing_a_changed_consumes_file(tmp_path: Path) -> None:
    port = folder(tmp_path)
    options = CompileOptions(dry_run=True)
    loaded = load_capabilities([str(tmp_path)], options)
    runtime = Runtime()
    await runtime.start(plan(list(loaded.values())))
    reloader = Reloader([str(tmp_path)], options, runtime, plan, loaded)
    reads: list[str] = []
    reloader._load = counting(reloader._load, reads)  # type: ignore[method-assign]
    try:
        base = f"http://127.0.0.1:{port}"
        assert (await upstream_url(f"{base}/a/1")).startswith("https://us.example.com/")
        (tmp_path / "shared.yaml").write_text(SHARED.format(region="eu-west"))
        await reloader.reload()
        assert sorted(reads) == ["a.yaml", "shared.yaml"]
        assert (await upstream_url(f"{base}/a/1")).startswith("https://eu-west.example.com/")
    finally:
        await runtime.stop()
        for capability in reloader.capabilities.values():
            await capability.close()


@asynccontextmanager
async def gateway(folder: Path, settings: ClientSettings | None = None) -> AsyncIterator[GatewayReloader]:
    """The gateway's servers and reloader over `folder`, in this process, as `run --gateway` makes them."""
    options = CompileOptions(dry_run=True, settings=settings or ClientSettings())
    config = RunConfig(paths=(str(folder),), compile=options)
    entries = load_files(config.paths, config)  # freezes what it loaded
    runtime = GatewayRuntime()
    await runtime.start(assemble(entries).plans)
    reloader = GatewayReloader(config, runtime, {e.path: e for e in entries}, [e.path for e in entries if e.served])
    del entries
    try:
        yield reloader
    finally:
        await runtime.stop()
        for capability in reloader.capabilities.values():
            await capability.close()


async def test_the_gateway_reads_again_only_the_files_importing_a_changed_consumes_file(
    tmp_path: Path, monkeypatch: Any
) -> None:
    base = f"http://127.0.0.1:{folder(tmp_path)}"
    async with gateway(tmp_path) as reloader:
        reads: list[str] = []
        monkeypatch.setattr(gateway_reload, "read_document", counting(gateway_reload.read_document, reads))
        assert (await upstream_url(f"{base}/a-rest/a/1")).startswith("https://us.example.com/")
        (tmp_path / "shared.yaml").write_text(SHARED.format(region="eu-west"))
        outcome = await reloader.reload_all()
        assert outcome.status == 200, outcome
        assert sorted(reads) == ["a.yaml", "shared.yaml"]
        assert (await upstream_url(f"{base}/a-rest/a/1")).startswith("https://eu-west.example.com/")
        assert (await upstream_url(f"{base}/b-rest/b/1")).startswith("https://b.example.com/")


async def test_files_replaced_after_a_frozen_load_are_collected_once_enough_were(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Frozen objects in cycles are never collected by themselves: the gateway collects them
    after enough reloads (here: after every one), once their grace period is over."""
    port = folder(tmp_path)
    monkeypatch.setattr(gateway_reload, "RETIRED_BEFORE_COLLECTING", 1)
    async with gateway(tmp_path, ClientSettings(total_timeout=0.1)) as reloader:
        old = weakref.ref(reloader.capabilities[tmp_path / "b.yaml"])
        (tmp_path / "b.yaml").write_text(CAPABILITY.format(consumes=OWN.format(region="c"), name="b", port=port))
        assert (await reloader.reload_all()).status == 200
        assert (await upstream_url(f"http://127.0.0.1:{port}/b-rest/b/1")).startswith("https://c.example.com/")
        for _ in range(200):  # the grace period (5.1 s here), then the collection
            if old() is None:
                break
            await asyncio.sleep(0.05)
        assert old() is None
