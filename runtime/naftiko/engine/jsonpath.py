"""JSONPath expressions compiled once at load (jsonpath-ng, extended grammar).

`$` and `$.` mean the root. A plain path of names and indexes (`$.a.b[0]`, most mappings)
is walked directly; anything else goes through jsonpath-ng. A path with a wildcard, filter, slice, union or deep scan selects
a list; any other path selects one value, or None when it is absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import ExtendedJsonPathParser

# One parser for the process: jsonpath_ng.ext.parse() builds a new LALR parser on every call
# (tens of ms), which made loading a 100-operation capability take seconds.
_PARSER = ExtendedJsonPathParser()
_SIMPLE = re.compile(r"\$((?:\.[A-Za-z_][\w-]*|\[\d+\])+)")
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]")
_MULTI = re.compile(r"\*|\.\.|\[\?|\[[^\]]*[:,][^\]]*\]")


class JsonPathError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class JsonPath:
    source: str
    expression: Any  # None for the root or a simple path
    multiple: bool
    steps: tuple[str | int, ...] = ()  # a simple path ($.a.b[0]): walked directly, no parser

    @classmethod
    def compile(cls, source: str) -> JsonPath:
        text = source.strip()
        if text in ("$", "$.", ""):
            return cls(source, None, False)
        simple = _SIMPLE.fullmatch(text)
        if simple is not None:
            steps = tuple(key if key else int(index) for key, index in _STEP.findall(simple.group(1)))
            return cls(source, None, False, steps)
        text = text.replace(".length()", ".`len`")  # Jayway's length() is jsonpath-ng's `len`
        try:
            expression = _PARSER.parse(text)
        except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError, AttributeError) as first_error:
            # "$.foo bar" is meant as $['foo bar'].
            quoted = _bracket_segments(text)
            try:
                expression = _PARSER.parse(quoted)
            except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError, AttributeError):
                raise JsonPathError(f"invalid JSONPath {source!r}: {first_error}") from None
        return cls(source, expression, bool(_MULTI.search(text)))

    def select(self, data: Any) -> Any:
        if self.expression is None:
            for step in self.steps:
                if isinstance(step, str):
                    data = data.get(step) if isinstance(data, dict) else None
                else:
                    data = data[step] if isinstance(data, list) and -len(data) <= step < len(data) else None
                if data is None:
                    return None
            return data
        try:
            values = [match.value for match in self.expression.find(data)]
        except Exception:
            return None
        if self.multiple:
            return values
        return values[0] if values else None


def _bracket_segments(text: str) -> str:
    segments = text.removeprefix("$.").split(".")
    return "$" + "".join(f"['{s}']" if " " in s else f".{s}" for s in segments)
