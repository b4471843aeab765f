"""The settings of `naftiko run` and `naftiko call`: built once from the flags and the env file,
checked before anything is loaded, then passed down whole (uvicorn's `Config`, httpx's value
objects). Plain values only, so a settings object can cross into a worker process.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from .binds import parse_dotenv
from .consumes.client import ClientSettings
from .consumes.tls import UpstreamTls
from .engine.compile import CompileOptions
from .http.limits import ServerLimits

T = TypeVar("T")
MAX_WORKERS = 64


class UsageError(Exception):
    """A flag or its value is wrong; the message names the flag (exit 2)."""


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """What every listening port shares: limits, TLS, and who may call from where."""

    limits: ServerLimits = field(default_factory=ServerLimits)
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    allow_origins: tuple[str, ...] = ()  # browser origins allowed to call (CORS), beyond the request's own
    forwarded_allow_ips: tuple[str, ...] = ()  # peers whose X-Forwarded-* headers are believed; "*" any
    public_urls: Mapping[str, str] = field(default_factory=dict)  # exposure namespace → URL clients use
    reuse_port: bool = False  # SO_REUSEPORT: set in the workers of `--workers N`, which share each port


@dataclass(frozen=True, slots=True)
class RunConfig:
    paths: tuple[str, ...]
    compile: CompileOptions
    serve: ServeSettings = field(default_factory=ServeSettings)
    host: str | None = None
    ports: Mapping[str, int] = field(default_factory=dict)  # exposure namespace (or "control") → port
    stdio: bool = False
    watch: bool = False
    redis_url: str | None = None  # `--redis`: rate limits and MCP sessions shared through it (state/)
    workers: int = 1  # serving processes (`--workers N`, supervisors/); 1 serves in this process
    gateway: bool = False  # `--gateway`: each exposure under its namespace (gateway/)

    def check_names(self, consumed: Iterable[str], exposed: Iterable[str]) -> None:
        """Every namespace a flag names exists in the loaded capabilities (else UsageError naming both).
        `exposed`: exposure namespaces, or the kind of an exposure without one (`control`)."""
        check_namespaces(self.compile, consumed)
        exposures = set(exposed)  # read once: it may be a generator
        _known("--port", self.ports, exposures)
        _known("--public-url", self.serve.public_urls, exposures - {"control"})


def check_namespaces(options: CompileOptions, consumed: Iterable[str]) -> None:
    known = set(consumed)
    for flag, names in (
        ("--upstream", options.upstreams),
        ("--rate-limit", options.rate_limits),
        ("--upstream-cafile/--upstream-certfile/--upstream-keyfile", options.upstream_tls),
        ("--upstream-timeout/--upstream-connect-timeout", options.namespace_settings),
    ):
        _known(flag, names, known)


def _known(flag: str, given: Iterable[str], known: set[str]) -> None:
    unknown = sorted(set(given) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise UsageError(f"{flag}: no namespace named {', '.join(map(repr, unknown))} (known: {listed})")


# --- building from the command line ------------------------------------------------------------


def add_upstream_flags(parser: argparse.ArgumentParser) -> None:
    """Flags about consumed namespaces, shared by `run` and `call`."""
    parser.add_argument(
        "--dry-run", action="store_true", help="answer every call with the request that would be sent; needs no secrets"
    )
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NS=URL",
        help="override the baseUri of a consumed namespace (http or https)",
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="NS=RPS",
        help="at most RPS requests per second to a consumed namespace",
    )
    parser.add_argument(
        "--upstream-cafile",
        action="append",
        default=[],
        metavar="NS=FILE",
        help="trust this CA (PEM) for a namespace's TLS upstream",
    )
    parser.add_argument(
        "--upstream-certfile",
        action="append",
        default=[],
        metavar="NS=FILE",
        help="client certificate (PEM) for mutual TLS to a namespace",
    )
    parser.add_argument(
        "--upstream-keyfile", action="append", default=[], metavar="NS=FILE", help="key of --upstream-certfile (PEM)"
    )
    parser.add_argument(
        "--upstream-timeout",
        action="append",
        default=[],
        metavar="NS=SECONDS",
        help="total time for one call to a namespace (default 30)",
    )
    parser.add_argument(
        "--upstream-connect-timeout",
        action="append",
        default=[],
        metavar="NS=SECONDS",
        help="time to open a connection to a namespace (default 5)",
    )


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the listening side of `run` (names as uvicorn and Python's ssl spell them)."""
    limits = ServerLimits()
    parser.add_argument(
        "--max-connections", metavar="N", help=f"client connections open at once (default {limits.max_connections})"
    )
    parser.add_argument(
        "--timeout-keep-alive",
        metavar="SECONDS",
        help=f"close idle connections after this (default {limits.keep_alive_timeout:g})",
    )
    parser.add_argument(
        "--timeout-header",
        metavar="SECONDS",
        help=f"time for a request's line and headers (default {limits.header_timeout:g})",
    )
    parser.add_argument(
        "--timeout-body",
        metavar="SECONDS",
        help=f"time for a request's body once its head is in (default {limits.body_timeout:g})",
    )
    parser.add_argument(
        "--ssl-certfile", metavar="FILE", help="serve HTTPS on every REST and MCP port with this certificate (PEM)"
    )
    parser.add_argument(
        "--ssl-keyfile", metavar="FILE", help="the key of --ssl-certfile (PEM; default: inside the certificate file)"
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed to call (CORS), repeatable",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated peers whose X-Forwarded-For/-Proto/-Host are trusted ('*': any)",
    )
    parser.add_argument(
        "--public-url",
        action="append",
        default=[],
        metavar="NS=URL",
        help="the URL clients reach an exposure at (for /openapi.json)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share rate limits and MCP sessions with every process using this Redis "
        "(redis://, rediss:// or unix://; default: $NAFTIKO_REDIS_URL)",
    )


