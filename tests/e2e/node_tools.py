"""Node tools for end-to-end tests (Prism, Spectral, MCP Inspector, MCP conformance), installed by .ci/run.

They live under $NAFTIKO_NODE_TOOLS (default: .ci/.tools in the repository); a test that needs
one skips with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("NAFTIKO_NODE_TOOLS", REPO / ".ci" / ".tools"))


def node_tool(name: str) -> str:
    path = TOOLS / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.skip(f"{name} is not installed under {TOOLS} (bash .ci/run installs it)")
    return str(path)


def node22() -> str:
    """The Node 22 the npm `node@22` package brings (the MCP tools need it; the machine's may be older)."""
    node = TOOLS / "node_modules" / "node" / "bin" / "node"
    if not node.exists():
        pytest.skip(f"Node 22 (the npm `node@22` package) is not installed under {TOOLS} (bash .ci/run installs it)")
    return str(node)
