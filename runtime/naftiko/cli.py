"""Command line: argument parsing only; each command calls into the package."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import UsageError, add_serve_flags, add_upstream_flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naftiko", description="Serve Naftiko capability files as REST APIs and MCP servers."
    )
    parser.add_argument("--version", action="version", version=f"naftiko {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check capability files against the schema and the runtime's rules")
    validate.add_argument(
        "--strict", action="store_true", help="hold files to the official alpha2 schema (deviations are errors)"
    )
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.add_argument(
        "paths", nargs="+", metavar="PATH", help="a capability file, or a folder searched for *.yaml/*.yml"
    )
    call = commands.add_parser("call", help="invoke one operation or tool and print the JSON result")
    add_upstream_flags(call)
    call.add_argument("file", metavar="FILE")
    call.add_argument(
        "target", metavar="TARGET", help="namespace.name of a consumed operation, a REST operation or an MCP tool"
    )
    call.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="K=V",
        help="an input; V is parsed as JSON when it can be, else kept as text",
    )
    call.add_argument("--json", metavar="JSON", help="all inputs as one JSON object")
    run = commands.add_parser("run", help="serve capabilities: REST APIs and MCP servers")
    add_upstream_flags(run)
    add_serve_flags(run)
    run.add_argument("--host", help="bind address for every exposure (default: the file's address, else 127.0.0.1)")
    run.add_argument(
        "--port", action="append", default=[], metavar="NAMESPACE=PORT", help="serve an exposure on another port"
    )
    run.add_argument("--env-file", metavar="FILE", help="read variables from a .env file before resolving binds")
    run.add_argument("--watch", action="store_true", help="reload files when they change (always on for folders)")
    run.add_argument(
        "--workers", metavar="N", help='serving processes sharing the ports (default 1; see README "Deploy")'
    )
    run.add_argument(
        "--gateway",
        action="store_true",
        help="serve each exposure under its namespace: REST at /NS/…, MCP at /mcp/NS and /mcp (tools NS.TOOL)",
    )
    run.add_argument(
        "--stdio", action="store_true", help="serve the MCP exposure over stdin/stdout (logs go to stderr)"
    )
    run.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="capability files or folders (default: the embedded Customer.io Track capability)",
    )

    inspect = commands.add_parser(
        "inspect", help="list the REST routes and MCP tools of capabilities, with their inputs"
    )
    inspect.add_argument("--format", choices=("text", "json"), default="text")
    inspect.add_argument("--gateway", action="store_true", help="the routes and tool names of `run --gateway`")
    inspect.add_argument("paths", nargs="+", metavar="PATH")

    importer = commands.add_parser("import", help="generate capability files from another description")
    sources = importer.add_subparsers(dest="source", required=True, metavar="SOURCE")
    from_openapi = sources.add_parser("openapi", help="from an OpenAPI 3.x or Swagger 2.0 document (JSON or YAML)")
    from_openapi.add_argument("spec", metavar="SPEC")
    from_openapi.add_argument(
        "-o", "--output", metavar="DIR", help="write the files here (default: print the one file)"
    )
    from_openapi.add_argument("--split-by-tag", action="store_true", help="one capability file per tag")
    from_openapi.add_argument("--namespace", help="the consumed namespace (default: from info.title)")
    from_openapi.add_argument("--base-uri", help="the baseUri, when the document has no servers")
    from_openapi.add_argument("--env-prefix", help="prefix of the credential variables (default: from the namespace)")

    openapi = commands.add_parser("openapi", help="print the OpenAPI 3.1 document of a REST exposure")
    openapi.add_argument("--namespace", help="the REST exposure, when the file has several")
    openapi.add_argument("file", metavar="FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args)
    if args.command == "call":
        from .call_command import run_call
        from .config import compile_options

        try:
            options = compile_options(args, os.environ)
        except UsageError as exc:
            return _usage("call", exc)
        return run_call(args.file, args.target, args.arg, args.json, options)
    if args.command == "run":
        from .config import run_config
        from .run_command import run

        try:
            config = run_config(args)
        except UsageError as exc:
            return _usage("run", exc)
        return run(config)
    if args.command == "inspect":
        from .inspect_command import run_inspect

        if args.gateway:
            from .gateway.inspect import inspect_gateway

            return inspect_gateway(args.paths, args.format)
        return run_inspect(args.paths, args.format)
    if args.command == "import":
        from .openapi_import import run_import

        return run_import(
            args.spec,
            args.output,
            args.split_by_tag,
            args.namespace,
            base_uri=args.base_uri,
            env_prefix=args.env_prefix,
        )
    if args.command == "openapi":
        from .openapi_command import print_openapi

        return print_openapi(args.file, args.namespace)
    return 2


def _usage(command: str, exc: UsageError) -> int:
    print(f"naftiko {command}: {exc}", file=sys.stderr)
    return 2


def _validate(args: argparse.Namespace) -> int:
    from .validation import (
        UnreadablePath,
        check_files,
        discover,
        render_json,
        render_text,
    )

    try:
        files = discover(args.paths)
        if not files:
            print("naftiko validate: no *.yaml or *.yml files found", file=sys.stderr)
            return 2
        reports = check_files(files, strict=args.strict)
    except UnreadablePath as exc:
        print(f"naftiko validate: {exc}", file=sys.stderr)
        return 2
    print(render_json(reports) if args.format == "json" else render_text(reports))
    return 0 if all(r.valid for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
