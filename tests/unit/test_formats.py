"""outputRawFormat conversion (§3.6): official fixtures, documented rules, hostile input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from naftiko.consumes.formats import (
    SUPPORTED_FORMATS,
    BodyDecodeError,
    UnsupportedFormat,
    check_format,
    decoder_for,
)
from support import SHARED

OFFICIAL = SHARED / "conformance" / "official"

USERS = [
    {"id": "1", "name": "Alice Smith", "email": "alice@example.com"},
    {"id": "2", "name": "Bob Johnson", "email": "bob@example.com"},
    {"id": "3", "name": "Carol White", "email": "carol@example.com"},
]
PRODUCTS = [
    {"Name": "Widget", "Price": "$42", "Stock": "150"},
    {"Name": "Gadget", "Price": "$99", "Stock": "30"},
]
README = {
    "frontMatter": {"title": "Product Release Notes", "version": "2.1.0"},
    "tables": [
        [
            {"Feature": "HTML support", "Status": "GA"},
            {"Feature": "Markdown support", "Status": "Beta"},
        ]
    ],
    "sections": [
        {
            "heading": "Overview",
            "level": 2,
            "content": "This release introduces table extraction for markdown.",
        }
    ],
}


def decode(fmt: str, body: str | bytes, selector: str | None = None, charset: str | None = None) -> Any:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return decoder_for(fmt, selector)(raw, charset)


def official(name: str) -> Path:
    if not OFFICIAL.is_dir():
        pytest.skip(f"shared conformance material not found at {OFFICIAL}")
    return OFFICIAL / name


def consumed_operation(capability: str) -> dict[str, Any]:
    document = yaml.safe_load(official(capability).read_text(encoding="utf-8"))
    return document["capability"]["consumes"][0]["resources"][0]["operations"][0]


# --- official capabilities and fixtures --------------------------------------------------


@pytest.mark.parametrize(
    ("capability", "fixture", "expected"),
    [
        ("xml-capability.yaml", "sample-users.xml", {"user": USERS}),
        ("csv-capability.yaml", "sample-users.csv", USERS),
        ("yaml-capability.yaml", "sample-users.yaml", {"users": USERS}),
        ("html-capability.yaml", "sample-products.html", {"tables": [PRODUCTS]}),
        ("markdown-capability.yaml", "sample-readme.md", README),
    ],
)
def test_official_capability_decodes_its_fixture(capability: str, fixture: str, expected: Any) -> None:
    operation = consumed_operation(capability)
    decoder = decoder_for(operation["outputRawFormat"], operation.get("outputSchema"))
    body = official(f"fixtures/{fixture}").read_bytes()
    assert decoder(body, None) == expected


@pytest.mark.parametrize(("fmt", "fixture"), [("tsv", "sample-users.tsv"), ("psv", "sample-users.psv")])
def test_official_delimited_fixtures(fmt: str, fixture: str) -> None:
    assert decode(fmt, official(f"fixtures/{fixture}").read_bytes()) == USERS


@pytest.mark.parametrize("capability", ["avro-capability.yaml", "proto-capability.yaml"])
def test_official_binary_capabilities_are_refused_at_load(capability: str) -> None:
    operation = consumed_operation(capability)
    with pytest.raises(UnsupportedFormat, match="binary decoding is not implemented"):
        check_format(operation["outputRawFormat"])


def test_official_html_fixture_without_selector_takes_every_table() -> None:
    body = official("fixtures/sample-products.html").read_bytes()
    assert decode("html", body) == {"tables": [PRODUCTS]}


# --- labels ------------------------------------------------------------------------------


def test_absent_format_is_json() -> None:
    assert check_format(None) == "json"
    assert decoder_for(None)(b'{"a": [1, 2.5, null, true]}', None) == {"a": [1, 2.5, None, True]}


@pytest.mark.parametrize(
    ("label", "expected"),
    [("XML", "xml"), ("Csv", "csv"), (" Markdown ", "markdown"), ("JSON", "json")],
)
def test_labels_match_case_insensitively(label: str, expected: str) -> None:
    assert check_format(label) == expected


def test_uppercase_label_decodes() -> None:
    assert decode("XML", "<r><a>1</a></r>") == {"a": "1"}


def test_supported_formats() -> None:
    assert SUPPORTED_FORMATS == {
        "json",
        "xml",
        "csv",
        "tsv",
        "psv",
        "yaml",
        "text",
        "html",
        "markdown",
    }


@pytest.mark.parametrize("label", ["avro", "protobuf", "AVRO", "binary", "INI"])
def test_unsupported_formats(label: str) -> None:
    with pytest.raises(UnsupportedFormat) as info:
        check_format(label)
    message = str(info.value)
    assert f'"{label}"' in message
    assert "supported: csv, html, json, markdown, psv, text, tsv, xml, yaml" in message
    with pytest.raises(UnsupportedFormat):
        decoder_for(label)


def test_errors_are_value_errors() -> None:
    assert issubclass(UnsupportedFormat, ValueError)
    assert issubclass(BodyDecodeError, ValueError)


# --- empty bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(SUPPORTED_FORMATS))
@pytest.mark.parametrize("body", [b"", b"  \r\n\t ", b"\xef\xbb\xbf"])
def test_empty_body_is_none(fmt: str, body: bytes) -> None:
    assert decoder_for(fmt)(body, None) is None


# --- malformed bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("json", '{"a": '),
        ("json", "not json"),
        ("json", '{"a": NaN}'),
        ("xml", "<root><a></root>"),
        ("xml", "plain text"),
        ("xml", "<a/><b/>"),
        ("xml", "<root>&undefined;</root>"),
        ("yaml", "a: [1, 2"),
        ("yaml", "a: 1\n- b"),
        ("yaml", "--- 1\n--- 2\n"),
        ("csv", 'id,name\n1,"unterminated\n'),
        ("csv", 'id,name\n1,"x"y\n'),
        ("csv", "id,name\n1,2,3\n"),
        ("tsv", "id\tname\n1\t2\t3\n"),
        ("psv", "id|name\n1|2|3\n"),
        ("markdown", "---\ntitle: [unclosed\n---\n# Hi\n"),
    ],
)
def test_malformed_body_raises(fmt: str, body: str) -> None:
    with pytest.raises(BodyDecodeError, match=f"invalid {fmt} body: "):
        decode(fmt, body)


def test_decode_error_message_does_not_dump_the_body() -> None:
    body = '{"secret": "s3cr3t-value", ' + "x" * 500
    with pytest.raises(BodyDecodeError) as info:
        decode("json", body)
    assert "s3cr3t" not in str(info.value)
    assert len(str(info.value)) < 120


# --- json --------------------------------------------------------------------------------


def test_json_deep_nesting_is_a_decode_error() -> None:
    depth = 100_000
    with pytest.raises(BodyDecodeError, match="nesting"):
        decode("json", "[" * depth + "]" * depth)


def test_json_infinity_rejected() -> None:
    with pytest.raises(BodyDecodeError, match="Infinity"):
        decode("json", "[Infinity]")


# --- charset and text --------------------------------------------------------------------


def test_text_is_the_decoded_string() -> None:
    assert decode("text", "  hello\nworld ") == "  hello\nworld "


def test_charset_from_content_type_is_used() -> None:
    assert decode("text", "café".encode("latin-1"), charset="ISO-8859-1") == "café"
    assert decode("json", '{"a": "é"}'.encode("utf-16"), charset="utf-16") == {"a": "é"}


def test_unknown_charset_falls_back_to_utf8() -> None:
    assert decode("text", "café", charset="no-such-charset") == "café"


def test_invalid_bytes_are_replaced() -> None:
    assert decode("text", b"caf\xff") == "caf\ufffd"


def test_utf8_bom_is_dropped() -> None:
    assert decode("csv", "\ufeffid,name\n1,a\n".encode("utf-8")) == [{"id": "1", "name": "a"}]


# --- xml ---------------------------------------------------------------------------------


def test_xml_semantics_doc_example() -> None:
    body = "<root><user><id>1</id></user><user><id>2</id></user></root>"
    assert decode("xml", body) == {"user": [{"id": "1"}, {"id": "2"}]}


def test_xml_single_child_is_not_an_array() -> None:
    assert decode("xml", "<root><user><id>1</id></user></root>") == {"user": {"id": "1"}}


def test_xml_attributes_become_string_fields() -> None:
    body = '<root version="2"><item id="7" active="true"><name>A</name></item></root>'
    assert decode("xml", body) == {
        "version": "2",
        "item": {"id": "7", "active": "true", "name": "A"},
    }


def test_xml_text_beside_attributes_goes_under_empty_key() -> None:
    body = '<order><price currency="EUR"> 9.50 </price></order>'
    assert decode("xml", body) == {"price": {"currency": "EUR", "": "9.50"}}


def test_xml_non_adjacent_repeats_merge_into_one_array() -> None:
    assert decode("xml", "<r><a>1</a><b>x</b><a>2</a></r>") == {"a": ["1", "2"], "b": "x"}


def test_xml_leaves_are_strings_and_empty_elements_empty_strings() -> None:
    body = "<r><n>42</n><t>true</t><e/><blank>  </blank><c><![CDATA[<b>]]></c></r>"
    assert decode("xml", body) == {"n": "42", "t": "true", "e": "", "blank": "", "c": "<b>"}


def test_xml_root_shapes() -> None:
    assert decode("xml", "<root/>") == {}
    assert decode("xml", "<root>hello</root>") == {"": "hello"}


def test_xml_namespaces_are_dropped() -> None:
    body = '<s:Envelope xmlns:s="urn:s" xmlns="urn:d"><s:Body><item xml:lang="en">x</item></s:Body></s:Envelope>'
    assert decode("xml", body) == {"Body": {"item": {"lang": "en", "": "x"}}}


def test_xml_encoding_follows_the_charset() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><r><n>café</n></r>'.encode("latin-1")
    assert decode("xml", body, charset="iso-8859-1") == {"n": "café"}


def test_xml_billion_laughs_is_refused() -> None:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    doctype = f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>'
    body = f'<?xml version="1.0"?>{doctype}<lolz>&lol9;</lolz>'
    with pytest.raises(BodyDecodeError, match="entity declarations are not allowed"):
        decode("xml", body)


def test_xml_external_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    body = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]><r>&xxe;</r>'
    with pytest.raises(BodyDecodeError) as info:
        decode("xml", body)
    assert "TOP-SECRET" not in str(info.value)


def test_xml_doctype_without_entities_is_fine() -> None:
    body = '<!DOCTYPE r SYSTEM "http://example.invalid/r.dtd"><r><a>1</a></r>'
    assert decode("xml", body) == {"a": "1"}


def test_xml_deep_nesting_is_a_decode_error() -> None:
    depth = 100_000
    with pytest.raises(BodyDecodeError, match="nested deeper"):
        decode("xml", "<a>" * depth + "</a>" * depth)


# --- csv / tsv / psv ---------------------------------------------------------------------


def test_csv_quoting() -> None:
    body = 'id,name,note\n1,"Smith, Alice","said ""hi"""\n2,Bob,"two\nlines"\n'
    assert decode("csv", body) == [
        {"id": "1", "name": "Smith, Alice", "note": 'said "hi"'},
        {"id": "2", "name": "Bob", "note": "two\nlines"},
    ]


