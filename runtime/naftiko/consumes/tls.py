"""TLS to upstreams: which CAs a namespace trusts, and the client certificate it shows.

`UpstreamTls` is a plain value (from `--upstream-cafile/-certfile/-keyfile`, per consumed
namespace); `client_context` turns it into an `ssl.SSLContext` once per distinct value and
file versions (path, size, modification time), so namespaces that share files share a context,
and a reload after a certificate is renewed in place reads the new files.

Which CAs are trusted, first that applies (as curl and requests do):
1. the namespace's `cafile`: only that file (a private CA);
2. `SSL_CERT_FILE` of the runtime's environment: only that bundle;
3. the system's default store.

A file that cannot be read or is not what it should be raises `UpstreamTlsError` (a
`ValueError`) naming the file, when the capability is loaded, not at the first call.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    cafile: str | None = None  # PEM bundle of the CAs trusted instead of the default store
    certfile: str | None = None  # PEM client certificate (mutual TLS); may hold the key too
    keyfile: str | None = None  # PEM key of `certfile`, when not inside it


class UpstreamTlsError(ValueError):
    """A CA, certificate or key file of upstream TLS is unreadable or invalid."""


def cert_file_of(environ: Mapping[str, str]) -> str | None:
    """`SSL_CERT_FILE` of an environment, when set and not empty."""
    return environ.get("SSL_CERT_FILE") or None


def client_context(tls: UpstreamTls | None = None, cert_file: str | None = None) -> ssl.SSLContext:
    """The SSL context for upstreams with `tls`, given the environment's `SSL_CERT_FILE`.
    Raises UpstreamTlsError naming the first file at fault."""
    tls = tls or _NONE
    if tls.keyfile is not None and tls.certfile is None:
        raise UpstreamTlsError(f"keyfile {tls.keyfile} is given without a certfile")
    cafile, what = (tls.cafile, "cafile") if tls.cafile is not None else (cert_file, "SSL_CERT_FILE")
    files = tuple(
        (name, path)
        for name, path in ((what, cafile), ("certfile", tls.certfile), ("keyfile", tls.keyfile))
        if path is not None
    )
    return _context(tls, cafile, what, tuple(_version(name, path) for name, path in files))


_NONE = UpstreamTls()


@lru_cache(maxsize=64)
def _context(tls: UpstreamTls, cafile: str | None, what: str, versions: tuple[tuple[int, int], ...]) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (ssl.SSLError, ValueError) as exc:
        raise UpstreamTlsError(f"{what} {cafile} holds no PEM certificate ({_reason(exc)})") from None
    if tls.certfile is not None:
        try:
            context.load_cert_chain(tls.certfile, tls.keyfile, password=_no_password)
        except (ssl.SSLError, ValueError) as exc:
            files = f"certfile {tls.certfile}" + (f" and keyfile {tls.keyfile}" if tls.keyfile else "")
            raise UpstreamTlsError(
                f"{files}: not a PEM certificate with its matching, unencrypted key ({_reason(exc)})"
            ) from None
    return context


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of prompting on the terminal


def _version(name: str, path: str) -> tuple[int, int]:
    """(size, modification time) of a file that can be read, else UpstreamTlsError."""
    try:
        with open(path, "rb") as file:
            file.read(1)
            stat = os.fstat(file.fileno())
    except OSError as exc:
        raise UpstreamTlsError(f"{name} {path} cannot be read: {exc.strerror or exc}") from None
    return stat.st_size, stat.st_mtime_ns


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return reason or str(exc).splitlines()[0][:200]


__all__ = ["UpstreamTls", "UpstreamTlsError", "cert_file_of", "client_context"]
