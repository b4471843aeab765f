"""Ended spans as an OTLP `ExportTraceServiceRequest`, in protobuf wire format, fast.

The SDK's encoder (`opentelemetry-exporter-otlp-proto-common`) builds a protobuf message object
per span, per attribute and per value before serializing them: about 40 µs a span on this
machine, more than the rest of an MCP call. Here the same message is written straight as bytes
(`trace.proto`, `common.proto`, `resource.proto` of opentelemetry-proto 1.x), and what repeats
from span to span (the resource and scope, span names, attribute pairs such as
`http.request.method=POST`) is encoded once and reused: a few µs a span. The output parses to
the very message the SDK's encoder builds for the same spans (tests/unit/test_otlp_encode.py
compares them), so any OTLP receiver reads it.

The spans are the runtime's own (spans.py): no events, no links, no dropped counts, a status
that is UNSET or ERROR without description, one resource and one scope per `Tracing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from struct import Struct
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

from .spans import LiveSpan, SharedAttributes

_IDS = Struct(">2sQQ2sQ").pack  # trace_id (field 1, 16 bytes big-endian), span_id (field 2)
_PARENT = Struct(">2sQ").pack  # parent_span_id (field 4)
_TIMES = Struct("<cQcQ").pack  # start and end (fields 7 and 8, fixed64)
_LOW64 = (1 << 64) - 1
_DOUBLE = Struct("<d").pack
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags
_SMALL = [bytes([n]) for n in range(128)]
_VALUES_KEPT = 256  # encoded pairs kept per attribute key, and span names kept
_KINDS = {kind: b"\x30" + bytes([kind.value + 1]) for kind in SpanKind}  # INTERNAL=0 is SPAN_KIND_INTERNAL=1…
_SERVER, _CLIENT = _KINDS[SpanKind.SERVER], _KINDS[SpanKind.CLIENT]  # looked up by identity: an Enum hashes in Python
_UNSET, _ERROR = b"\x7a\x00", b"\x7a\x02\x18\x02"  # Status{}, Status{code: STATUS_CODE_ERROR}
_LOCAL_FLAGS = b"\x85\x01" + Struct("<I").pack(_HAS_IS_REMOTE)  # field 16, fixed32
_REMOTE_FLAGS = b"\x85\x01" + Struct("<I").pack(_HAS_IS_REMOTE | _IS_REMOTE)
_UNSET_END, _ERROR_END = _UNSET + _LOCAL_FLAGS, _ERROR + _LOCAL_FLAGS  # a span's last two fields
_UNSET_REMOTE_END, _ERROR_REMOTE_END = _UNSET + _REMOTE_FLAGS, _ERROR + _REMOTE_FLAGS


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LENGTHS = [_varint(size) for size in range(16384)]  # a length of up to 16 KiB, as a varint
_SPAN_TAG = [b"\x12" + length for length in _LENGTHS]  # ScopeSpans.spans: the tag and a length


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the length, the payload."""
    return tag + _varint(len(payload)) + payload


def _text(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode("utf-8", "surrogatepass"))


def _any_value(value: Any) -> bytes | None:
    """AnyValue (a oneof: written even when it is the default); None for a type OTLP lacks."""
    if isinstance(value, str):
        return _text(b"\x0a", value)
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_key_value(b"\x0a", str(k), v) for k, v in value.items()))
    if isinstance(value, Sequence):
        items = [_any_value(item) for item in value]
        return _field(b"\x2a", b"".join(_field(b"\x0a", item) for item in items if item is not None))
    return None


def _key_value(tag: bytes, key: str, value: Any) -> bytes:
    """A KeyValue field at `tag`; empty for a value OTLP cannot carry."""
    encoded = _any_value(value)
    return b"" if encoded is None else _field(tag, _text(b"\x0a", key) + _field(b"\x12", encoded))


