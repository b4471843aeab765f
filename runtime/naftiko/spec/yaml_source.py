"""YAML → plain Python data, remembering where every node came from.

Hostile input is refused with a located error: files over MAX_BYTES, text that is not UTF-8,
several documents, custom tags, duplicate keys, and alias expansion beyond MAX_NODES (the
"billion laughs" pattern). Only the JSON-compatible core of YAML is produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .diagnostics import Diagnostic, JsonPath, format_path

MAX_BYTES = 10 * 1024 * 1024
MAX_NODES = 200_000

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_scalars = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"
_SCALAR_BUILDERS = {
    _TAG + "str": lambda node: node.value,
    _TAG + "null": lambda node: None,
    _TAG + "bool": _scalars.construct_yaml_bool,
    _TAG + "int": _scalars.construct_yaml_int,
    _TAG + "float": _scalars.construct_yaml_float,
    # Dates stay text: capability files are JSON data, and the schema expects strings.
    _TAG + "timestamp": lambda node: node.value,
}


@dataclass
class YamlSource:
    """Parsed data plus the (line, column) of every node, both 1-based, keyed by JSON path."""

    file: str
    data: Any
    positions: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)

    def position(self, path: JsonPath) -> tuple[int, int]:
        """Where `path` is, or its nearest ancestor that exists (a missing key points at its parent)."""
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))

    def diagnostic(self, severity: str, message: str, path: JsonPath) -> Diagnostic:
        line, column = self.position(path)
        return Diagnostic(severity, message, self.file, line, column, format_path(path))  # type: ignore[arg-type]


class YamlError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(str(diagnostic))


def parse_yaml(raw: bytes, file: str) -> YamlSource:
    """Parse one YAML document; raise YamlError with a located, one-line reason."""
    if len(raw) > MAX_BYTES:
        raise YamlError(Diagnostic("error", f"file is {len(raw):,} bytes; the limit is {MAX_BYTES:,}", file, 1, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlError(Diagnostic("error", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", file, line, column)) from None
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        raise YamlError(Diagnostic("error", "binary content (NUL byte) in a YAML file", file, line, 1))
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise YamlError(Diagnostic("error", f"malformed YAML: {reason}", file, line, column)) from None
    except yaml.YAMLError as exc:
        raise YamlError(Diagnostic("error", f"malformed YAML: {exc}", file, 1, 1)) from None
    source = YamlSource(file, None)
    if root is None:
        raise YamlError(Diagnostic("error", "the file is empty; expected a capability mapping", file, 1, 1))
    source.data = _Builder(source).build(root, ())
    return source


class _Builder:
    def __init__(self, source: YamlSource):
        self.source = source
        self.budget = MAX_NODES

    def fail(self, node: yaml.Node, message: str, path: JsonPath) -> YamlError:
        mark = node.start_mark
        return YamlError(Diagnostic("error", message, self.source.file, mark.line + 1, mark.column + 1, format_path(path)))

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.fail(node, f"document expands to more than {MAX_NODES:,} nodes (alias/anchor bomb?)", path)
        self.source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            builder = _SCALAR_BUILDERS.get(node.tag)
            if builder is None:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r}", path)
            try:
                return builder(node)
            except (ValueError, yaml.YAMLError):
                raise self.fail(node, f"invalid {node.tag.removeprefix(_TAG)} value {node.value!r}", path) from None
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + "seq":
                raise self.fail(node, f"unsupported YAML tag {node.tag!r}", path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag != _TAG + "map":
            raise self.fail(node, f"unsupported YAML tag {node.tag!r}", path)
        return self.build_mapping(node, path)

    def build_mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "mapping keys must be plain scalars", path)
            key = str(self.build(key_node, (*path, "<key>")))
            if key in first_seen:
                raise self.fail(key_node, f"duplicate key {key!r} (first defined at line {first_seen[key]})", (*path, key))
            first_seen[key] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*path, key))
        self.source.positions.pop((*path, "<key>"), None)
        for source_node in merged:
            if not isinstance(source_node, yaml.MappingNode):
                raise self.fail(source_node, "a merge key (<<) must reference a mapping", path)
            for key, value in self.build_mapping(source_node, path).items():
                result.setdefault(key, value)
        return result
