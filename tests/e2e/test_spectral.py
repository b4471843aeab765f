"""Spectral's `spectral:oas` ruleset finds no error in the OpenAPI of any capability we ship."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node_tools import REPO, node_tool

CAPABILITIES = sorted((REPO / "capabilities").glob("*.yaml"))


@pytest.mark.parametrize("capability", CAPABILITIES, ids=lambda p: p.name)
def test_generated_openapi_lints_clean(capability: Path, tmp_path: Path) -> None:
    spectral = node_tool("spectral")
    document = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "openapi", str(capability)], capture_output=True, text=True, timeout=60
    )
    assert document.returncode == 0, document.stderr
    (tmp_path / "openapi.json").write_text(document.stdout)
    (tmp_path / ".spectral.yaml").write_text('extends: ["spectral:oas"]\n')
    lint = subprocess.run(
        [
            spectral,
            "lint",
            "--ruleset",
            str(tmp_path / ".spectral.yaml"),
            "--fail-severity",
            "error",
            str(tmp_path / "openapi.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
