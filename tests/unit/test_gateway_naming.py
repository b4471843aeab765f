"""Union names of the gateway's /mcp: NS.NAME, always a valid MCP tool name, stable and unique."""

from __future__ import annotations

import re

from naftiko.gateway.naming import MAX_LENGTH, union_names

VALID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def test_valid_names_are_kept_as_namespace_dot_name() -> None:
    assert union_names([("github-mcp", "list-issues"), ("jira-mcp", "list-issues")]) == {
        ("github-mcp", "list-issues"): "github-mcp.list-issues",
        ("jira-mcp", "list-issues"): "jira-mcp.list-issues",
    }


def test_over_long_and_invalid_names_become_valid_unique_and_stable() -> None:
    pairs = [
        ("n" * 60, "t" * 80),
        ("n" * 60, "t" * 79 + "u"),
        ("ns", "has space/and:colon"),
        ("ns", "has_space_and_colon"),
    ]
    names = union_names(pairs)
    assert all(VALID.fullmatch(name) for name in names.values())
    assert len(set(names.values())) == len(pairs)
    assert len(names[pairs[0]]) == MAX_LENGTH and names[pairs[0]].startswith("n" * 60 + ".")
    assert names[("ns", "has_space_and_colon")] == "ns.has_space_and_colon"
    assert union_names(pairs[:1]) == {pairs[0]: names[pairs[0]]}  # other pairs never rename a tool


def test_two_pairs_spelling_the_same_name_both_get_a_distinct_one() -> None:
    names = union_names([("a.b", "c"), ("a", "b.c")])
    assert len(set(names.values())) == 2
    assert all(VALID.fullmatch(n) and n.startswith("a.b.c-") for n in names.values())
