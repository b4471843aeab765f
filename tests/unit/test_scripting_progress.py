"""Script steps report their progress like every step (engine/progress.py, the seam of MCP
progress notifications), in a real call and in a dry run."""

from __future__ import annotations

from pathlib import Path

import pytest

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.progress import observing_steps
from naftiko.engine.results import DryRun, Success
from naftiko.spec.document import load_document
from support import REPO

SCRIPTS = (REPO / "tests" / "scripting_fixtures" / "scripts").as_uri()
CAPABILITY = f"""naftiko: "1.0.0-alpha2"
info: {{label: t, description: t}}
capability:
  exposes:
    - type: control
      port: 19290
      management: {{scripting: {{defaultLocation: "{SCRIPTS}"}}}}
    - type: mcp
      port: 19291
      namespace: t
      tools:
        - name: tool
          description: d
          inputParameters: [{{name: items, type: array, description: d}}]
          steps:
            - {{type: script, name: shape-js, language: javascript, file: shape.js}}
            - {{type: script, name: shape-py, language: python, file: shape.py, with: {{factor: 2}}}}
          mappings: [{{targetName: js, value: "$.shape-js.total"}}, {{targetName: py, value: "$.shape-py"}}]
  consumes: []
"""


@pytest.mark.parametrize("dry_run", [False, True])
async def test_each_script_step_is_reported_when_it_finishes(tmp_path: Path, dry_run: bool) -> None:
    path = tmp_path / "cap.yml"
    path.write_text(CAPABILITY)
    capability = compile_capability(load_document(path), CompileOptions(dry_run=dry_run))
    seen: list[tuple[str, int, int]] = []
    try:
        with observing_steps(lambda name, done, total: seen.append((name, done, total))):
            result = await capability.invoke(capability.find("tool"), {"items": [1, 2]})
    finally:
        await capability.close()
    assert seen == [("shape-js", 1, 2), ("shape-py", 2, 2)]
    py = {"doubled": [2, 4], "total": 6, "factor": 2}
    if dry_run:
        assert isinstance(result, DryRun) and result.request["steps"][1] == {"step": "shape-py", "result": py}
    else:
        assert isinstance(result, Success) and result.body == {"js": 6, "py": py}
