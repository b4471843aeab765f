"""Script steps at load: what `naftiko validate` refuses, located at file:line:column, and the
governance settings made effective (scripting/settings.py, sources.py, engine/steps_compile.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from naftiko.scripting.settings import effective_settings
from naftiko.scripting.sources import ScriptSourceError, read_script
from support import REPO

SCRIPTS = REPO / "tests" / "scripting_fixtures" / "scripts"


def capability(location: str, steps: str, scripting: str = "") -> str:
    return f"""naftiko: "1.0.0-alpha2"
info: {{label: t, description: t}}
capability:
  exposes:
    - type: control
      port: 19190
      management:
        scripting: {{defaultLocation: "{location}"{scripting}}}
    - type: mcp
      port: 19191
      namespace: t
      tools:
        - name: tool
          description: d
          steps:
{steps}
          mappings: [{{targetName: out, value: "$.s"}}]
  consumes: []
"""


def validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "cap.yml"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "validate", str(path)], capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def step(language: str, file: str, extra: str = "") -> str:
    return f"            - {{type: script, name: s, language: {language}, file: {file}{extra}}}"


def test_the_fixture_scripts_validate(tmp_path: Path) -> None:
    steps = step("javascript", "filter-active.js", ", dependencies: [lib/array-utils.js]")
    code, out = validate(tmp_path, capability(SCRIPTS.as_uri(), steps))
    assert code == 0, out


@pytest.mark.parametrize(
    ("steps", "scripting", "expected"),
    [
        (step("groovy", "x.groovy"), "", ":16:49: error: groovy scripts are not supported by this runtime"),
        (
            step("python", "shape.py"),
            ", allowedLanguages: [javascript]",
            "not in management.scripting.allowedLanguages",
        ),
        (step("javascript", "missing.js"), "", ":16:67: error: script step 's': script 'missing.js' not found in"),
        (step("javascript", "../escape.js"), "", "must be relative to the location, its segments"),
        (step("javascript", "lib/../shape.js"), "", "must be relative to the location, its segments"),
    ],
)
def test_refused_at_validate_with_line_and_column(tmp_path: Path, steps: str, scripting: str, expected: str) -> None:
    code, out = validate(tmp_path, capability(SCRIPTS.as_uri(), steps, scripting))
    assert code == 1 and expected in out, out
    assert "Traceback" not in out


def test_a_link_out_of_the_location_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (tmp_path / "secret.js").write_text("result = 1")
    (folder / "inside.js").symlink_to(tmp_path / "secret.js")
    code, out = validate(tmp_path, capability(folder.as_uri(), step("javascript", "inside.js")))
    assert code == 1 and "is outside its location" in out and ":16:" in out, out


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        ("bad.js", "var a = 1;\nvar b = ;\n", "bad.js line 2: SyntaxError: Unexpected token ';'"),
        ("bad.py", "a = 1\nb = (\n", "bad.py line 2: SyntaxError: '(' was never closed"),
        ("dunder.py", "result = ().__class__.__base__.__subclasses__()\n", '"__class__" is an invalid attribute name'),
        ("frame.py", "g = (x for x in [1])\nresult = g.gi_frame.f_back\n", '"gi_frame" is a restricted name'),
        ("ev.py", "result = eval('1')\n", "Eval calls are not allowed"),
        ("imp.py", "result = __import__('os')\n", '"__import__" is an invalid variable name'),
    ],
)
def test_a_script_that_does_not_compile_is_refused_naming_file_and_line(
    tmp_path: Path, file: str, text: str, expected: str
) -> None:
    (tmp_path / file).write_text(text)
    language = "javascript" if file.endswith(".js") else "python"
    code, out = validate(tmp_path, capability(tmp_path.as_uri(), step(language, file)))
    assert code == 1 and expected in out and "cap.yml:16:" in out, out


def test_relative_locations_are_relative_to_the_capability_file(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "a.js").write_text("result = 1;\n")
    assert read_script("file:///./scripts", "a.js", tmp_path).text == "result = 1;\n"
    with pytest.raises(ScriptSourceError, match="not found"):
        read_script("file:///./scripts", "b.js", tmp_path)


def test_the_file_enabled_wins_over_the_environment() -> None:
    assert effective_settings({}, {}).enabled
    off = effective_settings({}, {"NAFTIKO_SCRIPTING": "false"})
    assert not off.enabled and "NAFTIKO_SCRIPTING=false" in (off.refusal("python") or "")
    assert effective_settings({"enabled": True}, {"NAFTIKO_SCRIPTING": "false"}).enabled
    refused = effective_settings({"enabled": False}, {}).refusal("javascript")
    assert refused == "scripting is disabled (management.scripting.enabled: false)"
    limited = effective_settings({"allowedLanguages": ["python"], "timeout": 5, "statementLimit": 9}, {})
    assert limited.refusal("python") is None and "allowedLanguages" in (limited.refusal("javascript") or "")
    assert (limited.timeout_ms, limited.statement_limit) == (5, 9)
