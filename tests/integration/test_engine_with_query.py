"""A `with` key the consumed operation reads nowhere (no parameter, no path placeholder, no
template variable, not `body`) reaches the upstream as a query parameter under its own name:
X's `user.fields`, JSON:API's `filter[name]`, and the real files whose consumed operations
declare no parameters at all. The input it reads is the one the tool and the REST operation
publish, so what is advertised is what is sent."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from naftiko.engine.capability import query_text
from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.results import DryRun, Success
from naftiko.exposes.mcp import input_schema
from naftiko.server import plan
from naftiko.spec.document import load_document
from support import FakeUpstream, Serving

CAPABILITY = """naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: https://api.example.com
      resources:
        - name: items
          path: /items/{id}
          operations:
            - name: list
              method: GET
              inputParameters:
                - {name: limit, in: query, type: integer}
                - {name: page_size, in: query}
                - {name: X-Trace, in: header, value: "t-{{trace}}"}
            - name: create
              method: POST
              body:
                type: json
                data:
                  title: '{{tools.title}}'
  exposes:
    - type: mcp
      namespace: tools-ns
      port: 9090
      transport: http
      tools:
        - name: list
          description: List items
          call: api.list
          inputParameters:
            - {name: id, type: string}
            - {name: limit, type: integer, required: false}
            - {name: fields, type: array, required: false}
            - {name: name, type: string, required: false}
            - {name: count, type: number, required: false}
            - {name: exact, type: boolean, required: false}
            - {name: where, type: object, required: false}
            - {name: size, type: integer, required: false}
            - {name: trace, type: string, required: false}
          with:
            id: tools.id
            limit: tools.limit
            user.fields: tools.fields
            filter[name]: tools.name
            count: tools.count
            exact: tools.exact
            where: tools.where
            format: json
            page-size: tools.size
            trace: tools.trace
        - name: list-inferred
          description: List items, inputs inferred
          call: api.list
          with:
            id: tools.id
            user.fields: tools.fields
            filter[name]: tools.name
        - name: create
          description: Create an item
          call: api.create
          inputParameters:
            - {name: id, type: string}
            - {name: title, type: string}
            - {name: dry, type: boolean, required: false}
          with:
            id: tools.id
            title: tools.title
            dry: tools.dry
        - name: list-then-create
          description: Steps
          steps:
            - name: listed
              type: call
              call: api.list
              with:
                id: tools.id
                user.fields: tools.fields
          inputParameters:
            - {name: id, type: string}
            - {name: fields, type: array}
    - type: rest
      namespace: rest-ns
      port: 8080
      resources:
        - path: /items/{id}
          name: items
          operations:
            - method: GET
              name: list
              call: api.list
              with:
                id: rest.id
                user.fields: rest.fields
                filter[name]: rest.name