def test_delimited_values_stay_strings() -> None:
    assert decode("psv", "n|flag\n42|true\n") == [{"n": "42", "flag": "true"}]


def test_tsv_keeps_commas_and_pipes() -> None:
    assert decode("tsv", "a\tb\nx,y\tp|q\n") == [{"a": "x,y", "b": "p|q"}]


def test_csv_short_rows_are_padded_and_blank_lines_skipped() -> None:
    assert decode("csv", "a,b,c\r\n\r\n1,2\r\n") == [{"a": "1", "b": "2", "c": ""}]


def test_csv_header_only_is_empty_array() -> None:
    assert decode("csv", "id,name\n") == []


# --- yaml --------------------------------------------------------------------------------


def test_yaml_scalars_keep_yaml_types() -> None:
    assert decode("yaml", "a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\n") == {
        "a": 1,
        "b": 1.5,
        "c": True,
        "d": None,
        "e": "1",
    }


def test_yaml_result_is_json_serialisable() -> None:
    body = (
        "when: 2026-02-21\nat: 2001-12-14t21:59:43.10-05:00\n1: one\ntrue: yes\n"
        "nan: .nan\ns: !!set {x, y}\nb: !!binary aGk=\n"
    )
    value = decode("yaml", body)
    assert value == {
        "when": "2026-02-21",
        "at": "2001-12-14t21:59:43.10-05:00",
        "1": "one",
        "true": True,
        "nan": ".nan",
        "s": {"x": None, "y": None},
        "b": "aGk=",
    }
    json.dumps(value, allow_nan=False)


