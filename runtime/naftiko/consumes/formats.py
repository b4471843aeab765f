"""Upstream response bodies to JSON-compatible values, per `outputRawFormat` (semantics §3.6).

`check_format` and `decoder_for` run once, when a capability is loaded; the returned decoder
runs per response and only parses. Every decoder answers `None` for an empty (or blank) body,
and raises `BodyDecodeError` for a body that is not valid in its format.

Choices where the reference (Jackson, jsoup, commonmark) leaves room:

* xml: root element dropped; attributes and child elements become fields (attributes
  first), repeated names become arrays, leaves are strings (verbatim; whitespace-only → "").
  An element with attributes or children *and* non-blank text keeps the stripped text under
  the key "" (Jackson's convention): `<price cur="EUR">9</price>` → {"cur": "EUR", "": "9"}.
  A text-only root gives {"": text}. Namespaces are dropped (local names). Any entity
  declaration is refused, which rules out billion-laughs and external entities outright.
* csv/tsv/psv: blank lines skipped; a short row is padded with "", a long row is an error.
* yaml: YAML 1.1 safe types, but dates stay strings, mapping keys are their source text,
  `.nan`/`.inf` stay text; nesting, aliases to collections and recursive aliases are bounded.
* html: stdlib `html.parser`; selectors support `tag`, `*`, `.class`, `#id` (compound, e.g.
  `table.products#main`), the descendant and `>` combinators and `,` groups.
* markdown: fenced code counts as section text (commonmark's visitor drops it); list items
  are separated by newlines.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser
from typing import Any
from xml.parsers import expat

import yaml

from .. import json_text

Decoder = Callable[[bytes, str | None], Any]

SUPPORTED_FORMATS: frozenset[str] = frozenset({"json", "xml", "csv", "tsv", "psv", "yaml", "text", "html", "markdown"})
_BINARY_FORMATS = frozenset({"avro", "protobuf"})
_DELIMITERS = {"csv": ",", "tsv": "\t", "psv": "|"}
_MAX_DEPTH = 256
_MAX_YAML_COLLECTION_ALIASES = 50  # SnakeYAML's default, the YAML parser under the reference


class UnsupportedFormat(ValueError):
    """An `outputRawFormat` this runtime cannot convert."""

    def __init__(self, fmt: str) -> None:
        label = fmt.strip().lower()
        why = ": binary decoding is not implemented" if label in _BINARY_FORMATS else ""
        supported = ", ".join(sorted(SUPPORTED_FORMATS))
        super().__init__(f'unsupported outputRawFormat "{fmt}"{why} (supported: {supported})')
        self.format = fmt


class BodyDecodeError(ValueError):
    """A response body that is not valid in its declared format."""


def check_format(fmt: str | None) -> str:
    """The normalised format label ('json' when absent); raises UnsupportedFormat."""
    if fmt is None:
        return "json"
    label = str(fmt).strip().lower()
    if label not in SUPPORTED_FORMATS:
        raise UnsupportedFormat(str(fmt))
    return label


def decoder_for(fmt: str | None, selector: str | None = None) -> Decoder:
    """A `(body, charset) -> value` function for `fmt`; `selector` is the `outputSchema`.

    Raises UnsupportedFormat, or ValueError for an html selector outside the supported subset.
    """
    parse = _parser_for(check_format(fmt), selector)

    def decode(body: bytes, charset: str | None) -> Any:
        text = _decode_text(body, charset)
        return parse(text) if text.strip() else None

    return decode


def _parser_for(label: str, selector: str | None) -> Callable[[str], Any]:
    if label == "json":
        return _parse_json
    if label == "text":
        return str
    if label == "xml":
        return _parse_xml
    if label == "yaml":
        return _load_yaml
    if label == "html":
        return partial(_parse_html, selector=_compile_selector(selector))
    if label == "markdown":
        return partial(_parse_markdown, prefix=selector if selector and selector.strip() else None)
    return partial(_parse_delimited, label=label, delimiter=_DELIMITERS[label])


def _decode_text(body: bytes, charset: str | None) -> str:
    text = body.decode(_codec_name(charset), errors="replace")
    return text.removeprefix("\ufeff")


def _codec_name(charset: str | None) -> str:
    """The Content-Type charset if Python knows it, else utf-8."""
    if charset:
        try:
            return codecs.lookup(charset.strip().strip("\"'")).name
        except LookupError:
            pass
    return "utf-8"


def _invalid(label: str, reason: str) -> BodyDecodeError:
    return BodyDecodeError(f"invalid {label} body: {reason}")


# --- json -------------------------------------------------------------------------------


def _parse_json(text: str) -> Any:
    try:
        return json_text.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _invalid("json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        raise _invalid("json", "nesting is too deep") from None


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are Python extensions that no JSON consumer downstream accepts."""
    raise _invalid("json", f"{name} is not valid JSON")


