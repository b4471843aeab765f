"""Bind variables and the template grammar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from naftiko.binds import BindError, BindResolver, declare, declared_binds, lookup_declaration
from naftiko.templates import MISSING, Template


def test_template_grammar_and_typed_sole_variable() -> None:
    template = Template.compile("Bearer {{ TOKEN }} / {{ns.X}} / <<env.HOME_DIR>> / {{step-1.field}}")
    assert template.variables == ("TOKEN", "ns.X", "env.HOME_DIR", "step-1.field")
    assert Template.compile("{{count}}").sole_variable == "count"
    assert Template.compile("x{{count}}").sole_variable is None
    values = {"TOKEN": "t", "ns.X": [1, 2], "env.HOME_DIR": None}
    missing: list[str] = []
    rendered = template.render(lambda n: values.get(n, MISSING), missing)
    assert rendered == "Bearer t / [1,2] /  / "
    assert missing == ["step-1.field"]


def test_rendered_values_are_never_rendered_again() -> None:
    assert Template.compile("{{a}}").render(lambda n: "{{b}}" if n == "a" else "SECRET") == "{{b}}"


def bound(tmp_path: Path, binds: list[dict], environ: dict[str, str] | None = None):
    declared = declare(declared_binds({"binds": binds}))
    resolver = BindResolver(tmp_path, environ or {})
    return lambda name: resolver.value(lookup_declaration(name, declared))


def test_env_bind_reads_the_provider_key(tmp_path: Path) -> None:
    value = bound(tmp_path, [{"namespace": "env", "keys": {"TOKEN": "REAL_VARIABLE"}}], {"REAL_VARIABLE": "abc"})
    assert value("TOKEN") == value("env.TOKEN") == "abc"


def test_env_fallback_for_undeclared_env_names(tmp_path: Path) -> None:
    value = bound(tmp_path, [], {"CUSTOMER_IO_USER": "site"})
    assert value("env.CUSTOMER_IO_USER") == "site"
    with pytest.raises(BindError, match="environment variable NOPE is not set"):
        value("env.NOPE")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("secrets.yaml", "registry-token: yaml-value\nversion: 2\n"),
        ("secrets.json", json.dumps({"registry-token": "yaml-value", "version": 2})),
        ("secrets.env", "# comment\nexport registry-token='yaml-value'\nversion=2\n"),
    ],
)
def test_file_binds_relative_to_the_capability(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / name).write_text(text)
    for location in (f"file:///./shared/{name}", f"file://./shared/{name}"):
        value = bound(
            tmp_path,
            [{"namespace": "registry", "location": location, "keys": {"TOKEN": "registry-token", "V": "version"}}],
        )
        assert value("TOKEN") == value("registry.TOKEN") == "yaml-value"
        assert value("V") == "2"


def test_file_bind_problems_are_clear_and_hold_no_values(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("other: super-secret\n")
    value = bound(tmp_path, [{"namespace": "r", "location": "file:///./s.yaml", "keys": {"A": "missing-key"}}])
    with pytest.raises(BindError) as caught:
        value("A")
    assert "missing-key" in str(caught.value) and "super-secret" not in str(caught.value)
    with pytest.raises(BindError, match="cannot read bind file"):
        bound(tmp_path, [{"namespace": "r", "location": "file:///./absent.yaml", "keys": {"A": "a"}}])("A")
    with pytest.raises(BindError, match="only file://"):
        bound(tmp_path, [{"namespace": "r", "location": "vault://x", "keys": {"A": "a"}}])("A")
