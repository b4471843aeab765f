"""YAML → plain Python data, remembering where every node came from.

Hostile input is refused with a located error: files over MAX_BYTES, text that is not UTF-8,
several documents, custom tags, duplicate keys, nesting beyond MAX_DEPTH (the C composer would
crash the process), and alias expansion beyond MAX_NODES (the "billion laughs" pattern).
Values are built straight from the parser's events: one pass, positions recorded on the way.
Only the JSON-compatible core of YAML is produced.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from .diagnostics import Diagnostic, JsonPath, format_path

MAX_BYTES = 10 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 200
_INTERNED = 16  # short texts (`string`, `GET`, `query`…) recur in every file: kept once

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_scalars = yaml.constructor.SafeConstructor()
_resolver = yaml.resolver.Resolver()
_TAG = "tag:yaml.org,2002:"
# first characters of the plain scalars an implicit resolver may type (numbers, booleans, null…)
_PLAIN_RESOLVED = frozenset(k for k in _resolver.yaml_implicit_resolvers if k is not None) | {""}
assert None not in _resolver.yaml_implicit_resolvers  # no resolver for any first character
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

    def diagnostic(self, severity: str, message: str, path: JsonPath, origin: str = "semantic") -> Diagnostic:
        line, column = self.position(path)
        return Diagnostic(severity, message, self.file, line, column, format_path(path), origin)  # type: ignore[arg-type]


class YamlError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic
        super().__init__(str(diagnostic))


def parse_yaml(raw: bytes, file: str) -> YamlSource:
    """Parse one YAML document; raise YamlError with a located, one-line reason."""
    if len(raw) > MAX_BYTES:
        raise YamlError(
            Diagnostic("error", f"file is {len(raw):,} bytes; the limit is {MAX_BYTES:,}", file, 1, 1, origin="yaml")
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlError(
            Diagnostic("error", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", file, line, column, origin="yaml")
        ) from None
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        raise YamlError(Diagnostic("error", "binary content (NUL byte) in a YAML file", file, line, 1, origin="yaml"))
    source = YamlSource(file, None)
    try:
        source.data = _Builder(source).build(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(" ".join(str(p).split()) for p in (exc.context, exc.problem) if p)
        if "maximum nesting depth" in reason:  # PyYAML ≥ 6.0.3's own bound, met before ours in flow style
            reason = f"nesting deeper than {MAX_DEPTH} levels"
            raise YamlError(Diagnostic("error", reason, file, line, column, origin="yaml")) from None
        raise YamlError(Diagnostic("error", f"malformed YAML: {reason}", file, line, column, origin="yaml")) from None
    except yaml.reader.ReaderError as exc:  # a control character YAML forbids: not a MarkedYAMLError
        offset = exc.position if isinstance(exc.position, int) and 0 <= exc.position <= len(text) else 0
        line, column = text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise YamlError(
            Diagnostic(
                "error",
                f"malformed YAML: control character U+{_code(exc.character):04X} is not allowed",
                file,
                line,
                column,
                origin="yaml",
            )
        ) from None
    except yaml.YAMLError as exc:
        raise YamlError(
            Diagnostic("error", "malformed YAML: " + " ".join(str(exc).split()), file, 1, 1, origin="yaml")
        ) from None
    return source


def _code(character: object) -> int:
    return character if isinstance(character, int) else ord(str(character)[:1] or "\0")


_NO_KEY = object()


class _Frame:
    __slots__ = ("value", "path", "key", "key_line", "seen", "size", "anchor")

    def __init__(self, value: dict | list, path: JsonPath, anchor: str | None):
        self.value = value
        self.path = path
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.seen: dict[str, int] = {}
        self.size = 1
        self.anchor = anchor


class _Builder:
    def __init__(self, source: YamlSource):
        self.source = source
        self.budget = MAX_NODES
        self.anchors: dict[str, tuple[Any, int]] = {}  # value, node count
        self.stack: list[_Frame] = []
        self.documents = 0
        self.root: Any = None

    def fail(self, event: yaml.Event, message: str, path: JsonPath = ()) -> YamlError:
        mark = event.start_mark
        return YamlError(
            Diagnostic(
                "error", message, self.source.file, mark.line + 1, mark.column + 1, format_path(path), origin="yaml"
            )
        )

    def build(self, events: Any) -> Any:
        for event in events:
            if isinstance(event, yaml.ScalarEvent):
                self.scalar(event)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                self.open(event)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = self.stack.pop()
                if frame.anchor:
                    self.anchors[frame.anchor] = (frame.value, frame.size)
                if self.stack:
                    self.stack[-1].size += frame.size
            elif isinstance(event, yaml.AliasEvent):
                self.alias(event)
            elif isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self.fail(event, "several YAML documents in one file; a capability file holds one")
        if self.documents == 0 or self.root is None:
            raise YamlError(
                Diagnostic(
                    "error", "the file is empty; expected a capability mapping", self.source.file, 1, 1, origin="yaml"
                )
            )
        return self.root

    def child_path(self, event: yaml.Event) -> JsonPath | None:
        """The path of the value this event starts, or None when it is a mapping key."""
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            return (*frame.path, len(frame.value))
        if frame.key is _NO_KEY:
            return None
        return (*frame.path, frame.key)

    def place(self, event: yaml.Event, value: Any, path: JsonPath, size: int) -> None:
        self.budget -= size
        if self.budget < 0:
            raise self.fail(event, f"document expands to more than {MAX_NODES:,} nodes (alias/anchor bomb?)", path)
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            frame.value.append(value)
        elif frame.key == "<<" and isinstance(value, dict):
            for key, item in value.items():
                frame.value.setdefault(key, item)
            frame.key = _NO_KEY
        else:
            frame.value[frame.key] = value
            frame.key = _NO_KEY
        frame.size += size

    def scalar(self, event: yaml.ScalarEvent) -> None:
        path = self.child_path(event)
        if path is None:
            # Keys stay as written (`200:` is "200", `<<` is the merge key); JSON keys are text.
            frame = self.stack[-1]
            key = sys.intern(event.value)  # the same few keys in every file: one string each
            if key in frame.seen:
                raise self.fail(
                    event, f"duplicate key {key!r} (first defined at line {frame.seen[key]})", (*frame.path, key)
                )
            frame.seen[key] = event.start_mark.line + 1
            frame.key = key
            return
        value = self.scalar_value(event, path)
        self.source.positions[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)
        self.place(event, value, path, 1)

    def scalar_value(self, event: yaml.ScalarEvent, path: JsonPath) -> Any:
        tag = event.tag
        if tag is None and (not event.implicit[0] or event.value[:1] not in _PLAIN_RESOLVED):
            value = event.value  # quoted, or plain text no implicit type can start with: a string
            return sys.intern(value) if len(value) <= _INTERNED else value
        if tag is None or tag == "!":
            tag = _resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        builder = _SCALAR_BUILDERS.get(tag)
        if builder is None:
            raise self.fail(event, f"unsupported YAML tag {tag!r}", path)
        try:
            return builder(yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark))
        except (ValueError, IndexError, KeyError, yaml.YAMLError):  # `!!int` with no value, `!!bool maybe`
            raise self.fail(event, f"invalid {tag.removeprefix(_TAG)} value {event.value!r}", path) from None

    def open(self, event: yaml.CollectionStartEvent) -> None:
        path = self.child_path(event)
        if path is None:
            raise self.fail(event, "mapping keys must be plain scalars", self.stack[-1].path)
        expected = _TAG + ("map" if isinstance(event, yaml.MappingStartEvent) else "seq")
        if event.tag not in (None, "!", expected):
            raise self.fail(event, f"unsupported YAML tag {event.tag!r}", path)
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(event, f"nesting deeper than {MAX_DEPTH} levels", path)
        self.source.positions[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
        value: dict | list = {} if isinstance(event, yaml.MappingStartEvent) else []
        self.place(event, value, path, 0)
        self.stack.append(_Frame(value, path, event.anchor))

    def alias(self, event: yaml.AliasEvent) -> None:
        path = self.child_path(event)
        if path is None:
            raise self.fail(event, "aliases cannot be mapping keys", self.stack[-1].path)
        if event.anchor not in self.anchors:
            open_anchors = {f.anchor for f in self.stack}
            problem = "recursive alias" if event.anchor in open_anchors else "unknown alias"
            raise self.fail(event, f"{problem} *{event.anchor}", path)
        value, size = self.anchors[event.anchor]
        self.source.positions[path] = (event.start_mark.line + 1, event.start_mark.column + 1)
        self.place(event, value, path, size)