# --- xml --------------------------------------------------------------------------------


@dataclass(slots=True)
class _XmlFrame:
    fields: dict[str, Any]
    text: list[str] = field(default_factory=list)


class _XmlTreeBuilder:
    """Builds the Jackson-like tree from expat events, iteratively (no recursion)."""

    def __init__(self) -> None:
        self._open: list[tuple[str, _XmlFrame]] = []
        self.result: dict[str, Any] = {}

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if len(self._open) >= _MAX_DEPTH:
            raise _invalid("xml", f"elements nested deeper than {_MAX_DEPTH} levels")
        frame = _XmlFrame({})
        for key, value in attributes.items():
            _add_field(frame.fields, _local_name(key), value)
        self._open.append((_local_name(name), frame))

    def data(self, text: str) -> None:
        if self._open:
            self._open[-1][1].text.append(text)

    def end(self, _name: str) -> None:
        name, frame = self._open.pop()
        text = "".join(frame.text)
        if not self._open:
            self.result = _with_text(frame.fields, text)
        elif frame.fields:
            _add_field(self._open[-1][1].fields, name, _with_text(frame.fields, text))
        else:
            _add_field(self._open[-1][1].fields, name, text if text.strip() else "")


def _local_name(name: str) -> str:
    """expat reports namespaced names as 'uri local' (separator set in _parse_xml)."""
    return name.rpartition(" ")[2]


def _add_field(fields: dict[str, Any], key: str, value: Any) -> None:
    """Repeated keys become arrays. Values are only ever str or dict, so a list is a repeat."""
    if key not in fields:
        fields[key] = value
    elif isinstance(fields[key], list):
        fields[key].append(value)
    else:
        fields[key] = [fields[key], value]


def _with_text(fields: dict[str, Any], text: str) -> dict[str, Any]:
    if text.strip():
        _add_field(fields, "", text.strip())
    return fields


def _refuse_entity_declaration(name: str, *_details: Any) -> None:
    raise _invalid("xml", f'entity declarations are not allowed (found "{name}")')


def _parse_xml(text: str) -> dict[str, Any]:
    builder = _XmlTreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _refuse_entity_declaration
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise _invalid("xml", str(exc)) from exc
    return builder.result


# --- csv / tsv / psv --------------------------------------------------------------------


