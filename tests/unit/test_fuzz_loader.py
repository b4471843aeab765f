"""Property tests on the loader: any input gets a verdict, never an unexpected exception.

`parse_yaml` on arbitrary bytes returns a YamlSource or raises YamlError; `load_document` on a
file holding arbitrary bytes, YAML-ish text or a mutated real capability returns a Document.
Every diagnostic is located (line >= 1, column >= 1) and its message is one line.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from naftiko.spec.diagnostics import Diagnostic  # noqa: E402
from naftiko.spec.document import Document, load_document  # noqa: E402
from naftiko.spec.yaml_source import YamlError, YamlSource, parse_yaml  # noqa: E402
from support import SEED, SHARED  # noqa: E402

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _real_files() -> list[Path]:
    files = [SEED]
    corpus = SHARED / "corpus" / "alpha2"
    if corpus.is_dir():
        picked = sorted(corpus.rglob("*.yaml"))
        files += random.Random(7).sample(picked, min(6, len(picked)))
    return files


REAL = [path.read_text(encoding="utf-8") for path in _real_files()]


def assert_located(diagnostic: Diagnostic) -> None:
    assert isinstance(diagnostic.line, int) and diagnostic.line >= 1, diagnostic
    assert isinstance(diagnostic.column, int) and diagnostic.column >= 1, diagnostic
    assert diagnostic.message and "\n" not in diagnostic.message and "\r" not in diagnostic.message, repr(
        diagnostic.message
    )
    assert "\n" not in str(diagnostic), repr(str(diagnostic))


def check_parse(raw: bytes) -> None:
    try:
        source = parse_yaml(raw, "fuzz.yaml")
    except YamlError as exc:
        assert_located(exc.diagnostic)
        assert exc.diagnostic.severity == "error"
    else:
        assert isinstance(source, YamlSource)


def check_load(directory: Path, raw: bytes) -> Document:
    path = directory / f"fuzz-{uuid.uuid4().hex}.yaml"
    path.write_bytes(raw)
    try:
        document = load_document(path)
        assert isinstance(document, Document)
        for diagnostic in document.errors + document.warnings:
            assert_located(diagnostic)
        strict = load_document(path, strict=True)
        for diagnostic in strict.errors + strict.warnings:
            assert_located(diagnostic)
        return document
    finally:
        path.unlink()


# --- strategies ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["{{", "}}", "{{env.X}}", "<<env.X>>", "&a", "*a", "!!python/object:os.system", "1e999", "~", "0x1F", "---"]
    ),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
yaml_tokens = st.sampled_from(
    [
        "naftiko: 1.0.0-alpha2\n",
        "capability:\n",
        "  consumes:\n",
        "  - ",
        "  ",
        "    ",
        ": ",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a",
        "!!str ",
        "!!map ",
        "!!binary ",
        "!custom ",
        "? ",
        "|\n",
        ">-\n",
        "'",
        '"',
        "#",
        "\n",
        "\t",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "{{",
        "}}",
        "<<: *a\n",
        "99999999999999999999999999999999",
        "\x00",
        "\ufeff",
        "type: http\n",
        "namespace: x\n",
        "baseUri: http://x\n",
        "path: /a/{id}\n",
        "method: GET\n",
        "port: 8080\n",
    ]
)
yamlish = st.lists(st.one_of(yaml_tokens, st.text(max_size=6)), max_size=40).map("".join)


@st.composite
def mutated(draw) -> str:
    lines = draw(st.sampled_from(REAL)).splitlines()
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.integers(0, 10))
        line = lines[i]
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, line)
        elif kind == 2:
            lines[i] = " " * draw(st.integers(0, 7)) + line.lstrip()
        elif kind == 3 and ":" in line:
            key, _, _ = line.partition(":")
            lines[i] = (
                key
                + ": "
                + draw(
                    st.sampled_from(
                        [
                            "[]",
                            "{}",
                            "42",
                            "-1",
                            "true",
                            "null",
                            "1e999",
                            "99999999999999999999999",
                            "''",
                            "[1, {a: 2}]",
                        ]
                    )
                )
            )
        elif kind == 4:
            lines[i] = line + draw(st.sampled_from([" {{", " }}", " {{env.", " <<env.X", " {{x}}{{"]))
        elif kind == 5 and ":" in line:
            key, _, value = line.partition(":")
            lines[i] = key + ": &a" + value
            lines.insert(i + 1, " " * (len(key) - len(key.lstrip())) + "zz: *a")
        elif kind == 6 and ":" in line:
            key, _, value = line.partition(":")
            lines[i] = (
                key
                + ": "
                + draw(st.sampled_from(["!!int", "!!str", "!!map", "!!seq", "!!python/name:os.system", "!foo"]))
                + value
            )
        elif kind == 7:
            depth = draw(st.integers(10, 400))
            lines.insert(i, "deep: " + "[" * depth + "]" * depth)
        elif kind == 8:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 9:
            lines[i] = line.replace("{", "").replace("}", "")
        else:
            lines.insert(i, draw(st.text(max_size=30)))
    return "\n".join(lines) + "\n"


# --- properties -----------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=400))
def test_parse_yaml_on_random_bytes(raw: bytes) -> None:
    check_parse(raw)


@SETTINGS
@given(yamlish)
def test_parse_yaml_on_yamlish_text(text: str) -> None:
    check_parse(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_load_document_on_random_input(tmp_path: Path, raw: bytes) -> None:
    check_load(tmp_path, raw)


@SETTINGS
@given(text=yamlish)
def test_load_document_on_yamlish_documents(tmp_path: Path, text: str) -> None:
    check_load(tmp_path, text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(data=json_like)
def test_load_document_on_random_structures(tmp_path: Path, data: object) -> None:
    import json

    # JSON is YAML: any structure, with a valid-looking head sometimes
    if isinstance(data, dict):
        data = {"naftiko": "1.0.0-alpha2", **data}
    check_load(tmp_path, json.dumps(data, allow_nan=True).encode())


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(text=mutated())
def test_load_document_on_mutated_real_files(tmp_path: Path, text: str) -> None:
    check_load(tmp_path, text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 100_000 + "]" * 100_000,
        "a: " + "{b: " * 5_000 + "1" + "}" * 5_000,
        "".join(f"{'  ' * i}k:\n" for i in range(3_000)),
        "a: &a [x, x]\n"
        + "".join(f"{chr(98 + i % 20)}{i}: &a{i + 1} [*a{i}, *a{i}]\n".replace("*a0", "*a") for i in range(40)),
        "a: " + "9" * 100_000,
        "naftiko: 1.0.0-alpha2\nnaftiko: 1.0.0-alpha2\n",
        "!!python/object/apply:os.system ['true']\n",
        "--- a\n--- b\n",
        "a: 1\r\nb: 2\rc: 3\n",
        "\ufeffnaftiko: 1.0.0-alpha2\n",
        "a: !!int\n",
        "a: !!float\n",
        "a: !!bool\n",
        "a: !!bool maybe\n",
        "a: \x01\n",
    ],
    ids=[
        "deep-flow",
        "deep-map",
        "deep-block",
        "alias-bomb",
        "huge-number",
        "duplicate-key",
        "python-tag",
        "two-docs",
        "cr",
        "bom",
        "empty-int",
        "empty-float",
        "empty-bool",
        "bad-bool",
        "control-char",
    ],
)
def test_load_document_on_hostile_files(tmp_path: Path, text: str) -> None:
    check_load(tmp_path, text.encode())
    check_parse(text.encode())
