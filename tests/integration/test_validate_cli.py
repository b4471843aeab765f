"""`naftiko validate`: verdicts, one-line located errors, exit codes and both output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import SEED, shared_path

MUST_FAIL = {
    "baseuri-trailing-slash-capability.yaml": "baseUri must not end with '/'",
    "aggregate-invalid-ref.yaml": "unknown aggregate function ref 'unknown.nonexistent'",
}
# What `naftiko run` refuses, `validate` reports (issue #16): features this runtime does not have.
NOT_SERVED = {
    "avro-capability.yaml": 'unsupported outputRawFormat "avro"',
    "proto-capability.yaml": 'unsupported outputRawFormat "protobuf"',
    "script-step.yml": "not found in file:///app/capabilities/scripts",  # the example ships no scripts
}


def validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "validate", *args], capture_output=True, text=True, timeout=300
    )


def test_every_official_example_validates_except_the_two_that_must_fail() -> None:
    folder = shared_path("conformance", "official")
    files = sorted(p for p in folder.glob("*.y*ml"))
    done = validate("--format", "json", *map(str, files))
    reports = {Path(r["file"]).name: r for r in json.loads(done.stdout)}
    assert done.returncode == 1
    for name, report in reports.items():
        if name in MUST_FAIL:
            assert not report["valid"]
            [error] = report["errors"]
            assert MUST_FAIL[name] in error["message"] and "\n" not in error["message"]
        elif name in NOT_SERVED:
            assert not report["valid"]
            assert all(NOT_SERVED[name] in e["message"] and e["line"] > 1 for e in report["errors"]), report["errors"]
        else:
            # Validated together, the examples collide on ports as `naftiko run` would find them
            # (they are not one deployment): those are the only errors a served example may get.
            alone = [
                e for e in report["errors"] if " on port " not in e["message"] and "is claimed by a" not in e["message"]
            ]
            assert alone == [], (name, alone)
            # The semantics-consistency rule: these two really expose a safe function unsafely.
            expected = {"spectral-semantics-inconsistent.yaml": 2, "aggregate-basic.yaml": 2}.get(name, 0)
            assert len(report["warnings"]) == expected, (name, report["warnings"])


def test_official_shared_consumes_files_validate() -> None:
    folder = shared_path("conformance", "official", "shared")
    files = [str(p) for p in folder.glob("*.y*ml") if p.name != "secrets.yaml"]
    assert validate("--strict", *files).returncode == 0


def test_seed_is_valid_with_warnings_by_default_and_invalid_when_strict() -> None:
    default = validate(str(SEED))
    strict = validate("--strict", str(SEED))
    assert default.returncode == 0 and strict.returncode == 1
    assert default.stdout.splitlines()[-1].startswith("1 valid, 0 invalid, ")
    assert "track-customers.yaml:74:5: warning: unexpected property 'description'" in default.stdout
    assert "{{env.CUSTOMER_IO_USER}} is not declared in binds" in default.stdout
    assert "track-customers.yaml:74:5: error: unexpected property 'description'" in strict.stdout


CAPABILITY = """naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: https://api.example.com
      authentication: {{type: bearer, token: '{token}'}}
      resources:
        - name: items
          path: /items/{{id}}
          operations:
            - name: get-item
              method: GET
  exposes:
    - type: mcp
      namespace: {expose_ns}
      port: 9090
      transport: http
      tools:
        - name: get-item
          description: Get an item
          call: {call}
"""


def write(tmp_path: Path, text: str, name: str = "cap.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def one_error(tmp_path: Path, text: str) -> str:
    done = validate("--format", "json", write(tmp_path, text))
    assert done.returncode == 1
    [report] = json.loads(done.stdout)
    assert report["errors"], report
    error = report["errors"][0]
    assert error["line"] >= 1 and error["column"] >= 1
    assert "\n" not in error["message"]
    return f"{error['line']}:{error['column']} {error['message']}"


def good(**overrides: str) -> str:
    values = {"token": "{{env.API_TOKEN}}", "expose_ns": "tools-ns", "call": "api.get-item"}
    return CAPABILITY.format(**{**values, **overrides})


def test_a_good_file_is_valid(tmp_path: Path) -> None:
    done = validate(write(tmp_path, good()))
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("naftiko: 1.0.0-alpha2\ncapability: [1, 2\n", "malformed YAML"),
        (
            "naftiko: 0.5\ncapability: {}\n",
            "1:10 unsupported naftiko version 0.5: this runtime supports naftiko: 1.0.0-alpha2",
        ),
        ("- just\n- a list\n", "1:1 a capability file must be a mapping at its top level, not a list"),
        (good(call="api.nope"), "22:17 call target 'api.nope' is not an operation of any consumed namespace"),
        (good(expose_ns="api"), "16:18 namespace 'api' is already used by capability.consumes[0]"),
        (good(token="{{UNDECLARED_TOKEN}}"), "template variable {{UNDECLARED_TOKEN}} is not declared in binds"),
    ],
)
def test_each_mistake_is_one_located_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in one_error(tmp_path, text)


def test_alias_bomb_and_huge_and_binary_files_get_a_verdict(tmp_path: Path) -> None:
    bomb = ["a: &a [x,x,x,x,x,x,x,x,x]"] + [
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefg", "bcdefgh")
    ]
    assert "alias/anchor bomb" in one_error(tmp_path, "\n".join(bomb))
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"naftiko: 1.0.0-alpha2\ndescription: '" + b"x" * (20 * 1024 * 1024) + b"'\n")
    done = validate(str(huge))
    assert done.returncode == 1 and "the limit is" in done.stdout
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(bytes(range(256)) * 64)
    done = validate(str(garbage))
    assert done.returncode == 1 and "not UTF-8" in done.stdout


def test_usage_and_unreadable_paths_exit_2(tmp_path: Path) -> None:
    assert validate(str(tmp_path / "missing.yaml")).returncode == 2
    assert validate(str(tmp_path)).returncode == 2  # a folder with no capability files
    assert validate().returncode == 2


def test_folders_are_searched_and_summarised(tmp_path: Path) -> None:
    write(tmp_path, good(), "a.yaml")
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested", good(call="api.nope"), "b.yml")
    (tmp_path / "notes.txt").write_text("not a capability")
    done = validate(str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].startswith("1 valid, 1 invalid, ")


def test_inspect_lists_routes_and_tools_with_inputs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "inspect", "--format", "json", str(SEED)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)
    routes = {(r["method"], r["path"]) for r in item["rest"]}
    assert ("PUT", "/v1/customers/{identifier}") in routes and len(routes) == 4
    identify = next(t for t in item["tools"] if t["name"] == "identify-customer")
    assert {(i["name"], i["type"], i["required"]) for i in identify["inputs"]} == {
        ("identifier", "string", True),
        ("body", "object", False),
    }
    text = subprocess.run(
        [sys.executable, "-m", "naftiko.cli", "inspect", str(SEED)], capture_output=True, text=True, timeout=60
    )
    assert "MCP  delete-customer" in text.stdout and "identifier: string (required)" in text.stdout