def _parse_delimited(text: str, *, label: str, delimiter: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise _invalid(label, f"{exc} (line {reader.line_num})") from exc
    header, records = rows[0], rows[1:]
    for number, row in enumerate(records, start=2):
        if len(row) > len(header):
            raise _invalid(label, f"row {number} has {len(row)} fields, header has {len(header)}")
    return [dict(zip(header, row + [""] * (len(header) - len(row)))) for row in records]


# --- yaml -------------------------------------------------------------------------------

_BaseSafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _JsonYamlLoader(_BaseSafeLoader):  # type: ignore[misc, valid-type]
    """Safe loader whose results are JSON-compatible: str keys, no dates, sets, bytes or NaN."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in _BaseSafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(None, None, "mapping keys must be scalars", key_node.start_mark)
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping


def _construct_finite_float(loader: _JsonYamlLoader, node: yaml.ScalarNode) -> float | str:
    value = loader.construct_yaml_float(node)
    return value if math.isfinite(value) else node.value


_JsonYamlLoader.add_constructor(_TIMESTAMP_TAG, _BaseSafeLoader.construct_scalar)
_JsonYamlLoader.add_constructor("tag:yaml.org,2002:binary", _BaseSafeLoader.construct_scalar)
_JsonYamlLoader.add_constructor("tag:yaml.org,2002:float", _construct_finite_float)
_JsonYamlLoader.add_constructor("tag:yaml.org,2002:set", _BaseSafeLoader.construct_yaml_map)
_JsonYamlLoader.add_constructor("tag:yaml.org,2002:omap", _BaseSafeLoader.construct_yaml_seq)
_JsonYamlLoader.add_constructor("tag:yaml.org,2002:pairs", _BaseSafeLoader.construct_yaml_seq)


def _load_yaml(text: str, label: str = "yaml", where: str = "") -> Any:
    try:
        _check_yaml_shape(text, label)
        return yaml.load(text, Loader=_JsonYamlLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise _invalid(label, where + _yaml_reason(exc)) from exc
    except RecursionError:
        raise _invalid(label, where + "nesting is too deep") from None


def _check_yaml_shape(text: str, label: str) -> None:
    """Bound nesting and aliases before composing.

    The C composer recurses without a limit (a deep enough document crashes the process), and
    aliases to collections can expand exponentially once the value is serialised as JSON.
    """
    open_anchors: list[str | None] = []
    collection_anchors: set[str] = set()
    aliases = 0
    for event in yaml.parse(text, Loader=_BaseSafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_anchors) >= _MAX_DEPTH:
                raise _invalid(label, f"collections nested deeper than {_MAX_DEPTH} levels")
            open_anchors.append(event.anchor)
            if event.anchor:
                collection_anchors.add(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            open_anchors.pop()
        elif isinstance(event, yaml.AliasEvent) and event.anchor in collection_anchors:
            if event.anchor in open_anchors:
                raise _invalid(label, f'recursive alias "*{event.anchor}"')
            aliases += 1
            if aliases > _MAX_YAML_COLLECTION_ALIASES:
                limit = _MAX_YAML_COLLECTION_ALIASES
                raise _invalid(label, f"more than {limit} collection aliases")


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """The problem and its position, without the snippet of the body PyYAML may add."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and "maximum nesting depth" in problem:  # PyYAML ≥ 6.0.3's own bound, met before ours in flow style
        problem = f"collections nested deeper than {_MAX_DEPTH} levels"
    if problem and mark:
        return f"{problem} at line {mark.line + 1} column {mark.column + 1}"
    return str(problem or exc)


# --- tables shared by html and markdown -------------------------------------------------


def _table_objects(headers: list[str], rows: list[list[str]]) -> list[dict[str, str]] | None:
    """Rows as header→cell objects (missing cells ""); None when every header is blank."""
    if not any(headers):
        return None
    return [{h: row[k] if k < len(row) else "" for k, h in enumerate(headers)} for row in rows]


# --- html -------------------------------------------------------------------------------

_VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_RAW_TEXT_TAGS = frozenset({"script", "style", "template"})
_INLINE_TAGS = frozenset(
    "a abbr b bdi bdo cite code data dfn em font i kbd mark q s samp small span strong sub sup time u var".split()
)
# Opening one of these closes open elements up to the nearest listed parent (HTML's implied
# end tags for tables), never past the enclosing <table>.
_TABLE_PARENTS = {
    "td": frozenset({"tr"}),
    "th": frozenset({"tr"}),
    "tr": frozenset({"thead", "tbody", "tfoot", "table"}),
    "thead": frozenset({"table"}),
    "tbody": frozenset({"table"}),
    "tfoot": frozenset({"table"}),
}
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


@dataclass(eq=False, slots=True)
class _Node:
    tag: str
    attrs: dict[str, str]
    parent: _Node | None
    children: list[_Node | str] = field(default_factory=list)
    classes: frozenset[str] = frozenset()

    def lineage(self) -> Iterator[_Node]:
        """This node, then its ancestors."""
        node: _Node | None = self
        while node is not None:
            yield node
            node = node.parent


class _HtmlTreeBuilder(HTMLParser):
    """A forgiving DOM: enough of HTML's implied end tags to get tables right."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.nodes: list[_Node] = []  # document order
        self._open: list[_Node] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._close_implied(tag)
        parent = self._open[-1] if self._open else None
        values = {name: value or "" for name, value in attrs}
        node = _Node(tag, values, parent, classes=frozenset(values.get("class", "").split()))
        if parent is not None:
            parent.children.append(node)
        self.nodes.append(node)
        if tag not in _VOID_TAGS:
            self._open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1].tag not in _RAW_TEXT_TAGS:
            self._open[-1].children.append(data)

    def _close_implied(self, tag: str) -> None:
        parents = _TABLE_PARENTS.get(tag)
        if parents is None:
            return
        for index in range(len(self._open) - 1, -1, -1):
            open_tag = self._open[index].tag
            if open_tag in parents:
                del self._open[index + 1 :]
                return
            if open_tag == "table":
                return


@dataclass(frozen=True, slots=True)
class _Compound:
    tag: str | None
    ids: tuple[str, ...]
    classes: frozenset[str]

    def matches(self, node: _Node) -> bool:
        return (
            (self.tag is None or node.tag == self.tag)
            and all(node.attrs.get("id") == ident for ident in self.ids)
            and self.classes <= node.classes
        )


@dataclass(frozen=True, slots=True)
class _Complex:
    """Compounds left to right; combinators[k] joins compounds[k] and compounds[k + 1]."""

    compounds: tuple[_Compound, ...]
    combinators: tuple[str, ...]

    def matches(self, node: _Node, last: int | None = None) -> bool:
        k = len(self.compounds) - 1 if last is None else last
        if not self.compounds[k].matches(node):
            return False
        if k == 0:
            return True
        if self.combinators[k - 1] == ">":
            return node.parent is not None and self.matches(node.parent, k - 1)
        ancestors = node.lineage()
        next(ancestors)  # the node itself
        return any(self.matches(ancestor, k - 1) for ancestor in ancestors)


@dataclass(frozen=True, slots=True)
class _Selector:
    groups: tuple[_Complex, ...]

    def matches(self, node: _Node) -> bool:
        return any(group.matches(node) for group in self.groups)


_COMPOUND = re.compile(r"(\*|[A-Za-z][\w-]*)?((?:[.#][\w-]+)*)")
_SIMPLE = re.compile(r"([.#])([\w-]+)")
_COMBINATOR = re.compile(r"\s*(>)\s*|\s+")


def _compile_selector(source: str | None) -> _Selector | None:
    """None (all tables) for a blank selector; ValueError outside the supported subset."""
    if source is None or not source.strip():
        return None
    return _Selector(tuple(_compile_complex(part, source) for part in source.split(",")))


def _compile_complex(part: str, source: str) -> _Complex:
    tokens = _COMBINATOR.split(part.strip())
    compounds = tuple(_compile_compound(token, source) for token in tokens[::2])
    combinators = tuple(token or " " for token in tokens[1::2])
    return _Complex(compounds, combinators)


def _compile_compound(token: str, source: str) -> _Compound:
    match = _COMPOUND.fullmatch(token)
    if not token or match is None:
        raise ValueError(
            f'unsupported CSS selector "{source}" (supported: tag, *, .class, #id, '
            'combined like table.x#y, descendant " " and child ">" combinators, "," groups)'
        )
    tag = match[1].lower() if match[1] and match[1] != "*" else None
    simples = _SIMPLE.findall(match[2])
    ids = tuple(name for kind, name in simples if kind == "#")
    classes = frozenset(name for kind, name in simples if kind == ".")
    return _Compound(tag, ids, classes)


def _parse_html(text: str, selector: _Selector | None) -> dict[str, list[list[dict[str, str]]]]:
    builder = _HtmlTreeBuilder()
    builder.feed(text)
    builder.close()
    rows_by_table = _rows_by_table(builder.nodes)
    selected = _select_tables(builder.nodes, selector)
    tables = (_html_table(rows_by_table.get(table, [])) for table in selected)
    return {"tables": [table for table in tables if table is not None]}


def _select_tables(nodes: list[_Node], selector: _Selector | None) -> list[_Node]:
    """Tables the selector matches, or that sit inside an element it matches."""
    tables = [node for node in nodes if node.tag == "table"]
    if selector is None:
        return tables
    matched = {node for node in nodes if selector.matches(node)}
    return [table for table in tables if any(node in matched for node in table.lineage())]


def _rows_by_table(nodes: list[_Node]) -> dict[_Node, list[_Node]]:
    """Each table's own rows (not those of tables nested in its cells), in document order."""
    rows: dict[_Node, list[_Node]] = {}
    for node in nodes:
        if node.tag == "tr":
            table = next((n for n in node.lineage() if n.tag == "table"), None)
            if table is not None:
                rows.setdefault(table, []).append(node)
    return rows


def _html_table(rows: list[_Node]) -> list[dict[str, str]] | None:
    body = [row for row in rows if _section(row) not in ("thead", "tfoot")] or rows
    values = []
    for row in body:
        cells = _cells(row)
        if cells and not any(cell.tag == "th" for cell in cells):
            values.append([_text(cell) for cell in cells])
    return _table_objects(_html_headers(rows), values)


def _html_headers(rows: list[_Node]) -> list[str]:
    """The th cells of the first thead row, else of the table's first row."""
    head = [row for row in rows if _section(row) == "thead"]
    for candidate in (head[:1], rows[:1]):
        headers = [_text(cell) for row in candidate for cell in _cells(row) if cell.tag == "th"]
        if headers:
            return headers
    return []


def _section(row: _Node) -> str | None:
    return row.parent.tag if row.parent is not None else None


def _cells(row: _Node) -> list[_Node]:
    return [c for c in row.children if isinstance(c, _Node) and c.tag in ("td", "th")]


def _text(node: _Node) -> str:
    """Text content with whitespace collapsed; block elements and <br> separate words."""
    parts: list[str] = []
    pending: list[_Node | str] = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            parts.append(item)
        elif item.tag in _INLINE_TAGS:
            pending.extend(reversed(item.children))
        else:
            parts.append(" ")
            pending.append(" ")
            pending.extend(reversed(item.children))
    return _HTML_SPACE.sub(" ", "".join(parts)).strip()


# --- markdown ---------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"---[ \t]*\n(?:(.*?)\n)?---[ \t]*(?:\n|\Z)", re.S)
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_THEMATIC = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_QUOTE = re.compile(r"(?: {0,3}> ?)+")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_DELIMITER_ROW = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_MARKUP = (
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images
    (re.compile(r"!?\[([^\]]*)\]\[[^\]]*\]"), r"\1"),  # reference links
    (re.compile(r"<((?:https?|ftp|mailto):[^>\s]*)>"), r"\1"),  # autolinks
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), ""),  # inline html
    (re.compile(r"(?<!\\)(\*\*|__|~~)(?=\S)(.+?)(?<=[^\s\\])\1"), r"\2"),
    (re.compile(r"(?<![\\*])\*(?=[^\s*])(.+?)(?<=[^\s\\])\*"), r"\1"),
    (re.compile(r"(?<![\\\w])_(?=\S)(.+?)(?<=[^\s\\])_(?!\w)"), r"\1"),
    (re.compile(r"\\([!-/:-@\[-`{-~])"), r"\1"),  # backslash escapes
)

