"""Bind variables: declared in `binds`, resolved once at load from the environment or files.

A bind without `location` reads, for each `VAR: KEY`, the environment variable KEY. A bind with
`location: file://…` reads KEY from a YAML, JSON or .env file, relative to the capability file
(`file:///./x` and `file://./x` are relative too). Each value is reachable as `VAR` and as
`namespace.VAR`. `env.X` with no bind declaring X falls back to the environment variable X.
Only variables the capability uses must resolve; the others are never read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from .spec.diagnostics import JsonPath


@dataclass(frozen=True, slots=True)
class Bind:
    namespace: str
    keys: dict[str, str]
    location: str | None
    path: JsonPath


@dataclass(frozen=True, slots=True)
class Declared:
    """Where a variable name comes from: a bind key, or the environment fallback of `env.X`."""

    name: str
    key: str
    bind: Bind | None


class BindError(Exception):
    """A variable that cannot be resolved; the message never contains a value."""


def declared_binds(document: Mapping[str, Any]) -> list[Bind]:
    binds: list[Bind] = []
    capability = document.get("capability")
    for prefix, entries in (((), document.get("binds")), (("capability",), _get(capability, "binds"))):
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("keys"), dict):
                continue
            keys = {str(k): str(v) for k, v in entry["keys"].items()}
            location = entry.get("location") if isinstance(entry.get("location"), str) else None
            binds.append(Bind(str(entry.get("namespace", "")), keys, location, (*prefix, "binds", index)))
    return binds


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def declare(binds: list[Bind]) -> dict[str, Declared]:
    """Every name a template may use for a bind variable: `VAR` and `namespace.VAR`."""
    names: dict[str, Declared] = {}
    for bind in binds:
        for var, key in bind.keys.items():
            names[var] = Declared(var, key, bind)
            if bind.namespace:
                names[f"{bind.namespace}.{var}"] = Declared(var, key, bind)
    return names


def lookup_declaration(name: str, declared: Mapping[str, Declared]) -> Declared | None:
    """The declaration behind a template name; `env.X` falls back to the environment variable X."""
    if name in declared:
        return declared[name]
    if name.startswith("env.") and len(name) > 4:
        return Declared(name[4:], name[4:], None)
    return None


class BindResolver:
    """Reads bind values on demand, each source file once."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str] | None = None):
        self.base_dir = base_dir
        self.environ = os.environ if environ is None else environ
        self._files: dict[str, Mapping[str, Any]] = {}

    def value(self, declared: Declared) -> str:
        bind = declared.bind
        if bind is None or bind.location is None:
            if declared.key not in self.environ:
                raise BindError(f"environment variable {declared.key} is not set")
            return self.environ[declared.key]
        source = self._file(bind.location)
        if declared.key not in source:
            raise BindError(f"key {declared.key!r} not found in {bind.location}")
        value = source[declared.key]
        return value if isinstance(value, str) else json.dumps(value)

    def _file(self, location: str) -> Mapping[str, Any]:
        if location not in self._files:
            self._files[location] = self._read(location)
        return self._files[location]

    def _read(self, location: str) -> Mapping[str, Any]:
        parsed = urlparse(location)
        if parsed.scheme != "file":
            raise BindError(f"unsupported bind location {location!r}: only file:// is supported")
        raw = unquote(parsed.netloc + parsed.path)
        relative = raw.removeprefix("/") if raw.startswith("/./") or raw.startswith("/../") else raw
        path = (self.base_dir / relative).resolve() if not Path(relative).is_absolute() else Path(relative)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BindError(f"cannot read bind file {location}: {exc.strerror}") from None
        try:
            if path.suffix in (".yaml", ".yml"):
                data = yaml.safe_load(text)
            elif path.suffix == ".json":
                data = json.loads(text)
            else:
                data = parse_dotenv(text)
        except (yaml.YAMLError, ValueError) as exc:
            raise BindError(f"bind file {location} is not valid: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise BindError(f"bind file {location} must hold a mapping at its top level")
        return data


def parse_dotenv(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values
