"""`statementLimit` for JavaScript: V8 counts nothing, so each program is rewritten at worker
start to call a counter before every statement, at the top of every loop body (an empty loop
still counts) and in every arrow function with an expression body. The counter throws a
RangeError past the limit; the step's timeout still bounds what is not counted (one long
native call such as a huge `Array.prototype.fill`).

Parsed by tree-sitter's JavaScript grammar, a well-kept incremental parser with byte offsets;
only text is inserted (`;T();`, `{`, `}`, `(T(), …)`) and never a newline, so line numbers in
error messages stay those of the file.
"""

from __future__ import annotations

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_javascript.language()))
_LISTS = frozenset({"program", "statement_block", "class_static_block"})
_CASES = frozenset({"switch_case", "switch_default"})
_LOOPS = frozenset({"for_statement", "for_in_statement", "while_statement", "do_statement"})
_NOT_STATEMENTS = frozenset({"comment", "hash_bang_line", "html_comment"})


def instrument(source: str, tick: str) -> str:
    """The source with a call of `tick()` before each statement it will run."""
    data = source.encode()
    inserts: list[tuple[int, int, bytes]] = []  # (offset, order, text): closing text sorts before opening
    call = f";{tick}();".encode()
    stack: list[Node] = [_PARSER.parse(data).root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type in _LISTS:
            statements = [c for c in node.named_children if c.type not in _NOT_STATEMENTS]
        elif node.type in _CASES:
            statements = node.children_by_field_name("body")
        else:
            statements = []
        for statement in statements:
            inserts.append((statement.start_byte, 1, call))
        if node.type in _LOOPS or node.type == "if_statement":
            for field in ("body", "consequence"):
                body = node.child_by_field_name(field)
                if body is None:
                    continue
                if body.type == "statement_block":
                    inserts.append((body.start_byte + 1, 1, call))
                else:
                    inserts.append((body.start_byte, 1, b"{" + call))
                    inserts.append((body.end_byte, 0, b"}"))
        if node.type == "else_clause":
            body = node.named_children[-1] if node.named_children else None
            if body is not None and body.type != "statement_block":
                inserts.append((body.start_byte, 1, b"{" + call))
                inserts.append((body.end_byte, 0, b"}"))
        if node.type == "arrow_function":
            body = node.child_by_field_name("body")
            if body is not None and body.type != "statement_block":
                inserts.append((body.start_byte, 1, f"({tick}(), ".encode()))
                inserts.append((body.end_byte, 0, b")"))
    out, last = [], 0
    for offset, _, text in sorted(inserts, key=lambda i: (i[0], i[1])):
        out.append(data[last:offset])
        out.append(text)
        last = offset
    out.append(data[last:])
    return b"".join(out).decode()