def compile_options(args: argparse.Namespace, environ: Mapping[str, str]) -> CompileOptions:
    upstreams = parse_pairs(args.upstream, "--upstream")
    for namespace, url in upstreams.items():
        _check_url("--upstream", f"{namespace}={url}", url)
    tls: dict[str, UpstreamTls] = {}
    for flag, attribute in (
        ("--upstream-cafile", "cafile"),
        ("--upstream-certfile", "certfile"),
        ("--upstream-keyfile", "keyfile"),
    ):
        for namespace, path in parse_pairs(getattr(args, attribute_name(flag)), flag).items():
            tls[namespace] = replace(tls.get(namespace, UpstreamTls()), **{attribute: _readable(flag, path)})
    for namespace, files in tls.items():
        if files.keyfile is not None and files.certfile is None:
            raise UsageError(f"--upstream-keyfile {namespace}=…: needs --upstream-certfile {namespace}=FILE too")
    settings: dict[str, ClientSettings] = {}
    for flag, attribute in (("--upstream-timeout", "total_timeout"), ("--upstream-connect-timeout", "connect_timeout")):
        for namespace, text in parse_pairs(getattr(args, attribute_name(flag)), flag).items():
            settings[namespace] = replace(
                settings.get(namespace, ClientSettings()), **{attribute: _seconds(flag, text)}
            )
    return CompileOptions(
        dry_run=args.dry_run,
        upstreams=upstreams,
        environ=environ,
        rate_limits=parse_rates(args.rate_limit),
        upstream_tls=tls,
        namespace_settings=settings,
    )


