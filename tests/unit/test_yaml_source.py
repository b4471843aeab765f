"""The YAML loader: positions for every node, and hostile files refused with one located line."""

from __future__ import annotations

import pytest

from naftiko.spec.yaml_source import MAX_BYTES, YamlError, parse_yaml


def error_of(raw: bytes) -> str:
    with pytest.raises(YamlError) as caught:
        parse_yaml(raw, "cap.yaml")
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_positions_point_at_each_value() -> None:
    source = parse_yaml(
        b"naftiko: 1.0.0-alpha2\ncapability:\n  consumes:\n    - namespace: x\n      baseUri: http://a\n", "f.yaml"
    )
    assert source.position(("capability", "consumes", 0, "baseUri")) == (5, 16)
    assert source.position(("capability", "consumes", 0)) == (4, 7)
    assert source.position(("capability", "consumes", 0, "missing")) == (4, 7)


def test_scalars_are_json_values_and_dates_stay_text() -> None:
    data = parse_yaml(b"created: 2026-05-19\nport: 8080\nratio: 1.5\nflag: true\nnothing: ~\n200: ok\n", "f").data
    assert data == {"created": "2026-05-19", "port": 8080, "ratio": 1.5, "flag": True, "nothing": None, "200": "ok"}


def test_merge_keys_and_small_aliases_work() -> None:
    data = parse_yaml(b"base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "f").data
    assert data["d"] == {"x": 1, "y": 3}


def test_malformed_yaml_is_located() -> None:
    assert error_of(b"a: [1, 2\nb: 3\n").startswith("cap.yaml:2:")


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    assert (
        error_of(b"a: 1\nb: 2\na: 3\n") == "cap.yaml:3:1: error: duplicate key 'a' (first defined at line 1) (at $.a)"
    )


def test_alias_bomb_is_refused() -> None:
    lines = [b"a: &a [x,x,x,x,x,x,x,x,x]"]
    for previous, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]".encode())
    assert "alias/anchor bomb" in error_of(b"\n".join(lines))


def test_deep_nesting_is_refused_without_crashing() -> None:
    assert "nesting deeper than" in error_of(b"a: " + b"[" * 100_000)


@pytest.mark.parametrize("tag", [b"!!python/object:os.system", b"!custom", b"!!binary"])
def test_custom_tags_are_refused(tag: bytes) -> None:
    assert "unsupported YAML tag" in error_of(b"a: " + tag + b" x\n")


def test_oversized_file_is_refused_before_parsing() -> None:
    assert "limit is" in error_of(b"a: " + b"x" * (MAX_BYTES + 1))


def test_binary_garbage_is_refused() -> None:
    assert "not UTF-8" in error_of(bytes(range(256)) * 4)
    assert "NUL byte" in error_of(b"a: b\x00c\n")


def test_several_documents_and_empty_files_are_refused() -> None:
    assert "several YAML documents" in error_of(b"a: 1\n---\nb: 2\n")
    assert "empty" in error_of(b"")