_Block = tuple[str, Any]  # ("heading", (level, text)) | ("table", rows | None) | ("text", str)


def _parse_markdown(text: str, prefix: str | None) -> dict[str, Any]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    front_matter: Any = {}
    match = _FRONT_MATTER.match(text)
    if match:
        front_matter = _load_yaml(match[1] or "", "markdown", "front matter: ")
        text = text[match.end() :]
    tables: list[list[dict[str, str]]] = []
    sections: list[dict[str, Any]] = []
    for kind, value in _markdown_blocks(text.split("\n")):
        if kind == "heading":
            sections.append({"heading": value[1], "level": value[0], "content": ""})
        elif kind == "table":
            if value is not None:
                tables.append(value)
        elif sections and value:
            content = sections[-1]["content"]
            sections[-1]["content"] = f"{content}\n{value}" if content else value
    return {
        "frontMatter": front_matter if isinstance(front_matter, dict) else {},
        "tables": tables,
        "sections": [s for s in sections if prefix is None or s["heading"].startswith(prefix)],
    }


def _markdown_blocks(lines: list[str]) -> Iterator[_Block]:
    """Top-level blocks: headings, GFM tables and the text of everything else."""
    paragraph: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.fullmatch(line)
        if fence and not (fence[1][0] == "`" and "`" in fence[2]):
            yield ("text", _block_text(paragraph))
            code, i = _read_fence(lines, i + 1, fence[1])
            yield ("text", code)
            continue
        atx = _ATX.fullmatch(line)
        if atx:
            yield ("text", _block_text(paragraph))
            yield ("heading", (len(atx[1]), _inline_text(atx[2] or "")))
        elif paragraph and _SETEXT.fullmatch(line) and not _is_container_line(paragraph[0]):
            level = 1 if line.strip()[0] == "=" else 2
            yield ("heading", (level, _inline_text(" ".join(s.strip() for s in paragraph))))
            paragraph.clear()
        elif not line.strip() or _THEMATIC.fullmatch(line):
            yield ("text", _block_text(paragraph))
        elif i + 1 < len(lines) and _is_table_start(line, lines[i + 1]):
            yield ("text", _block_text(paragraph))
            rows, i = _read_table(lines, i)
            yield ("table", rows)
            continue
        else:
            paragraph.append(line)
        i += 1
    yield ("text", _block_text(paragraph))