def run_config(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> RunConfig:
    """The whole `naftiko run` configuration; raises UsageError naming the first bad flag."""
    env = dict(os.environ if environ is None else environ)
    if args.env_file is not None:
        try:
            env.update(parse_dotenv(Path(args.env_file).read_text(encoding="utf-8")))
        except OSError as exc:
            raise UsageError(f"--env-file {args.env_file}: {exc.strerror}") from None
    defaults = ServerLimits()
    limits = ServerLimits(
        max_connections=_optional(
            args.max_connections, defaults.max_connections, lambda t: _count("--max-connections", t)
        ),
        keep_alive_timeout=_optional(
            args.timeout_keep_alive, defaults.keep_alive_timeout, lambda t: _seconds("--timeout-keep-alive", t)
        ),
        header_timeout=_optional(
            args.timeout_header, defaults.header_timeout, lambda t: _seconds("--timeout-header", t)
        ),
        body_timeout=_optional(args.timeout_body, defaults.body_timeout, lambda t: _seconds("--timeout-body", t)),
    )
    if args.ssl_keyfile is not None and args.ssl_certfile is None:
        raise UsageError("--ssl-keyfile needs --ssl-certfile")
    public_urls = parse_pairs(args.public_url, "--public-url")
    for namespace, url in public_urls.items():
        _check_url("--public-url", f"{namespace}={url}", url)
    serve = ServeSettings(
        limits=limits,
        ssl_certfile=None if args.ssl_certfile is None else _readable("--ssl-certfile", args.ssl_certfile),
        ssl_keyfile=None if args.ssl_keyfile is None else _readable("--ssl-keyfile", args.ssl_keyfile),
        allow_origins=tuple(_origin(o) for o in args.allow_origin),
        forwarded_allow_ips=_addresses(args.forwarded_allow_ips),
        public_urls=public_urls,
    )
    return RunConfig(
        paths=tuple(args.paths),
        compile=compile_options(args, env),
        serve=serve,
        host=args.host,
        ports={ns: _port(value) for ns, value in parse_pairs(args.port, "--port").items()},
        stdio=args.stdio,
        watch=args.watch,
        redis_url=_redis_url(args.redis if args.redis is not None else env.get("NAFTIKO_REDIS_URL") or None),
        workers=_workers(args.workers, args.stdio),
        gateway=args.gateway,
    )


def attribute_name(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def parse_pairs(pairs: Sequence[str], flag: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} must look like NAME=VALUE, got {pair!r}")
        parsed[key] = value
    return parsed


def parse_rates(pairs: Sequence[str]) -> dict[str, float]:
    """`--rate-limit NS=RPS` pairs; RPS a positive number of requests per second."""
    rates: dict[str, float] = {}
    for namespace, text in parse_pairs(pairs, "--rate-limit").items():
        rate = _number(text)
        if not 0 < rate < math.inf:
            raise UsageError(f"--rate-limit needs a positive number of requests per second, got {text!r}")
        rates[namespace] = rate
    return rates


def _optional(text: str | None, default: T, parse: Callable[[str], T]) -> T:
    return default if text is None else parse(text)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _seconds(flag: str, text: str) -> float:
    value = _number(text)
    if not 0 < value < math.inf:
        raise UsageError(f"{flag} needs a positive number of seconds, got {text!r}")
    return value


def _count(flag: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{flag} needs a whole number of at least 1, got {text!r}")
    return int(text)


def _workers(text: str | None, stdio: bool) -> int:
    if text is None:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise UsageError(f"--workers needs a whole number between 1 and {MAX_WORKERS}, got {text!r}")
    if stdio:
        raise UsageError("--workers cannot go with --stdio, which serves one client on stdin/stdout in one process")
    if int(text) > 1 and not sys.platform.startswith("linux"):
        raise UsageError("--workers above 1 needs Linux, whose SO_REUSEPORT spreads connections over the workers")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"--port needs a port number between 1 and 65535, got {text!r}")
    return int(text)


def _check_url(flag: str, given: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{flag} {given}: needs an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise UsageError(f"{flag} {given}: the port is not a number between 0 and 65535") from None


def _redis_url(url: str | None) -> str | None:
    """The flag wins over the environment; either way the message says `--redis` (and never the password)."""
    if url is None:
        return None
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise UsageError("--redis: the port is not a number between 0 and 65535") from None
    scheme = parts.scheme.lower()
    where = parts.path if scheme == "unix" else parts.hostname
    if scheme not in ("redis", "rediss", "unix") or not where:
        shown = url if parts.password is None else "a URL with a password"
        raise UsageError(f"--redis needs a redis://HOST[:PORT][/DB], rediss://… or unix:///PATH URL, got {shown!r}")
    return url


def _origin(text: str) -> str:
    origin = text.rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise UsageError(
            f"--allow-origin needs an origin such as https://app.example.com (scheme, host, optional port), got {text!r}"
        )
    return origin.lower()


def _addresses(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    addresses = tuple(a.strip() for a in text.split(",") if a.strip())
    for address in addresses:
        if address == "*":
            continue
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise UsageError(
                f"--forwarded-allow-ips needs IP addresses or networks separated by commas, or '*', got {address!r}"
            ) from None
    return addresses


def _readable(flag: str, path: str) -> str:
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise UsageError(f"{flag}: cannot read {path!r}")
    return path