def test_yaml_merge_keys_work() -> None:
    body = "base: &b {x: 1}\nitem:\n  <<: *b\n  y: 2\n"
    assert decode("yaml", body) == {"base": {"x": 1}, "item": {"x": 1, "y": 2}}


@pytest.mark.parametrize("body", ["a: !custom 1\n", "a: !!python/object:os.system x\n", "a: !!python/name:os.system\n"])
def test_yaml_custom_tags_are_refused(body: str) -> None:
    with pytest.raises(BodyDecodeError, match="invalid yaml body"):
        decode("yaml", body)


def test_yaml_complex_keys_are_refused() -> None:
    with pytest.raises(BodyDecodeError, match="mapping keys must be scalars"):
        decode("yaml", "? [a, b]\n: c\n")


def test_yaml_alias_bomb_is_refused() -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    with pytest.raises(BodyDecodeError, match="collection aliases"):
        decode("yaml", "\n".join(lines))


def test_yaml_recursive_alias_is_refused() -> None:
    with pytest.raises(BodyDecodeError, match="recursive alias"):
        decode("yaml", "a: &a [1, *a]\n")


def test_yaml_few_aliases_are_fine() -> None:
    body = "a: &a [1]\nb: *a\nc: &s x\nd: *s\n"
    assert decode("yaml", body) == {"a": [1], "b": [1], "c": "x", "d": "x"}


