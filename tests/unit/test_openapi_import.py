"""`naftiko import openapi`: generated capability files are strict-valid and call what the document describes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from naftiko.engine.compile import CompileOptions, compile_capability
from naftiko.engine.results import DryRun
from naftiko.openapi_import import (
    PLACEHOLDER_BASE_URI,
    OpenApiImportError,
    generate,
    import_openapi,
    kebab,
    run_import,
)
from naftiko.spec.document import load_document
from support import REPO, shared_path


def fixture(name: str) -> Path:
    return shared_path("conformance", "official", "openapi-import", name)


def write(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    paths = {}
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths


def single(tmp_path: Path, spec: Path, **options: Any) -> tuple[Path, dict[str, Any]]:
    files = import_openapi(spec, **options)
    assert len(files) == 1, files.keys()
    [path] = write(tmp_path, files).values()
    return path, yaml.safe_load(path.read_text())


def assert_strict(path: Path) -> None:
    document = load_document(path, strict=True)
    assert document.valid, [str(d) for d in document.errors]
    assert not document.warnings, [str(d) for d in document.warnings]


def consumes(doc: dict) -> dict:
    [consumed] = doc["capability"]["consumes"]
    return consumed


def rest(doc: dict) -> dict:
    return next(e for e in doc["capability"]["exposes"] if e["type"] == "rest")


def mcp(doc: dict) -> dict:
    return next(e for e in doc["capability"]["exposes"] if e["type"] == "mcp")


def tools(doc: dict) -> dict[str, dict]:
    return {t["name"]: t for t in mcp(doc)["tools"]}


def rest_ops(doc: dict) -> dict[str, tuple[str, dict]]:
    return {op["name"]: (r["path"], op) for r in rest(doc)["resources"] for op in r["operations"]}


def consumed_ops(doc: dict) -> dict[str, tuple[str, dict]]:
    return {op["name"]: (r["path"], op) for r in consumes(doc)["resources"] for op in r["operations"]}


async def dry_run(path: Path, target: str, inputs: dict[str, Any]) -> dict[str, Any]:
    capability = compile_capability(load_document(path), CompileOptions(dry_run=True))
    try:
        found = capability.find(target)
        assert found is not None, target
        result = await capability.invoke(found, inputs)
    finally:
        await capability.close()
    assert isinstance(result, DryRun), result
    return result.request


# -- the official fixtures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "petstore-2.0.yaml",
        "petstore-3.0.yaml",
        "petstore-3.1.yaml",
        "complex-api.yaml",
        "no-operation-ids.yaml",
        "no-servers.yaml",
    ],
)
def test_every_official_fixture_imports_to_a_strict_valid_file(tmp_path: Path, name: str) -> None:
    path, doc = single(tmp_path, fixture(name))
    assert_strict(path)
    # Consumed parameters carry only name/in: types and descriptions live on the exposed side.
    for _, op in consumed_ops(doc).values():
        for parameter in op.get("inputParameters", []):
            assert set(parameter) <= {"name", "in", "value"}
    for tool in mcp(doc)["tools"]:
        for parameter in tool.get("inputParameters", []):
            assert {"name", "type", "description", "required"} <= set(parameter)
    assert rest(doc)["port"] == 8080 and mcp(doc)["port"] == 9090 and mcp(doc)["transport"] == "http"


@pytest.mark.parametrize(
    ("name", "namespace", "base_uri"),
    [
        ("petstore-2.0.yaml", "petstore", "https://petstore.swagger.io/v1"),
        ("petstore-3.0.yaml", "petstore", "https://petstore.swagger.io/v1"),
        ("petstore-3.1.yaml", "petstore-31", "https://petstore.swagger.io/v2"),
        ("complex-api.yaml", "complex-api", "https://api.complex.io/v2"),
        ("no-operation-ids.yaml", "no-operation-ids-api", "https://api.noopids.io"),
        ("no-servers.yaml", "no-servers-api", PLACEHOLDER_BASE_URI),
    ],
)
def test_namespace_from_title_and_base_uri_from_the_first_server(
    tmp_path: Path, name: str, namespace: str, base_uri: str
) -> None:
    path, doc = single(tmp_path, fixture(name))
    assert path.name == f"{namespace}.yaml"
    assert consumes(doc)["namespace"] == namespace
    assert consumes(doc)["baseUri"] == base_uri
    assert rest(doc)["namespace"] == f"{namespace}-rest" and mcp(doc)["namespace"] == f"{namespace}-mcp"


def test_missing_servers_use_a_placeholder_and_say_so(tmp_path: Path) -> None:
    path, _ = single(tmp_path, fixture("no-servers.yaml"))
    text = path.read_text()
    assert "the document names no server" in text.split("naftiko:")[0]  # a comment above the document
    path, doc = single(tmp_path, fixture("no-servers.yaml"), base_uri="https://items.example.com/api/")
    assert consumes(doc)["baseUri"] == "https://items.example.com/api"
    assert "names no server" not in path.read_text()


def test_operation_names_come_from_operation_ids_or_method_and_path(tmp_path: Path) -> None:
    _, doc = single(tmp_path, fixture("petstore-3.0.yaml"))
    assert list(tools(doc)) == ["list-pets", "create-pet", "show-pet-by-id", "delete-pet"]
    assert list(consumed_ops(doc)) == list(rest_ops(doc)) == list(tools(doc))
    _, doc = single(tmp_path, fixture("no-operation-ids.yaml"))
    assert list(tools(doc)) == ["get-widgets", "post-widgets", "delete-widgets-widget-id"]
    assert {t["call"] for t in tools(doc).values()} == {f"no-operation-ids-api.{n}" for n in tools(doc)}


def test_rest_paths_mirror_the_upstream_paths(tmp_path: Path) -> None:
    _, doc = single(tmp_path, fixture("petstore-3.1.yaml"))
    assert (
        {name: path for name, (path, _) in rest_ops(doc).items()}
        == {name: path for name, (path, _) in consumed_ops(doc).items()}
        == {
            "list-pets": "/pets",
            "create-pet": "/pets",
            "show-pet-by-id": "/pets/{petId}",
            "delete-pet": "/pets/{petId}",
        }
    )
    assert [r["name"] for r in consumes(doc)["resources"]] == ["pets", "pets-pet-id"]


@pytest.mark.parametrize(
    ("name", "auth", "variables"),
    [
        ("petstore-3.0.yaml", None, []),
        ("petstore-3.1.yaml", {"type": "bearer", "token": "{{env.PETSTORE_31_TOKEN}}"}, ["PETSTORE_31_TOKEN"]),
        (
            "complex-api.yaml",
            {"type": "bearer", "token": "{{env.COMPLEX_API_TOKEN}}"},
            ["COMPLEX_API_TOKEN"],
        ),  # the required scheme
    ],
)
def test_authentication_from_security_schemes_with_declared_binds(
    tmp_path: Path, name: str, auth: dict | None, variables: list[str]
) -> None:
    _, doc = single(tmp_path, fixture(name))
    assert consumes(doc).get("authentication") == auth
    declared = [key for bind in doc.get("binds", []) for key in bind["keys"]]
    assert declared == variables
    assert all(
        bind["namespace"] == "env" and bind["keys"] == {k: k for k in bind["keys"]} for bind in doc.get("binds", [])
    )


def test_hints_follow_the_http_method(tmp_path: Path) -> None:
    _, doc = single(tmp_path, fixture("petstore-3.0.yaml"))
    hints = {name: tool["hints"] for name, tool in tools(doc).items()}
    assert hints["list-pets"] == {"readOnly": True, "destructive": False, "idempotent": True, "openWorld": True}
    assert hints["create-pet"] == {"readOnly": False, "destructive": False, "idempotent": False, "openWorld": True}
    assert hints["delete-pet"] == {"readOnly": False, "destructive": True, "idempotent": True, "openWorld": True}
    assert tools(doc)["list-pets"]["label"] == "List all pets"
    assert tools(doc)["list-pets"]["description"] == "List all pets."


def test_inputs_are_typed_on_the_exposed_side(tmp_path: Path) -> None:
    _, doc = single(tmp_path, fixture("petstore-2.0.yaml"))
    assert consumed_ops(doc)["list-pets"][1]["inputParameters"] == [{"name": "limit", "in": "query"}]
    [limit] = tools(doc)["list-pets"]["inputParameters"]
    assert limit == {"name": "limit", "type": "integer", "description": "Query parameter limit.", "required": False}
    _, rest_limit = rest_ops(doc)["list-pets"]
    assert rest_limit["inputParameters"] == [
        {"name": "limit", "in": "query", "type": "integer", "description": "Query parameter limit."}
    ]
    [pet_id] = tools(doc)["show-pet-by-id"]["inputParameters"]
    assert pet_id["name"] == "petId" and pet_id["type"] == "integer" and pet_id["required"] is True


def test_request_bodies_are_one_body_input(tmp_path: Path) -> None:
    for name in ("petstore-2.0.yaml", "petstore-3.1.yaml"):
        _, doc = single(tmp_path, fixture(name))
        assert consumed_ops(doc)["create-pet"][1]["inputParameters"] == [{"name": "body", "in": "body"}]
        _, operation = rest_ops(doc)["create-pet"]
        assert operation["with"] == {"body": "rest.body"}
        [body] = operation["inputParameters"]
        assert (body["name"], body["in"], body["type"]) == ("body", "body", "object")
        assert "name (string, required)" in body["description"]
        tool = tools(doc)["create-pet"]
        assert tool["with"] == {"body": "tools.body"}
        assert tool["inputParameters"] == [
            {"name": "body", "type": "object", "description": body["description"], "required": True}
        ]


def test_outputs_are_typed_only_for_simple_objects(tmp_path: Path) -> None:
    _, doc = single(tmp_path, fixture("complex-api.yaml"))
    [output] = tools(doc)["get-user"]["outputParameters"]
    assert output["type"] == "object"
    assert output["properties"]["id"] == {"type": "number", "mapping": "$.id"}
    assert output["properties"]["address"]["properties"]["city"] == {"type": "string", "mapping": "$.city"}
    assert output["properties"]["tags"] == {
        "type": "array",
        "mapping": "$.tags",
        "items": {"type": "string", "mapping": "$"},
    }
    assert rest_ops(doc)["get-user"][1]["outputParameters"] == [output]
    assert "outputParameters" not in tools(doc)["list-users"]  # an array: passes through
    assert "outputParameters" not in tools(doc)["get-resource"]  # oneOf: passes through
    _, doc = single(tmp_path, fixture("petstore-3.1.yaml"))
    properties = tools(doc)["show-pet-by-id"]["outputParameters"][0]["properties"]
    assert properties["tag"]["type"] == "string"  # ["string", "null"]
    assert properties["owner"]["properties"]["email"] == {"type": "string", "mapping": "$.email"}


async def test_dry_run_requests(tmp_path: Path) -> None:
    path, _ = single(tmp_path, fixture("petstore-3.1.yaml"))
    request = await dry_run(path, "petstore-31-mcp.list-pets", {"limit": 5, "status": "sold"})
    assert (request["method"], request["url"]) == ("GET", "https://petstore.swagger.io/v2/pets?limit=5&status=sold")
    assert request["headers"]["Authorization"] == "Bearer ****"
    request = await dry_run(path, "petstore-31-mcp.create-pet", {"body": {"name": "Rex"}})
    assert (request["method"], request["url"], request["body"]) == (
        "POST",
        "https://petstore.swagger.io/v2/pets",
        {"name": "Rex"},
    )
    request = await dry_run(path, "petstore-31-rest.create-pet", {"body": {"name": "Rex", "tag": None}})
    assert request["body"] == {"name": "Rex", "tag": None}
    request = await dry_run(path, "petstore-31-mcp.delete-pet", {"petId": 7})
    assert (request["method"], request["url"]) == ("DELETE", "https://petstore.swagger.io/v2/pets/7")
    path, _ = single(tmp_path, fixture("petstore-2.0.yaml"))
    request = await dry_run(path, "petstore-mcp.show-pet-by-id", {"petId": 1})
    assert request["url"] == "https://petstore.swagger.io/v1/pets/1"


def test_split_by_tag(tmp_path: Path) -> None:
    files = import_openapi(fixture("complex-api.yaml"), split_by_tag=True)
    assert sorted(files) == ["complex-api-resources.yaml", "complex-api-users.yaml"]
    paths = write(tmp_path, files)
    names: list[str] = []
    for path in paths.values():
        assert_strict(path)
        doc = yaml.safe_load(path.read_text())
        names.extend(tools(doc))
        assert consumes(doc)["namespace"] == path.stem
    assert sorted(names) == ["get-resource", "get-user", "list-users"]
    files = import_openapi(fixture("complex-api.yaml"), split_by_tag=True, namespace="cx")
    assert sorted(files) == ["cx-resources.yaml", "cx-users.yaml"]


def test_namespace_option(tmp_path: Path) -> None:
    path, doc = single(tmp_path, fixture("petstore-3.1.yaml"), namespace="pets")
    assert path.name == "pets.yaml" and consumes(doc)["namespace"] == "pets"
    assert consumes(doc)["authentication"]["token"] == "{{env.PETS_TOKEN}}"
    assert tools(doc)["list-pets"]["call"] == "pets.list-pets"


# -- corners no fixture covers ----------------------------------------------------------------------

EDGE = """
openapi: 3.0.1
info: {title: "Edge Cases API", version: "1", description: "Edge **cases**. See [the docs](https://example.com)."}
servers:
  - url: "https://{region}.edge.example.com/{base}/"
    variables:
      region: {default: eu, enum: [eu, us]}
      base: {default: v3}