def _is_container_line(line: str) -> bool:
    return bool(_QUOTE.match(line) or _LIST_ITEM.match(line))


def _read_fence(lines: list[str], start: int, opener: str) -> tuple[str, int]:
    """The code up to the closing fence (or the end), and the index after it."""
    closing = re.compile(rf" {{0,3}}{re.escape(opener[0])}{{{len(opener)},}}[ \t]*")
    end = start
    while end < len(lines) and not closing.fullmatch(lines[end]):
        end += 1
    return "\n".join(lines[start:end]).strip(), end + 1


def _block_text(paragraph: list[str]) -> str:
    """Plain text of a paragraph, list or quote (consumes the lines).

    List items, hard breaks and the start or end of a quote begin a new line.
    """
    text = ""
    hard_break = False
    quoted = False
    for raw in paragraph:
        quote = _QUOTE.match(raw)
        line = raw[quote.end() :] if quote else raw
        item = _LIST_ITEM.match(line)
        content = (line[item.end() :] if item else line).strip()
        separator = "\n" if hard_break or item or quoted != bool(quote) else " "
        quoted = bool(quote)
        hard_break = line.endswith("  ") or content.endswith("\\")
        content = content.removesuffix("\\").rstrip() if content.endswith("\\") else content
        text = f"{text}{separator}{content}" if text else content
    paragraph.clear()
    return _inline_text(text)