@pytest.mark.parametrize("depth", [300, 100_000])
def test_yaml_deep_nesting_is_a_decode_error(depth: int) -> None:
    # 100 000 levels crash the C composer outright if the shape check is missing.
    with pytest.raises(BodyDecodeError, match="nested deeper"):
        decode("yaml", "[" * depth + "]" * depth)


# --- html --------------------------------------------------------------------------------

PAGE = """
<html><body>
<div id="main" class="inventory wide">
  <table class="products">
    <tr><th>Name</th><th>Price</th></tr><tr><td>Widget</td><td>$42</td></tr>
  </table>
  <section>
    <table class="products extra"><tr><th>Sku</th></tr><tr><td>W-1</td></tr></table>
  </section>
</div>
<table id="other"><tr><th>Other</th></tr><tr><td>o</td></tr></table>
</body></html>
"""
FIRST = [{"Name": "Widget", "Price": "$42"}]
SECOND = [{"Sku": "W-1"}]
THIRD = [{"Other": "o"}]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, [FIRST, SECOND, THIRD]),
        ("  ", [FIRST, SECOND, THIRD]),
        ("table", [FIRST, SECOND, THIRD]),
        (".products", [FIRST, SECOND]),
        ("table.products", [FIRST, SECOND]),
        ("table.products.extra", [SECOND]),
        ("#other", [THIRD]),
        ("table#other", [THIRD]),
        ("div.inventory", [FIRST, SECOND]),
        ("#main", [FIRST, SECOND]),
        ("div section", [SECOND]),
        ("body table", [FIRST, SECOND, THIRD]),
        ("div > table", [FIRST]),
        ("body > table", [THIRD]),
        ("section table, #other", [SECOND, THIRD]),
        ("*.wide", [FIRST, SECOND]),
        ("TABLE.products", [FIRST, SECOND]),
        ("table.missing", []),
        ("span", []),
    ],
)
def test_html_selectors(selector: str | None, expected: list[Any]) -> None:
    assert decode("html", PAGE, selector) == {"tables": expected}


@pytest.mark.parametrize("selector", ["tr:first-child", "a + b", "div ~ p", "[data-x]", "table >", ", table", "a..b"])
def test_html_unsupported_selector_fails_at_load(selector: str) -> None:
    with pytest.raises(ValueError, match="unsupported CSS selector"):
        decoder_for("html", selector)


def test_html_table_rules() -> None:
    body = """
    <table>
      <thead><tr><th> First
        Name </th><th>Age</th><th>City</th></tr></thead>
      <tbody>
        <tr><td>Ann &amp; Co</td><td>31</td><td>Oslo</td></tr>
        <tr><th>Subtotal</th><td>1</td><td>2</td></tr>
        <tr><td>Bo</td></tr>
        <tr><td>Cy<br>Jr</td><td><b>4</b>0</td><td><p>a</p><p>b</p></td><td>extra</td></tr>
      </tbody>
      <tfoot><tr><td>footer</td></tr></tfoot>
    </table>
    """
    assert decode("html", body) == {
        "tables": [
            [
                {"First Name": "Ann & Co", "Age": "31", "City": "Oslo"},
                {"First Name": "Bo", "Age": "", "City": ""},
                {"First Name": "Cy Jr", "Age": "40", "City": "a b"},
            ]
        ]
    }


def test_html_implied_end_tags() -> None:
    body = "<table><tr><th>A<th>B<tr><td>1<td>2<tr><td>3<td>4</table>"
    assert decode("html", body) == {"tables": [[{"A": "1", "B": "2"}, {"A": "3", "B": "4"}]]}


