"""Forward proxies from the environment, read as curl and requests read them.

- `http_proxy` / `HTTP_PROXY`: the proxy of http:// upstreams. Requests go to it with an
  absolute-form target (`GET http://host:port/path HTTP/1.1`).
- `https_proxy` / `HTTPS_PROXY`: the proxy of https:// upstreams. A `CONNECT host:port` tunnel
  is opened through it, then TLS runs to the upstream inside the tunnel (the proxy sees neither
  the requests nor the certificates' secrets).
- `no_proxy` / `NO_PROXY`: a comma list of upstreams reached directly. `*` alone: every one.
  `example.com` and `.example.com` both match example.com and every host under it; an IP
  address or network (`10.0.0.0/8`, `::1`, `[::1]`) matches the addresses in it; a `:port`
  suffix narrows an entry to that port.

The lower-case variable wins when both are set (as in curl). A proxy URL is `http://` (the
scheme may be left out) with an optional port (80 when absent, as in requests) and optional
`user:password@` (percent-encoded), sent as `Proxy-Authorization: Basic …` to the proxy only,
and never shown: a proxy is named by its `label`, `http://host:port`.

The rules are read once per load (`ProxyRules.from_environ`), and a pool asks `select` once
per origin, so a call pays nothing for them.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyConfigError(ValueError):
    """A proxy variable of the environment cannot be used (the message never holds its password)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # "Basic …", from user:password@

    @property
    def label(self) -> str:
        literal = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{literal}:{self.port}"

    @classmethod
    def parse(cls, variable: str, value: str) -> Proxy:
        text = value.strip()
        if "://" not in text:
            text = "http://" + text
        parts = urlsplit(text)
        shown = f"{variable}={parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if _port_of(parts) else "")
        if parts.scheme.lower() != "http":
            raise ProxyConfigError(f"{shown}: only http:// proxies are supported, not {parts.scheme}://")
        if not parts.hostname:
            raise ProxyConfigError(f"{variable}: the proxy URL has no host")
        port = _port_of(parts)
        if port is None and parts.netloc.rsplit("@", 1)[-1].endswith(":"):
            raise ProxyConfigError(f"{shown}: the port is missing after ':'")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls(parts.hostname.lower(), port or 80, authorization)


def _port_of(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise ProxyConfigError(
            f"a proxy port is not a number between 0 and 65535 (in {parts.scheme}://{parts.hostname}…)"
        ) from None


@dataclass(frozen=True, slots=True)
class _Direct:
    """One NO_PROXY entry: a domain (with its sub-hosts) or an IP network, maybe one port only."""

    domain: str | None
    network: Network | None
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> _Direct | None:
        host, port = entry, None
        if entry.startswith("["):  # [v6] or [v6]:port
            host, _, rest = entry[1:].partition("]")
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
        elif entry.count(":") == 1:  # host:port (a bare v6 address has more colons)
            host, _, text = entry.partition(":")
            if not text.isdigit():
                return None
            port = int(text)
        try:
            return cls(None, ipaddress.ip_network(host, strict=False), port)
        except ValueError:
            pass
        domain = host.lstrip("*").strip(".")
        return cls(domain, None, port) if domain else None

    def matches(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return address is not None and address.version == self.network.version and address in self.network
        domain = self.domain
        assert domain is not None
        return host == domain or host.endswith("." + domain)


@dataclass(frozen=True, slots=True)
class ProxyRules:
    http: Proxy | None = None
    https: Proxy | None = None
    direct: tuple[_Direct, ...] = ()
    all_direct: bool = False  # NO_PROXY=*

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProxyRules | None:
        """The rules of an environment, or None when it names no proxy (nothing to do per origin)."""
        http = _variable(environ, "http_proxy")
        https = _variable(environ, "https_proxy")
        if http is None and https is None:
            return None
        no_proxy = _variable(environ, "no_proxy")
        entries = [e.strip().lower() for e in (no_proxy[1] if no_proxy else "").split(",")]
        entries = [e for e in entries if e]
        direct = tuple(d for d in map(_Direct.parse, entries) if d is not None)
        return cls(
            Proxy.parse(http[0], http[1]) if http else None,
            Proxy.parse(https[0], https[1]) if https else None,
            direct,
            "*" in entries,
        )

    def select(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for scheme://host:port, or None to connect directly."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self.all_direct:
            return None
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if any(entry.matches(host, address, port) for entry in self.direct):
            return None
        return proxy


def _variable(environ: Mapping[str, str], lower: str) -> tuple[str, str] | None:
    """(name, value) of the lower-case variable when set and not empty, else of the upper-case one."""
    for name in (lower, lower.upper()):
        value = environ.get(name)
        if value and value.strip():
            return name, value
    return None


__all__ = ["Proxy", "ProxyConfigError", "ProxyRules"]