"""


def _capability(tmp_path: Path, upstream_url: str | None = None, dry_run: bool = False):
    path = tmp_path / "cap.yaml"
    path.write_text(CAPABILITY, encoding="utf-8")
    document = load_document(path)
    assert document.valid, [str(d) for d in document.errors]
    upstreams = {"api": upstream_url} if upstream_url else {}
    return compile_capability(document, CompileOptions(upstreams=upstreams, dry_run=dry_run))


def test_only_the_keys_read_nowhere_are_listed_at_load(tmp_path: Path) -> None:
    capability = _capability(tmp_path, dry_run=True)
    listed = {t.key: t.extra_query for t in capability.targets()}
    # id: a path placeholder; limit: a parameter; page-size: `page_size` spelled otherwise;
    # trace: a variable of a parameter's value; title: a variable of the body (`{{tools.title}}`).
    assert listed["tools-ns.list"] == ("user.fields", "filter[name]", "count", "exact", "where", "format")
    assert listed["tools-ns.list-inferred"] == ("user.fields", "filter[name]")
    assert listed["tools-ns.create"] == ("dry",)
    assert listed["rest-ns.list"] == ("user.fields", "filter[name]")
    assert listed["api.list"] == listed["api.create"] == ()
    [step] = capability.find("tools-ns.list-then-create").plan.steps
    assert step.target.extra_query == ("user.fields",)


async def test_values_are_sent_as_query_text_and_none_is_left_out(tmp_path: Path, upstream: FakeUpstream) -> None:
    capability = _capability(tmp_path, upstream.url)
    try:
        result = await capability.invoke(
            capability.find("tools-ns.list"),
            {
                "id": "7",
                "limit": 5,
                "fields": ["id", "name", 3, True],
                "name": "ada lovelace",
                "count": 2.5,
                "exact": False,
                "where": {"a": [1, 2]},
                "size": None,
            },
        )
        assert isinstance(result, Success), result
        await capability.invoke(capability.find("tools-ns.list"), {"id": "8", "limit": 1, "fields": None, "size": 10})
    finally:
        await capability.close()
    first, second = upstream.requests
    assert first.path == "/items/7"
    assert first.query == [
        ("limit", "5"),
        ("user.fields", "id,name,3,true"),
        ("filter[name]", "ada lovelace"),
        ("count", "2.5"),
        ("exact", "false"),
        ("where", '{"a":[1,2]}'),
        ("format", "json"),
    ]
    # nothing None or absent is sent (`fields` None; `name`, `count`… not given)
    assert second.query == [("limit", "1"), ("format", "json")]


async def test_a_declared_parameter_is_never_sent_twice(tmp_path: Path, upstream: FakeUpstream) -> None:
    capability = _capability(tmp_path, upstream.url)
    try:
        await capability.invoke(capability.find("tools-ns.list"), {"id": "1", "limit": 3, "size": 4, "trace": "x"})
    finally:
        await capability.close()
    [request] = upstream.requests
    # `limit` is both a `with` key and a declared parameter: sent once. `page-size` is the declared
    # `page_size` spelled otherwise (case, `-`, `_` aside, as placeholders match inputs): never sent
    # as a second parameter under that spelling. `trace` feeds a header's value, `id` the path.
    assert request.query == [("limit", "3"), ("format", "json")]
    assert request.headers["X-Trace"] == "t-x"


async def test_body_and_steps_keep_their_values_and_send_the_rest(tmp_path: Path) -> None:
    capability = _capability(tmp_path, dry_run=True)
    try:
        created = await capability.invoke(capability.find("tools-ns.create"), {"id": "1", "title": "T", "dry": True})
        stepped = await capability.invoke(
            capability.find("tools-ns.list-then-create"), {"id": "2", "fields": ["a", "b"]}
        )
    finally:
        await capability.close()
    assert isinstance(created, DryRun) and isinstance(stepped, DryRun)
    assert created.request["url"] == "https://api.example.com/items/1?dry=true"
    assert created.request["body"] == {"title": "T"}
    [step] = stepped.request["steps"]
    assert step["url"] == "https://api.example.com/items/2?user.fields=a,b"


async def test_published_inputs_are_the_ones_sent(tmp_path: Path, upstream: FakeUpstream) -> None:
    """MCP inputSchema, /openapi.json and the inputs the engine accepts agree."""
    capability = _capability(tmp_path, upstream.url)
    inferred = capability.find("tools-ns.list-inferred")
    schema = input_schema(inferred)
    # the `with` inputs, the consumed parameters passed through by name, the path placeholder,
    # and the variable of a parameter's value
    assert set(schema["properties"]) == {"id", "fields", "name", "limit", "page_size", "trace"}
    assert schema["properties"]["limit"]["type"] == "integer"
    assert schema["required"] == ["id"]
    assert {f.name for f in inferred.inputs} == set(schema["properties"])
    result = await capability.invoke(inferred, {"id": "3", "fields": "id,name", "name": "n"})
    assert isinstance(result, Success), result
    [rest_plan] = [p for p in plan([capability]) if p.kind == "rest"]
    server = Serving(rest_plan)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url("/openapi.json")) as response:
                document = await response.json()
            parameters = {p["name"]: p["in"] for p in document["paths"]["/items/{id}"]["get"]["parameters"]}
            assert parameters == {
                "id": "path",
                "fields": "query",
                "name": "query",
                "limit": "query",
                "page_size": "query",
                "trace": "query",
            }
            async with session.get(server.make_url("/items/9?fields=id,name&name=x&limit=2")) as response:
                assert response.status == 200, await response.text()
    finally:
        await server.close()
        await capability.close()
    mcp_request, rest_request = upstream.requests
    assert mcp_request.path == "/items/3"
    assert mcp_request.query == [("user.fields", "id,name"), ("filter[name]", "n")]
    assert rest_request.path == "/items/9"
    assert rest_request.query == [("limit", "2"), ("user.fields", "id,name"), ("filter[name]", "x")]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("a,b", "a,b"),
        (3, "3"),
        (1.5, "1.5"),
        (True, "true"),
        (["id", "name"], "id,name"),
        ([1, False, None], "1,false,"),
        ([], ""),
        ({"k": "v"}, '{"k":"v"}'),
        ([{"k": 1}], '[{"k":1}]'),
        (["ü"], "ü"),
    ],
)
def test_query_text(value, text) -> None:
    assert query_text(value) == text
