"""Finished spans as an OTLP `ExportTraceServiceRequest`, in protobuf wire format, fast.

The SDK's encoder (`opentelemetry-exporter-otlp-proto-common`) builds a protobuf message object
per span, per attribute and per value before serializing them: about 40 µs a span on this
machine, more than the rest of an MCP call. Here the same message is written straight as bytes
(`trace.proto`, `common.proto`, `resource.proto` of opentelemetry-proto 1.x), and what repeats
from span to span (the resource, the scope, attribute pairs such as `http.request.method=POST`)
is encoded once and reused: a few µs a span. The output parses to the very message the SDK's
encoder builds (tests/unit/test_otlp_encode.py compares them), so any OTLP receiver reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from struct import Struct
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

_FIXED64 = Struct("<Q").pack
_FIXED32 = Struct("<I").pack
_DOUBLE = Struct("<d").pack
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags
_SMALL = [bytes([n]) for n in range(128)]
_PAIR_CACHE_SIZE = 4096
_KINDS = {kind: b"\x30" + bytes([kind.value + 1]) for kind in SpanKind}  # INTERNAL=0 is SPAN_KIND_INTERNAL=1…
_STATUS = {code.value: b"\x7a\x02\x18" + bytes([code.value]) if code.value else b"\x7a\x00" for code in StatusCode}
_LOCAL_FLAGS = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)  # field 16, fixed32
_REMOTE_FLAGS = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the length, the payload."""
    return tag + _varint(len(payload)) + payload


def _text(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode("utf-8", "surrogatepass"))


# -- common.proto: AnyValue, KeyValue, InstrumentationScope --------------------------------------


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
        return _field(b"\x32", _key_values(value))
    if isinstance(value, Sequence):
        items = [_any_value(item) for item in value]
        return _field(b"\x2a", b"".join(_field(b"\x0a", item) for item in items if item is not None))
    return None


