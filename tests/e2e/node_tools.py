"""Node tools for end-to-end tests (Prism, Spectral, MCP Inspector), installed by .ci/run.

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