class SpanEncoder:
    """Encodes batches of ended spans of one resource and scope; keeps what repeats."""

    def __init__(self, resource: Resource, scope: InstrumentationScope):
        body = b"".join(_key_value(b"\x0a", key, value) for key, value in resource.attributes.items())
        self._resource = _field(b"\x0a", body)
        self._resource_schema = _text(b"\x1a", resource.schema_url) if resource.schema_url else b""
        scope_body = (_text(b"\x0a", scope.name) if scope.name else b"") + (
            _text(b"\x12", scope.version) if scope.version else b""
        )
        self._scope = _field(b"\x0a", scope_body)
        self._pairs: dict[tuple[str, type, Any], bytes] = {}
        self._values_seen: dict[str, int] = {}  # distinct values of each attribute key
        self._volatile: set[str] = set()  # keys with too many values to keep their pairs
        self._keys: dict[str, bytes] = {}  # KeyValue.key fields
        self._blocks: dict[int, tuple[SharedAttributes, bytes]] = {}  # id → (shared attributes, their fields)
        self._names: dict[str, bytes] = {}

    def request(self, spans: Sequence[bytes]) -> bytes:
        """The serialized `ExportTraceServiceRequest` of spans encoded by `spans`."""
        scope_spans = _field(b"\x12", self._scope + b"".join(spans))
        return _field(b"\x0a", self._resource + scope_spans + self._resource_schema)

    def spans(self, spans: Sequence[LiveSpan]) -> list[bytes]:
        """The `ScopeSpans.spans` field of each span, in order, for `request` (the exporter
        encodes spans a few at a time, soon after they end)."""
        get, names, pair_of, blocks = self._pairs.get, self._names, self._pair, self._blocks
        out = []
        for span in spans:
            trace_id = span.trace_id
            parts = [_IDS(b"\x0a\x10", trace_id >> 64, trace_id & _LOW64, b"\x12\x08", span.span_id)]
            if span.trace_state:
                parts.append(_text(b"\x1a", span.trace_state.to_header()))
            if span.parent_id:
                parts.append(_PARENT(b"\x22\x08", span.parent_id))
            name = names.get(span.name)
            attributes_at = len(parts) + 3
            kind = span.kind
            parts += (
                name or self._name(span.name),
                _SERVER if kind is SpanKind.SERVER else _CLIENT if kind is SpanKind.CLIENT else _KINDS[kind],
                _TIMES(b"\x39", span.start_time, b"\x41", span.end_time),
            )
            attributes = span.attributes
            if attributes.__class__ is SharedAttributes:
                block = blocks.get(id(attributes))
                parts.append(block[1] if block is not None and block[0] is attributes else self._block(attributes))
            else:
                try:
                    for key, value in attributes.items():
                        parts.append(get((key, value.__class__, value)) or pair_of(key, value))
                except TypeError:  # an unhashable value (a list): this span's attributes are not looked up
                    del parts[attributes_at:]
                    parts += (_key_value(b"\x4a", key, value) for key, value in attributes.items())
            if span.remote_parent:
                parts.append(_ERROR_REMOTE_END if span.error else _UNSET_REMOTE_END)
            else:
                parts.append(_ERROR_END if span.error else _UNSET_END)
            body = b"".join(parts)
            size = len(body)  # a span is 128 bytes to 16 KiB long: its length takes two bytes
            out.append(_SPAN_TAG[size] + body if size < 16384 else b"\x12" + _varint(size) + body)
        return out

    def _pair(self, key: str, value: Any) -> bytes:
        """A span attribute's KeyValue, kept for next time unless `key` has had too many values
        to be worth it (`url.full`, `url.path`: not kept, they would push out those that repeat)."""
        if value.__class__ is str and len(value) < 3000:  # most: lengths from the table, no calls
            raw = value.encode("utf-8", "surrogatepass")
            any_value = b"\x0a" + _LENGTHS[len(raw)] + raw
            key_value = (self._keys.get(key) or self._key(key)) + b"\x12" + _LENGTHS[len(any_value)] + any_value
            pair = b"\x4a" + _LENGTHS[len(key_value)] + key_value
        else:
            pair = _key_value(b"\x4a", key, value)
        if key in self._volatile:
            return pair
        seen = self._values_seen[key] = self._values_seen.get(key, 0) + 1
        if seen > _VALUES_KEPT:
            self._volatile.add(key)
            return pair
        self._pairs[key, value.__class__, value] = pair
        return pair

    def _block(self, attributes: SharedAttributes) -> bytes:
        """Shared attributes written once; kept with the mapping itself, so that its id cannot
        be another mapping's while the entry lives."""
        block = b"".join(_key_value(b"\x4a", key, value) for key, value in attributes.items())
        if len(self._blocks) >= _VALUES_KEPT:
            self._blocks.clear()
        self._blocks[id(attributes)] = (attributes, block)
        return block

    def _key(self, key: str) -> bytes:
        encoded = self._keys[key] = _text(b"\x0a", key)  # as many as attribute keys: a handful
        return encoded

    def _name(self, name: str) -> bytes:
        if len(self._names) >= _VALUES_KEPT:
            self._names.clear()
        encoded = self._names[name] = _text(b"\x2a", name)
        return encoded
