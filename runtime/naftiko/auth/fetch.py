"""One JSON document from the authorization server (metadata, keys, introspection), through the
runtime's own upstream client: bounded in time and size, proxies as `HTTP(S)_PROXY` say, the
system's trusted CAs (or `SSL_CERT_FILE`)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .. import json_text
from ..consumes.connections import ConnectionPool
from ..consumes.proxy import ProxyConfigError, ProxyRules
from ..consumes.request import OutgoingRequest
from ..consumes.transport import BodyTooLarge, BrokenAnswer, ConnectionFailed
from .oauth_settings import OAuthLimits


class FetchError(Exception):
    """Why a document could not be had, in words fit for the log (never a token). `answered`:
    the server answered, but not with the document (another URL may have it)."""

    def __init__(self, message: str, answered: bool = False):
        super().__init__(message)
        self.answered = answered


async def fetch_json(url: str, limits: OAuthLimits, form: dict[str, str] | None = None) -> dict[str, Any]:
    """GET `url` (POST `form` when given) and return its JSON object."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"{url[:200]!r} is not an http(s) URL")
    try:
        proxies = ProxyRules.from_environ(os.environ)
    except ProxyConfigError:
        proxies = None
    pool = ConnectionPool(limits.connect_timeout, limits.max_document_bytes, proxies=proxies)
    request = OutgoingRequest(
        "POST" if form is not None else "GET",
        f"{parts.scheme}://{parts.netloc}{parts.path or '/'}",
        query=parse_qsl(parts.query, keep_blank_values=True),
        headers={"Accept": "application/json"},
    )
    if form is not None:
        request.headers["Content-Type"] = "application/x-www-form-urlencoded"
        request.body = urlencode(form).encode()
    try:
        answer = await pool.send(request, limits.fetch_timeout)
    except (ConnectionFailed, BrokenAnswer) as exc:
        raise FetchError(f"{url} cannot be reached: {str(exc)[:200] or type(exc).__name__}") from None
    except TimeoutError:
        raise FetchError(f"{url} did not answer within {limits.fetch_timeout:g} s") from None
    except BodyTooLarge:
        raise FetchError(f"{url} answered more than {limits.max_document_bytes:,} bytes") from None
    except OSError as exc:
        raise FetchError(f"{url} cannot be reached: {exc.strerror or exc}") from None
    finally:
        await pool.close()
    if answer.status != 200:
        raise FetchError(f"{url} answered HTTP {answer.status}", answered=True)
    try:
        document = json_text.loads(answer.body)
    except (ValueError, RecursionError):
        raise FetchError(f"{url} did not answer JSON", answered=True) from None
    if not isinstance(document, dict):
        raise FetchError(f"{url} did not answer a JSON object", answered=True)
    return document
