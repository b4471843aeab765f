"""`naftiko import openapi`: turn an OpenAPI 3.x or Swagger 2.0 document into capability files.

Each generated file holds one consumed HTTP namespace, a REST exposure mirroring the upstream
paths (port 8080) and an MCP exposure with one tool per operation (port 9090), and is meant to
pass `naftiko validate --strict`:

* consumed `inputParameters` carry only `name`/`in`; types, descriptions and `required` live
  on the exposed side (REST `inputParameters`, MCP tool `inputParameters`);
* a JSON request body is the consumed `{name: body, in: body}` parameter, fed from the REST
  input `{name: body, in: body}` (the whole request body) or the tool argument `body`;
  a form body becomes a `formUrlEncoded` body with one input per field;
* outputs are typed only when the 2xx JSON response is a simple object (every property a
  scalar, a simple object or an array of those); otherwise the body passes through untouched;
* names are kebab-case; a path parameter whose name does not fit `[A-Za-z0-9-_*]` is renamed;
  such a query parameter (`user.fields`, `filter[name]`) becomes the input `user_fields`
  (`filter_name`; numbered `_2`, `_3`… when the operation already uses that name) and the
  REST and MCP `with` maps send it upstream under its own name (`user.fields: rest.user_fields`);
  a header or cookie with such a name is left out with a warning;
* credentials come from `binds` (`{{env.<PREFIX>_USER}}`, `_PASS`, `_TOKEN`, `_API_KEY`, …).

Warnings are written as comments at the top of each file and returned to the CLI.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .common import MCP_PORT, PLACEHOLDER_BASE_URI, REST_PORT, OpenApiImportError
from .document import Generated, generate, render
from .source import _valid_base_uri, load_spec
from .text import _is_kebab, kebab

__all__ = [
    "MCP_PORT",
    "PLACEHOLDER_BASE_URI",
    "REST_PORT",
    "Generated",
    "OpenApiImportError",
    "generate",
    "import_openapi",
    "kebab",
    "load_spec",
    "render",
    "run_import",
]

# -- public API ---------------------------------------------------------------------------------


def import_openapi(
    spec_path: Path,
    *,
    namespace: str | None = None,
    split_by_tag: bool = False,
    base_uri: str | None = None,
    env_prefix: str | None = None,
) -> dict[str, str]:
    """{file name: YAML text} for the document at `spec_path`. Raises OpenApiImportError."""
    spec = load_spec(Path(spec_path))
    generated = generate(
        spec,
        source=Path(spec_path).name,
        namespace=namespace,
        split_by_tag=split_by_tag,
        base_uri=base_uri,
        env_prefix=env_prefix,
    )
    return {g.file_name: g.text() for g in generated}


def run_import(
    spec: str,
    out_dir: str | None,
    split_by_tag: bool,
    namespace: str | None,
    base_uri: str | None = None,
    env_prefix: str | None = None,
) -> int:
    """The CLI command. 0: written; 1: the document cannot be imported; 2: usage or I/O error."""
    prog = "naftiko import openapi"
    if split_by_tag and out_dir is None:
        print(f"{prog}: --split-by-tag writes several files: give a folder with -o DIR", file=sys.stderr)
        return 2
    if namespace is not None and not _is_kebab(namespace):
        print(f"{prog}: --namespace {namespace!r} must be kebab-case (letters, digits and '-')", file=sys.stderr)
        return 2
    if base_uri is not None and not _valid_base_uri(base_uri.rstrip("/")):
        print(
            f"{prog}: --base-uri {base_uri!r} must be an http(s) URL with a host and no query or '{{'", file=sys.stderr
        )
        return 2
    try:
        document = load_spec(Path(spec))
    except OSError as exc:
        print(f"{prog}: cannot read {spec}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except OpenApiImportError as exc:
        print(f"{prog}: {spec}: {exc}", file=sys.stderr)
        return 1
    try:
        generated = generate(
            document,
            source=Path(spec).name,
            namespace=namespace,
            split_by_tag=split_by_tag,
            base_uri=base_uri,
            env_prefix=env_prefix,
        )
    except OpenApiImportError as exc:
        print(f"{prog}: {spec}: {exc}", file=sys.stderr)
        return 1
    except (RecursionError, ValueError, TypeError, KeyError, AttributeError) as exc:  # a malformed corner
        print(f"{prog}: {spec}: cannot import this document ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    for item in generated:
        for warning in item.warnings:
            print(f"{prog}: warning: {item.file_name}: {warning}", file=sys.stderr)
    if out_dir is None:
        [item] = generated
        text = item.text()
        problems = _self_check({item.file_name: text})
        for problem in problems:
            print(f"{prog}: warning: {problem}", file=sys.stderr)
        sys.stdout.write(text)
        return 0
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for item in generated:
            target = folder / item.file_name
            if target.is_symlink():
                print(f"{prog}: refusing to overwrite {target}: it is a symbolic link", file=sys.stderr)
                return 2
        for item in generated:
            (folder / item.file_name).write_text(item.text(), encoding="utf-8")
    except OSError as exc:
        print(f"{prog}: cannot write to {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for problem in _self_check({str(folder / g.file_name): None for g in generated}):
        print(f"{prog}: warning: {problem}", file=sys.stderr)
    for item in generated:
        print(f"wrote {folder / item.file_name} ({item.operations} operations)")
    return 0


def _self_check(files: Mapping[str, str | None]) -> list[str]:
    """Strict-validate what was generated; each problem is one line (they should be rare)."""
    from ..spec.document import load_document

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in files.items():
            path = Path(name)
            if text is not None:
                path = Path(scratch) / Path(name).name
                path.write_text(text, encoding="utf-8")
            document = load_document(path, strict=True)
            for diagnostic in document.errors:
                problems.append(f"{Path(name).name} does not pass --strict: {diagnostic.message}")
    return problems
