"""json_text gives the standard library's results, faster: same values, same types, same refusals."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naftiko.consumes.url import encode_segment
from naftiko.json_text import dumps, loads

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 and 1.0 differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


@settings(max_examples=300)
@given(JSON_VALUES)
def test_loads_and_dumps_agree_with_the_standard_library(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert same(loads(text), json.loads(text))
    assert same(loads(text.encode()), json.loads(text.encode()))
    assert same(json.loads(dumps(value)), value)


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567890",  # beyond 64 bits: orjson would give a float
        '{"id": 18446744073709551616}',
        "-9223372036854775809",
        '"\\ud800"',  # a lone surrogate escape
        "NaN",
        "[Infinity, -Infinity]",
        "1e400",
        "\ufeff{}",
        '{"a": 1, "a": 2}',
    ],
)
def test_what_orjson_refuses_or_reads_differently_gets_the_standard_result(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        ours, theirs = outcome(loads, data), outcome(json.loads, data)
        assert ours[0] == theirs[0] and same(ours[1], theirs[1])


def outcome(parse: Any, data: str | bytes) -> tuple[str, Any]:
    try:
        return "value", parse(data)
    except ValueError as exc:
        return "refused", type(exc)


def test_refusals_are_the_standard_library_s() -> None:
    def reject(name: str) -> None:
        raise ValueError(f"constant {name}")

    with pytest.raises(ValueError, match="constant NaN"):
        loads("[NaN]", parse_constant=reject)
    with pytest.raises(json.JSONDecodeError):
        loads(b"{not json")
    with pytest.raises(RecursionError):
        loads("[" * 100_000 + "]" * 100_000)


def test_dumps_keeps_what_orjson_cannot_encode() -> None:
    assert dumps({"n": 2**70}) == b'{"n":1180591620717411303424}'
    assert dumps({"s": "a\ud800b"}) == b'{"s":"a?b"}'
    assert dumps({1: "x"}) == b'{"1":"x"}'
    assert dumps({"é": [1.5, None, True]}) == '{"é":[1.5,null,true]}'.encode()


@settings(max_examples=300)
@given(st.text(min_size=1).filter(lambda t: t not in (".", "..") and not any(ord(c) < 32 or ord(c) == 127 for c in t)))
def test_a_path_segment_is_encoded_as_quote_does(text: str) -> None:
    try:
        expected = quote(text, safe="")
    except UnicodeEncodeError:
        return  # lone surrogates: refused elsewhere, before a path is built
    assert encode_segment("p", text) == expected
