"""MCP resources and prompts: the tables built once from the exposures, and reading them.

Static resources are files (`location: file://`, relative to the capability file) read with
path-traversal checks; dynamic resources call a consumed operation with the URI's variables.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..engine.capability import Capability, Target
from ..engine.inputs import InputRef, Literal
from ..engine.results import DryRun, InvalidInput, Result, Success, result_as_json
from ..json_text import dumps_text
from ..templates import MISSING
from .mcp_jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, JsonRpcError

_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_EXTRA_MIME_TYPES = {
    ".md": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".json": "application/json",
}


@dataclass(frozen=True, slots=True)
class StaticResource:
    uri: str
    root: Path  # a file, or a directory: one resource per file under it
    mime_type: str | None  # declared; else guessed per file


@dataclass(frozen=True, slots=True)
class DynamicResource:
    uri: str
    pattern: re.Pattern[str] | None  # None: the uri is matched exactly
    variables: tuple[str, ...]  # the pattern's groups, in order
    capability: Capability
    target: Target  # the consumed operation it calls
    wiring: Mapping[str, Any]
    accepted: frozenset[str]  # the operation's input names
    mime_type: str
    listing: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Prompt:
    listing: dict[str, Any]
    messages: tuple[tuple[str, str], ...]  # (role, text with {{argument}} placeholders)


def local_path(capability: Capability, location: str) -> Path:
    """`file://` locations: relative paths are relative to the capability file."""
    path = location.removeprefix("file://")
    return (Path(capability.file).parent / unquote(path)).resolve()


def static_files(uri: str, root: Path) -> list[tuple[str, Path]]:
    if root.is_file():
        return [(uri, root)]
    if not root.is_dir():
        return []
    files = (p for p in sorted(root.rglob("*")) if p.is_file() and p.resolve().is_relative_to(root))
    return [(f"{uri}/{p.relative_to(root).as_posix()}", p) for p in files]


def guess_mime_type(path: Path) -> str:
    return (
        _EXTRA_MIME_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )


def safe_child(root: Path, relative: str, uri: str) -> Path:
    """`relative` (the end of `uri`) under `root`, or -32602: each segment is a plain name and the
    result stays inside."""
    segments = relative.split("/")
    path = root.joinpath(*segments).resolve()
    if not all(_SAFE_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments) or not path.is_relative_to(root):
        raise JsonRpcError(INVALID_PARAMS, f"Invalid params: resource URI escapes its directory: {relative}")
    if not path.is_file():
        raise JsonRpcError(INVALID_PARAMS, f"Resource not found: {uri}", {"uri": uri})
    return path


def read_file(uri: str, path: Path, mime_type: str | None) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JsonRpcError(INTERNAL_ERROR, f"Internal error: cannot read resource {uri}: {exc.strerror}") from None
    contents: dict[str, Any] = {"uri": uri, "mimeType": mime_type or guess_mime_type(path)}
    try:
        contents["text"] = data.decode("utf-8")
    except UnicodeDecodeError:
        contents["blob"] = base64.b64encode(data).decode()
    return contents


def resource_arguments(resource: DynamicResource, captured: Mapping[str, str]) -> dict[str, Any]:
    """The consumed operation's inputs: URI variables plus the resource's `with`, limited to
    what the operation takes (a URI variable used only by `with` is not an upstream input)."""
    values: dict[str, Any] = dict(captured)
    for name, source in resource.wiring.items():
        if isinstance(source, InputRef):
            value = captured.get(source.name, MISSING)
        elif isinstance(source, Literal):
            value = source.value
        else:
            value = source.render(lambda n: captured.get(n, MISSING))
        if value is not MISSING:
            values[name] = value
    return {k: v for k, v in values.items() if k in resource.accepted}


def resource_contents(uri: str, mime_type: str, result: Result) -> dict[str, Any]:
    if isinstance(result, Success):
        text = result.body if isinstance(result.body, str) else dumps_text(result.body)
    elif isinstance(result, DryRun):
        text = dumps_text(result.request)
    elif isinstance(result, InvalidInput):
        raise JsonRpcError(INVALID_PARAMS, f"Invalid resource URI {uri}: {result.reason}")
    else:
        raise JsonRpcError(INTERNAL_ERROR, f"Internal error: resource {uri} could not be read", result_as_json(result))
    return {"uri": uri, "mimeType": mime_type, "text": text}