def test_html_tables_with_blank_or_no_headers_are_dropped() -> None:
    body = "<table><tr><th> </th></tr><tr><td>x</td></tr></table><table><tr><td>y</td></tr></table>"
    assert decode("html", body) == {"tables": []}


def test_html_table_with_headers_and_no_rows_is_kept() -> None:
    assert decode("html", "<table><tr><th>A</th></tr></table>") == {"tables": [[]]}


def test_html_nested_table_rows_stay_with_their_table() -> None:
    body = (
        "<table class='outer'><tr><th>Key</th><th>Detail</th></tr>"
        "<tr><td>k</td><td>"
        "<table class='inner'><tr><th>N</th></tr><tr><td>n1</td></tr></table>"
        "</td></tr>"
        "</table>"
    )
    assert decode("html", body, "table.inner") == {"tables": [[{"N": "n1"}]]}
    outer = decode("html", body, ".outer")["tables"]
    assert outer[0] == [{"Key": "k", "Detail": "N n1"}]
    assert outer[1] == [{"N": "n1"}]


def test_html_script_text_is_ignored() -> None:
    body = "<table><tr><th>A</th></tr><tr><td>1<script>var x = '<td>';</script></td></tr></table>"
    assert decode("html", body) == {"tables": [[{"A": "1"}]]}


def test_html_without_tables_or_garbage_is_empty() -> None:
    assert decode("html", "<p>no tables</p>") == {"tables": []}
    assert decode("html", "<<<>>> </div></td> not html at all") == {"tables": []}


# --- markdown ----------------------------------------------------------------------------

DOC = """# Guide

Intro *text* with `code | pipe` and a [link](http://x.example).

## Install
Run this:

```sh
# not a heading
pip install x
```

- first item
- second **item**

| Option | Meaning \\| note |
|:-------|-------:|
| `-v` | verbose |
| `-q` |

Setext Title
------------
Under setext.

### Empty
"""


def test_markdown_document() -> None:
    assert decode("markdown", DOC) == {
        "frontMatter": {},
        "tables": [
            [
                {"Option": "-v", "Meaning | note": "verbose"},
                {"Option": "-q", "Meaning | note": ""},
            ]
        ],
        "sections": [
            {"heading": "Guide", "level": 1, "content": "Intro text with code | pipe and a link."},
            {
                "heading": "Install",
                "level": 2,
                "content": "Run this:\n# not a heading\npip install x\nfirst item\nsecond item",
            },
            {"heading": "Setext Title", "level": 2, "content": "Under setext."},
            {"heading": "Empty", "level": 3, "content": ""},
        ],
    }


def test_markdown_heading_prefix_filter() -> None:
    sections = decode("markdown", DOC, "Set")["sections"]
    assert [s["heading"] for s in sections] == ["Setext Title"]
    assert len(decode("markdown", DOC, "   ")["sections"]) == 4


def test_markdown_filter_keeps_tables() -> None:
    assert decode("markdown", DOC, "Nothing")["tables"] != []


def test_markdown_front_matter_must_be_a_mapping() -> None:
    assert decode("markdown", "---\n- a\n---\n# T\n")["frontMatter"] == {}
    assert decode("markdown", "---\n---\n# T\n") == {
        "frontMatter": {},
        "tables": [],
        "sections": [{"heading": "T", "level": 1, "content": ""}],
    }


def test_markdown_front_matter_dates_stay_strings() -> None:
    value = decode("markdown", "---\ncreated: 2026-04-02\n---\n")
    assert value["frontMatter"] == {"created": "2026-04-02"}


def test_markdown_text_before_first_heading_and_hard_breaks() -> None:
    body = "preamble\n\n# H\nline one  \nline two\\\nline three\nsame line\n> quoted\n> more\n"
    assert decode("markdown", body)["sections"] == [
        {
            "heading": "H",
            "level": 1,
            "content": "line one\nline two\nline three same line\nquoted more",
        },
    ]


def test_markdown_crlf_and_table_without_outer_pipes() -> None:
    body = "a | b\r\n--- | ---\r\n1 | 2\r\n"
    assert decode("markdown", body)["tables"] == [[{"a": "1", "b": "2"}]]


def test_markdown_table_with_blank_headers_is_dropped() -> None:
    assert decode("markdown", "|  |  |\n|--|--|\n| x | y |\n")["tables"] == []