components:
  parameters:
    Page: {name: page, in: query, schema: {type: integer, default: 1}, description: "Page number"}
    Filter: {name: "filter[name]", in: query, required: true, schema: {type: string}}
  schemas:
    Thing: {type: object, properties: {id: {type: string}, "odd-name": {type: boolean}}}
  requestBodies:
    ThingBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}}
  securitySchemes:
    session: {type: apiKey, in: cookie, name: SESSIONID}
security: [{session: []}]
paths:
  /things/{thing.id}:
    parameters:
      - {name: thing.id, in: path, required: true, schema: {type: string}}
      - $ref: "#/components/parameters/Page"
    get:
      operationId: getThing
      parameters:
        - $ref: "#/components/parameters/Filter"
        - {name: X-Trace, in: header, schema: {type: string}}
        - {name: Accept, in: header, schema: {type: string}}
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}}
    put:
      operationId: getThing
      requestBody: {$ref: "#/components/requestBodies/ThingBody"}
      responses: {"204": {description: done}}
    head:
      responses: {"200": {description: ok}}
  /forms:
    post:
      summary: Post a form
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: {type: object, required: [a], properties: {a: {type: string}, b: {type: integer}}}
      responses: {"200": {description: ok}}
  /upload:
    post:
      requestBody: {content: {multipart/form-data: {schema: {type: object}}}}
      responses: {"200": {description: ok}}