def _is_table_start(line: str, next_line: str) -> bool:
    return (
        "|" in line
        and _DELIMITER_ROW.fullmatch(next_line) is not None
        and len(_split_row(line)) == len(_split_row(next_line))
    )


def _read_table(lines: list[str], start: int) -> tuple[list[dict[str, str]] | None, int]:
    """A GFM table from its header line; ends at a blank line or the start of another block."""
    headers = [_inline_text(cell) for cell in _split_row(lines[start])]
    rows = []
    end = start + 2
    while end < len(lines) and lines[end].strip() and not _starts_block(lines[end]):
        rows.append([_inline_text(cell) for cell in _split_row(lines[end])])
        end += 1
    return _table_objects(headers, rows), end


def _starts_block(line: str) -> bool:
    return bool(_ATX.fullmatch(line) or _FENCE.fullmatch(line) or _QUOTE.match(line) or _THEMATIC.fullmatch(line))


def _split_row(line: str) -> list[str]:
    row = line.strip().removeprefix("|")
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(row)]


def _inline_text(text: str) -> str:
    """Inline markup removed, as commonmark's text nodes would give it; code spans verbatim."""
    parts = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        parts.append(_strip_markup(text[position : span.start()]))
        parts.append(_code_text(span[2]))
        position = span.end()
    parts.append(_strip_markup(text[position:]))
    return "".join(parts).strip()


def _strip_markup(text: str) -> str:
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text


def _code_text(code: str) -> str:
    code = code.replace("\n", " ")
    if len(code) >= 2 and code[0] == code[-1] == " " and code.strip():
        return code[1:-1]
    return code
