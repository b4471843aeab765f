"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against
`naftiko run` of the shared fixture file, on each protocol generation (issue #20, Part A).

Three runs, as a user would make them: `--spec-version 2025-06-18`, `--requirements 2025-11-25`
and `--requirements 2026-07-28`, each with the fixture's `expected-failures.yaml`. The verdict is
ours, read from every `checks.json` the suite wrote: a FAILURE or WARNING in a scenario that is
not an extension (the suite's requirements files say which are) fails the test unless the
expectations name the scenario or `scenario:check`. Pending scenarios count like the others.

Needs Node 22 and the pinned suite under $NAFTIKO_NODE_TOOLS (`.ci/run` installs both) and the
../shared fixtures; skips otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from node_tools import TOOLS, node22
from processes import output, started
from support import free_port, shared_path

SUITE = TOOLS / "node_modules" / "@modelcontextprotocol" / "conformance"
RUNS = {
    "spec-2025-06-18": ("--spec-version", "2025-06-18"),
    "requirements-2025-11-25": ("--requirements", "2025-11-25"),
    "requirements-2026-07-28": ("--requirements", "2026-07-28"),
}
_RESULT_DIR = re.compile(r"server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z")


@pytest.fixture(scope="module")
def suite() -> tuple[str, Path]:
    """Node 22 and the suite's entry point, or a skip saying what is missing."""
    node, cli = node22(), SUITE / "dist" / "index.js"
    if not cli.exists():
        pytest.skip(f"@modelcontextprotocol/conformance is not installed under {TOOLS} (bash .ci/run installs it)")
    return node, cli


@pytest.fixture(scope="module")
def mcp_url(suite: tuple[str, Path]) -> Iterator[str]:
    """The upstream beside the fixture file, and `naftiko run` of the fixture pointed at it."""
    fixture = shared_path("conformance", "mcp-suite", "conformance.yaml")
    upstream_port, port = free_port(), free_port()
    upstream = [sys.executable, str(fixture.parent / "upstream.py"), str(upstream_port)]
    with started(upstream, f"http://127.0.0.1:{upstream_port}/"):
        command = [
            sys.executable,
            "-m",
            "naftiko.cli",
            "run",
            str(fixture),
            "--upstream",
            f"fixtures=http://127.0.0.1:{upstream_port}",
            "--port",
            f"conformance={port}",
        ]
        with started(command, f"http://127.0.0.1:{port}/mcp") as naftiko:
            yield f"http://127.0.0.1:{port}/mcp"
            assert "Traceback" not in output(naftiko), output(naftiko)


def extension_scenarios() -> set[str]:
    """Server scenarios the suite's requirements files mark optional as extensions."""
    found: set[str] = set()
    for requirements in (SUITE / "requirements").glob("*.yaml"):
        for entry in yaml.safe_load(requirements.read_text(encoding="utf-8")).get("not_scored") or []:
            if entry.get("leg") == "server" and entry.get("reason") == "extension":
                found.add(entry["scenario"])
    return found


def unexpected(results: Path, expected: set[str], extensions: set[str]) -> list[str]:
    """Each FAILURE or WARNING of a scored scenario that the expectations do not name."""
    problems = []
    for checks in sorted(results.rglob("checks.json")):
        match = _RESULT_DIR.fullmatch(checks.parent.name)
        assert match is not None, f"unrecognised result folder {checks.parent}"
        scenario = match["scenario"]
        if scenario in extensions or scenario in expected:
            continue
        check: dict[str, Any]
        for check in json.loads(checks.read_text(encoding="utf-8")):
            if check["status"] in ("FAILURE", "WARNING") and f"{scenario}:{check['id']}" not in expected:
                problems.append(f"{scenario}:{check['id']} {check['status']}: {check.get('errorMessage', '')}")
    return problems


@pytest.mark.parametrize("run", RUNS)
def test_conformance_suite(suite: tuple[str, Path], mcp_url: str, run: str, tmp_path: Path) -> None:
    node, cli = suite
    baseline = shared_path("conformance", "mcp-suite", "expected-failures.yaml")
    expected = set(yaml.safe_load(baseline.read_text(encoding="utf-8"))["server"])
    results = tmp_path / "results"
    env = {**os.environ, "PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with (tmp_path / "suite.log").open("w+", encoding="utf-8") as log:  # not a pipe: the suite is chatty
        finished = subprocess.run(
            [node, str(cli), "server", "--url", mcp_url, *RUNS[run], "--expected-failures", str(baseline)]
            + ["-o", str(results)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=600,
            check=False,
        )
        log.seek(0)
        transcript = log.read()
    assert "Total:" in transcript and any(results.rglob("checks.json")), (
        f"the suite did not reach its end (exit {finished.returncode}):\n{transcript[-4000:]}"
    )
    problems = unexpected(results, expected, extension_scenarios())
    assert not problems, f"{run}: unexpected results:\n" + "\n".join(problems)