"""


@pytest.fixture
def edge(tmp_path: Path) -> tuple[Path, dict]:
    spec = tmp_path / "edge.yaml"
    spec.write_text(EDGE)
    out = tmp_path / "out"
    out.mkdir()
    return single(out, spec)


def test_edge_document_is_strict_valid(edge: tuple[Path, dict]) -> None:
    path, doc = edge
    assert_strict(path)
    assert consumes(doc)["baseUri"] == "https://eu.edge.example.com/v3"  # variables resolved, no trailing slash
    assert doc["info"]["description"].endswith("Edge cases. See the docs.")


def test_odd_parameter_names_are_renamed_in_paths_and_aliased_in_queries(edge: tuple[Path, dict]) -> None:
    path, doc = edge
    ops = consumed_ops(doc)
    assert ops["get-thing"][0] == "/things/{thing_id}"
    assert ops["get-thing"][1]["inputParameters"] == [
        {"name": "thing_id", "in": "path"},
        {"name": "page", "in": "query"},  # path-level parameter, through $ref
        {"name": "X-Trace", "in": "header"},  # Accept is described by the response, not a parameter
    ]  # filter[name] cannot be a consumed parameter under the official schema: `with` sends it
    assert rest_ops(doc)["get-thing"][1]["with"] == {"filter[name]": "rest.filter_name"}
    assert tools(doc)["get-thing"]["with"] == {"filter[name]": "tools.filter_name"}
    filter_input = next(p for p in tools(doc)["get-thing"]["inputParameters"] if p["name"] == "filter_name")
    assert filter_input["required"] is True
    header = path.read_text().split("naftiko:")[0]
    assert "'thing.id' is renamed 'thing_id'" in header
    assert "query parameter 'filter[name]' is input 'filter_name'" in header
    assert "HEAD /things/{thing.id} is skipped" in header
    assert "POST /upload is skipped" in header
    page = next(p for p in tools(doc)["get-thing"]["inputParameters"] if p["name"] == "page")
    assert page == {"name": "page", "type": "integer", "description": "Page number. Default: 1.", "required": False}


# -- query parameters whose names the official schema forbids (`user.fields`, `filter[name]`) --------

X_LIKE = {
    "openapi": "3.0.0",
    "info": {"title": "X API v2", "version": "2.100"},
    "servers": [{"url": "https://api.x.com"}],
    "paths": {
        "/2/users/{id}": {
            "get": {
                "operationId": "findUserById",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "user.fields",
                        "in": "query",
                        "description": "A comma separated list of User fields to display.",
                        "schema": {"type": "array", "items": {"type": "string", "enum": ["id", "name"]}},
                    },
                    {"name": "expansions", "in": "query", "schema": {"type": "string"}},
                    {"name": "tweet.fields", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "X.Odd", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/collide": {
            "get": {
                "operationId": "collide",
                "parameters": [  # aliases come after every name that fits, whatever the order
                    {"name": "a.b", "in": "query", "schema": {"type": "string"}},
                    {"name": "a[b]", "in": "query", "schema": {"type": "string"}},
                    {"name": "a_b", "in": "query", "schema": {"type": "string"}},
                    {"name": "a_b_2", "in": "header", "schema": {"type": "string"}},
                    {"name": "...", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "ok"}},
            },
            "post": {
                "operationId": "collideBody",
                "parameters": [{"name": "body[]", "in": "query", "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": {"description": "ok"}},
            },
            "put": {
                "operationId": "collideForm",
                "parameters": [{"name": "name.first", "in": "query", "schema": {"type": "string"}}],
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "properties": {"name_first": {"type": "string"}}}
                        }
                    }
                },
                "responses": {"200": {"description": "ok"}},
            },
        },
    },
}


@pytest.fixture
def x_like(tmp_path: Path) -> tuple[Path, dict, list[str]]:
    [item] = generate(X_LIKE)
    [path] = write(tmp_path, {item.file_name: item.text()}).values()
    return path, item.document, item.warnings


def test_dotted_query_parameters_become_inputs_that_with_sends_under_their_own_name(
    x_like: tuple[Path, dict, list[str]],
) -> None:
    path, doc, warnings = x_like
    assert_strict(path)
    _, consumed = consumed_ops(doc)["find-user-by-id"]
    assert consumed["inputParameters"] == [{"name": "id", "in": "path"}, {"name": "expansions", "in": "query"}]
    _, operation = rest_ops(doc)["find-user-by-id"]
    assert operation["with"] == {"user.fields": "rest.user_fields", "tweet.fields": "rest.tweet_fields"}
    inputs = {p["name"]: p for p in operation["inputParameters"]}
    assert list(inputs) == ["id", "user_fields", "expansions", "tweet_fields"]  # the document's order
    assert inputs["user_fields"] == {
        "name": "user_fields",
        "in": "query",
        "type": "array",
        "description": "A comma separated list of User fields to display. One of: id, name. Sent upstream as the query parameter `user.fields`.",
    }
    assert inputs["tweet_fields"]["description"] == "Sent upstream as the query parameter `tweet.fields`."
    tool = tools(doc)["find-user-by-id"]
    assert tool["with"] == {"user.fields": "tools.user_fields", "tweet.fields": "tools.tweet_fields"}
    tool_inputs = {p["name"]: p for p in tool["inputParameters"]}
    assert (tool_inputs["user_fields"]["required"], tool_inputs["tweet_fields"]["required"]) == (False, True)
    assert tool_inputs["user_fields"]["description"] == inputs["user_fields"]["description"]
    assert (
        "GET /2/users/{id}: query parameter 'user.fields' is input 'user_fields' (names must fit [A-Za-z0-9-_*]); "
        "`with` sends it upstream as 'user.fields'" in warnings
    )
    assert any("header parameter 'X.Odd' is left out" in w for w in warnings)  # only query names are aliased


def test_aliases_never_take_a_name_that_fits_and_collisions_are_numbered(x_like: tuple[Path, dict, list[str]]) -> None:
    path, doc, _ = x_like
    assert_strict(path)
    _, operation = rest_ops(doc)["collide"]
    assert operation["with"] == {"a.b": "rest.a_b_3", "a[b]": "rest.a_b_4", "...": "rest.param"}
    assert [p["name"] for p in operation["inputParameters"]] == ["a_b_3", "a_b_4", "a_b", "param", "a_b_2"]
    assert rest_ops(doc)["collide-body"][1]["with"] == {"body[]": "rest.body_2", "body": "rest.body"}
    assert tools(doc)["collide-body"]["with"] == {"body[]": "tools.body_2", "body": "tools.body"}
    assert rest_ops(doc)["collide-form"][1]["with"] == {
        "name.first": "rest.name_first_2"
    }  # a form field is an input too
    assert [item.text() for item in generate(X_LIKE)] == [path.read_text()]  # deterministic


def test_upstream_names_read_back_exactly_from_the_file(x_like: tuple[Path, dict, list[str]]) -> None:
    """Reversible: each operation's query names are its consumed query parameters plus the `with`
    keys that name no consumed parameter; each of those is fed by exactly one input."""
    _, doc, _ = x_like
    consumed = consumed_ops(doc)
    for name, (_, operation) in rest_ops(doc).items():
        params = consumed[name][1].get("inputParameters", [])
        declared = {p["name"] for p in params}
        aliased = {
            k: v.removeprefix("rest.")
            for k, v in operation.get("with", {}).items()
            if k not in declared and k != "body"
        }
        assert len(set(aliased.values())) == len(aliased)
        assert {v.removeprefix("tools.") for k, v in tools(doc)[name].get("with", {}).items() if k in aliased} == set(
            aliased.values()
        )
        sent = {p["name"] for p in params if p["in"] == "query"} | set(aliased)
        source = next(
            op for item in X_LIKE["paths"].values() for op in item.values() if kebab(op["operationId"]) == name
        )
        assert sent == {p["name"] for p in source.get("parameters", []) if p["in"] == "query"}, name


async def test_aliased_inputs_are_accepted_and_the_other_parameters_still_sent(
    x_like: tuple[Path, dict, list[str]],
) -> None:
    path, _, _ = x_like
    for target in ("x-api-v2-rest.find-user-by-id", "x-api-v2-mcp.find-user-by-id"):
        request = await dry_run(path, target, {"id": "7", "expansions": "pinned", "tweet_fields": "lang"})
        assert request["url"].startswith("https://api.x.com/2/users/7?expansions=pinned")
    # the request carrying `tweet.fields=lang` itself: tests/integration/test_import_dotted_query.py


def test_duplicate_operation_ids_are_numbered(edge: tuple[Path, dict]) -> None:
    path, doc = edge
    assert list(tools(doc)) == ["get-thing", "get-thing-2", "post-forms"]
    assert "'get-thing' is already used: renamed 'get-thing-2'" in path.read_text().split("naftiko:")[0]


async def test_cookie_api_key_and_form_bodies(edge: tuple[Path, dict]) -> None:
    path, doc = edge
    assert "authentication" not in consumes(doc)  # apikey placement cookie is not in the official schema
    assert consumes(doc)["inputParameters"] == [
        {"name": "SESSIONID", "in": "cookie", "value": "{{env.EDGE_CASES_API_API_KEY}}"}
    ]
    assert doc["binds"] == [{"namespace": "env", "keys": {"EDGE_CASES_API_API_KEY": "EDGE_CASES_API_API_KEY"}}]
    assert consumed_ops(doc)["post-forms"][1]["body"] == {
        "type": "formUrlEncoded",
        "data": {"a": "{{a}}", "b": "{{b}}"},
    }
    request = await dry_run(path, "edge-cases-api-mcp.post-forms", {"a": "x y", "b": 2})
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["body"] == "a=x+y&b=2"
    assert request["cookies"] == {"SESSIONID": "****"}
    request = await dry_run(path, "edge-cases-api-rest.get-thing", {"thing_id": "a/b", "page": 2})
    assert request["url"] == "https://eu.edge.example.com/v3/things/a%2Fb?page=2"


def test_security_variants(tmp_path: Path) -> None:
    def auth_of(schemes: dict, **extra: Any) -> tuple[Any, list[str]]:
        spec = {
            "openapi": "3.0.0",
            "info": {"title": "S"},
            "servers": [{"url": "https://s.example.com"}],
            "components": {"securitySchemes": schemes},
            "security": [{next(iter(schemes)): []}],
            "paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}},
            **extra,
        }
        [item] = generate(spec)
        return consumes(item.document).get("authentication"), item.warnings

    assert auth_of({"b": {"type": "http", "scheme": "basic"}})[0] == {
        "type": "basic",
        "username": "{{env.S_USER}}",
        "password": "{{env.S_PASS}}",
    }
    assert auth_of({"k": {"type": "apiKey", "in": "query", "name": "api_key"}})[0] == {
        "type": "apikey",
        "key": "api_key",
        "value": "{{env.S_API_KEY}}",
        "placement": "query",
    }
    oauth, warnings = auth_of(
        {
            "o": {
                "type": "oauth2",
                "flows": {"clientCredentials": {"tokenUrl": "https://a.example.com/token", "scopes": {}}},
            }
        }
    )
    assert oauth == {
        "type": "oauth2",
        "tokenEndpoint": "https://a.example.com/token",
        "clientId": "{{env.S_CLIENT_ID}}",
        "clientSecret": "{{env.S_CLIENT_SECRET}}",
    }
    assert any("outside the official alpha2 schema" in w for w in warnings)
    bearer, warnings = auth_of(
        {
            "o": {
                "type": "oauth2",
                "flows": {
                    "authorizationCode": {"authorizationUrl": "https://a", "tokenUrl": "https://b", "scopes": {}}
                },
            }
        }
    )
    assert bearer == {"type": "bearer", "token": "{{env.S_TOKEN}}"}


def test_swagger_form_data_and_host() -> None:
    spec = {
        "swagger": "2.0",
        "info": {"title": "Old API"},
        "host": "old.example.com",
        "basePath": "/api/",
        "schemes": ["http"],
        "securityDefinitions": {"basic": {"type": "basic"}},
        "paths": {
            "/login": {
                "post": {
                    "operationId": "login",
                    "consumes": ["application/x-www-form-urlencoded"],
                    "parameters": [{"name": "user", "in": "formData", "type": "string", "required": True}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "schema": {"type": "object", "properties": {"token": {"type": "string"}}},
                        }
                    },
                }
            }
        },
    }
    [item] = generate(spec)
    doc = item.document
    assert consumes(doc)["baseUri"] == "http://old.example.com/api"
    assert consumes(doc)["authentication"]["type"] == "basic"  # no `security`: the only scheme, with a warning
    assert any("no operation requires a security scheme" in w for w in item.warnings)
    assert tools(doc)["login"]["inputParameters"] == [
        {"name": "user", "type": "string", "description": "Form field user.", "required": True}
    ]
    assert tools(doc)["login"]["outputParameters"] == [
        {"type": "object", "properties": {"token": {"type": "string", "mapping": "$.token"}}}
    ]


def test_kebab_case() -> None:
    assert kebab("listPets") == "list-pets"
    assert kebab("add_device") == "add-device"
    assert kebab("sendSMS") == "send-sms"
    assert kebab("No Operation IDs API") == "no-operation-ids-api"
    assert kebab("Customer.io Track API") == "customer-io-track-api"
    assert kebab("/customers/{identifier}/devices") == "customers-identifier-devices"


# -- the CLI entry point ----------------------------------------------------------------------------


def test_run_import_prints_one_file_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_import(str(fixture("petstore-3.0.yaml")), None, False, None) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["capability"]["consumes"][0]["namespace"] == "petstore"


def test_run_import_writes_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_import(str(fixture("complex-api.yaml")), str(tmp_path / "caps"), True, None) == 0
    assert sorted(p.name for p in (tmp_path / "caps").iterdir()) == [
        "complex-api-resources.yaml",
        "complex-api-users.yaml",
    ]
    assert "wrote" in capsys.readouterr().out


def test_run_import_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "other.yaml").write_text("hello: world\n")
    (tmp_path / "empty.yaml").write_text("openapi: 3.0.0\ninfo: {title: E}\npaths: {}\n")
    cases = [
        ((str(tmp_path / "missing.yaml"), None, False, None), 2, "cannot read"),
        ((str(tmp_path / "bad.json"), None, False, None), 1, "invalid JSON"),
        ((str(tmp_path / "other.yaml"), None, False, None), 1, "not an OpenAPI document"),
        ((str(tmp_path / "empty.yaml"), None, False, None), 1, "no operation to import"),
        ((str(fixture("complex-api.yaml")), None, True, None), 2, "--split-by-tag writes several files"),
        ((str(fixture("complex-api.yaml")), None, False, "not_kebab"), 2, "must be kebab-case"),
    ]
    for args, code, message in cases:
        assert run_import(*args) == code
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_run_import_never_writes_through_a_symbolic_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "seed.yaml"
    target.write_text("keep me")
    (tmp_path / "petstore.yaml").symlink_to(target)
    assert run_import(str(fixture("petstore-3.0.yaml")), str(tmp_path), False, None) == 2
    assert target.read_text() == "keep me"
    assert "symbolic link" in capsys.readouterr().err


def test_load_errors_raise_the_import_error(tmp_path: Path) -> None:
    (tmp_path / "v4.yaml").write_text("openapi: 4.0.0\npaths: {}\n")
    with pytest.raises(OpenApiImportError, match="unsupported OpenAPI version"):
        import_openapi(tmp_path / "v4.yaml")


# -- Customer.io ------------------------------------------------------------------------------------


def test_customer_io_documents_import_strict_valid(tmp_path: Path) -> None:
    upstreams = shared_path("upstreams", "customer-io")
    track = import_openapi(
        upstreams / "customer-io-track-api-openapi.json", split_by_tag=True, namespace="track", env_prefix="CUSTOMER_IO"
    )
    app = import_openapi(upstreams / "customer-io-app-api-openapi.json", namespace="app")
    pipelines = import_openapi(upstreams / "customer-io-pipelines-api-openapi.json", namespace="pipelines")
    operations = 0
    for folder, files in (("track", track), ("app", app), ("pipelines", pipelines)):
        (tmp_path / folder).mkdir()
        for path in write(tmp_path / folder, files).values():
            assert_strict(path)
            operations += len(tools(yaml.safe_load(path.read_text())))
    assert operations == 18 + 115 + 7
    region = yaml.safe_load(track["track-region.yaml"])
    assert consumes(region)["authentication"] == {
        "type": "basic",
        "username": "{{env.CUSTOMER_IO_USER}}",
        "password": "{{env.CUSTOMER_IO_PASS}}",
    }
    output = tools(region)["get-region"]["outputParameters"][0]
    assert set(output["properties"]) == {"url", "region", "environment_id"}


def test_curated_capabilities_are_strict_valid_and_do_not_collide() -> None:
    folder = REPO / "capabilities"
    generated = [
        p for p in sorted(folder.glob("*.yaml")) if p.read_text().startswith("# Generated by `naftiko import openapi`")
    ]
    if not generated:
        pytest.skip("no imported capability in capabilities/")
    routes: dict[tuple[str, str], str] = {}
    tool_names: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for expose in doc["capability"].get("exposes", []):
            for resource in expose.get("resources", []) if expose["type"] == "rest" else []:
                for op in resource["operations"]:
                    key = (op["method"], _route_shape(resource["path"]))
                    assert key not in routes, f"{key} in {path.name} and {routes.get(key)}"
                    routes[key] = path.name
            for tool in expose.get("tools", []) if expose["type"] == "mcp" else []:
                assert tool["name"] not in tool_names, (
                    f"{tool['name']} in {path.name} and {tool_names.get(tool['name'])}"
                )
                tool_names[tool["name"]] = path.name
    for path in generated:
        assert_strict(path)


def _route_shape(path: str) -> str:
    return re.sub(r"\{\{?[^}]+\}?\}", "{}", path)