class _Pairs:
    """KeyValue fields (tag 9 of a Span, or any tag given) by (key, type, value), bounded."""

    def __init__(self) -> None:
        self.cache: dict[tuple[bytes, str, type, Any], bytes] = {}

    def encode(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        if not attributes:
            return b""
        cache = self.cache
        parts = []
        for key, value in attributes.items():
            try:
                cache_key = (tag, key, type(value), value)
                encoded = cache.get(cache_key)
            except TypeError:  # an unhashable value (a list): not cached
                cache_key, encoded = None, None
            if encoded is None:
                any_value = _any_value(value)
                if any_value is None:
                    continue
                encoded = _field(tag, _text(b"\x0a", key) + _field(b"\x12", any_value))
                if cache_key is not None:
                    if len(cache) >= _PAIR_CACHE_SIZE:
                        cache.clear()
                    cache[cache_key] = encoded
            parts.append(encoded)
        return b"".join(parts)


def _key_values(mapping: Mapping[str, Any]) -> bytes:
    """KeyValueList (`kvlist_value`): repeated KeyValue at tag 1."""
    return b"".join(
        _field(b"\x0a", _text(b"\x0a", str(key)) + _field(b"\x12", encoded))
        for key, value in mapping.items()
        if (encoded := _any_value(value)) is not None
    )


# -- trace.proto ---------------------------------------------------------------------------------


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE


def _trace_state(context: SpanContext) -> str:
    state = context.trace_state
    return ",".join(f"{key}={value}" for key, value in state.items()) if state else ""


class SpanEncoder:
    """Encodes batches of finished spans; keeps what repeats (one per exporter thread)."""

    def __init__(self) -> None:
        self._pairs = _Pairs()
        self._names: dict[str, bytes] = {}
        self._resources: dict[int, tuple[Any, bytes]] = {}  # id → (the resource, its field 1)
        self._scopes: dict[int, tuple[Any, bytes]] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized `ExportTraceServiceRequest` of `spans`, grouped by resource then scope."""
        groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
        for span in spans:
            resource, scope = span.resource, span.instrumentation_scope
            by_scope = groups.setdefault(id(resource), (resource, {}))[1]
            by_scope.setdefault(id(scope), (scope, []))[1].append(self.span(span))
        out = []
        for resource, by_scope in groups.values():
            body = [self._resource(resource)]
            for scope, encoded in by_scope.values():
                scope_body = self._scope(scope) + b"".join(_field(b"\x12", span) for span in encoded)
                schema = getattr(scope, "schema_url", None)
                if schema:
                    scope_body += _text(b"\x1a", schema)
                body.append(_field(b"\x12", scope_body))
            if resource.schema_url:
                body.append(_text(b"\x1a", resource.schema_url))
            out.append(_field(b"\x0a", b"".join(body)))
        return b"".join(out)

    def span(self, span: ReadableSpan) -> bytes:
        context = span.context
        parent = span.parent
        out = bytearray(b"\x0a\x10")
        out += context.trace_id.to_bytes(16, "big")
        out += b"\x12\x08"
        out += context.span_id.to_bytes(8, "big")
        if context.trace_state:
            out += _text(b"\x1a", _trace_state(context))
        if parent is not None:
            out += b"\x22\x08"
            out += parent.span_id.to_bytes(8, "big")
        out += self._name(span.name)
        out += _KINDS[span.kind]
        out += b"\x39"
        out += _FIXED64(span.start_time or 0)
        out += b"\x41"
        out += _FIXED64(span.end_time or 0)
        out += self._pairs.encode(b"\x4a", span.attributes)
        if span.dropped_attributes:
            out += b"\x50" + _varint(span.dropped_attributes)
        if span.events:
            out += self._events(span)
        if span.links:
            out += self._links(span)
        status = span.status
        if status.description:
            status_body = _text(b"\x12", status.description)
            if status.status_code.value:
                status_body += b"\x18" + _SMALL[status.status_code.value]
            out += _field(b"\x7a", status_body)
        else:
            out += _STATUS[status.status_code.value]
        out += _REMOTE_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS
        return bytes(out)

    def _name(self, name: str) -> bytes:
        encoded = self._names.get(name)
        if encoded is None:
            encoded = _text(b"\x2a", name)
            if len(self._names) >= _PAIR_CACHE_SIZE:
                self._names.clear()
            self._names[name] = encoded
        return encoded

    def _events(self, span: ReadableSpan) -> bytes:
        out = b""
        for event in span.events:
            body = b"\x09" + _FIXED64(event.timestamp or 0)
            body += _text(b"\x12", event.name) + self._pairs.encode(b"\x1a", event.attributes)
            if event.dropped_attributes:
                body += b"\x20" + _varint(event.dropped_attributes)
            out += _field(b"\x5a", body)
        if span.dropped_events:
            out += b"\x60" + _varint(span.dropped_events)
        return out

    def _links(self, span: ReadableSpan) -> bytes:
        out = b""
        for link in span.links:
            linked = link.context
            body = b"\x0a\x10" + linked.trace_id.to_bytes(16, "big") + b"\x12\x08" + linked.span_id.to_bytes(8, "big")
            body += self._pairs.encode(b"\x22", link.attributes)
            if link.dropped_attributes:
                body += b"\x28" + _varint(link.dropped_attributes)
            out += _field(b"\x6a", body + b"\x35" + _FIXED32(_flags(linked)))
        if span.dropped_links:
            out += b"\x70" + _varint(span.dropped_links)
        return out

    def _resource(self, resource: Any) -> bytes:
        known = self._resources.get(id(resource))
        if known is None or known[0] is not resource:
            body = self._pairs.encode(b"\x0a", resource.attributes)
            known = (resource, _field(b"\x0a", body))
            if len(self._resources) >= 16:
                self._resources.clear()
            self._resources[id(resource)] = known
        return known[1]

    def _scope(self, scope: Any) -> bytes:
        known = self._scopes.get(id(scope))
        if known is None or known[0] is not scope:
            body = b""
            if scope is not None:
                body = (_text(b"\x0a", scope.name) if scope.name else b"") + (
                    _text(b"\x12", scope.version) if scope.version else b""
                )
                body += self._pairs.encode(b"\x1a", scope.attributes)
            known = (scope, _field(b"\x0a", body))
            if len(self._scopes) >= 16:
                self._scopes.clear()
            self._scopes[id(scope)] = known
        return known[1]
