"""MCP Streamable HTTP at `/mcp` (DESIGN §4.7).

POST carries one JSON-RPC message (or a 2025-03-26 batch). A handshake-era client gets an
`Mcp-Session-Id` from `initialize` and must send it afterwards (400 without, 404 when unknown);
a 2026-07-28 client sends self-contained requests whose routing headers must agree with the
body. Answers are JSON, or one SSE event when the client accepts only `text/event-stream`.
A tools/call that asks for progress or log notifications is answered with an SSE stream: the
notifications as the call runs, then its response. GET opens the session's own stream (resource
updates go there; a newer GET replaces an older one); DELETE ends a session.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .. import json_text
from ..auth import CallerAuth, guard
from ..http import Answer, Handler, Request, Responder, Response, StreamingResponse
from .mcp import (
    HANDSHAKE_VERSIONS,
    HEADER_MISMATCH,
    UNSUPPORTED_VERSION,
    VERSION_KEY,
    McpServer,
    Session,
)
from .mcp_jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    encode,
    error_response,
)
from .mcp_streams import EventStream, event

SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
_LOCAL_ORIGIN = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?", re.IGNORECASE)
_NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_B64_HEADER = re.compile(r"=\?base64\?(.*)\?=")
# 2026-07-28 answers JSON-RPC errors with a matching HTTP status; handshake-era ones with 200.
_MODERN_STATUS = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    UNSUPPORTED_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}


def mcp_routes(server: McpServer, auth: CallerAuth | None, allowed_origins: Sequence[str] = ()) -> dict[str, Responder]:
    """The handlers of `/mcp` by method; `allowed_origins` adds to the loopback origins always allowed.
    The server has read the body whole and answered 413 past its limit before these run."""
    allowed = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    def guarded(handler: Handler) -> Responder:
        """The handler behind the Origin and auth checks (a plain function: no extra coroutine per request)."""
        checked = guard(auth, handler)  # the caller check (naftiko/auth/guard.py)

        def origin_guard(request: Request) -> Answer:
            origin = request.headers.get("Origin")
            if origin is not None and not _LOCAL_ORIGIN.fullmatch(origin) and origin.rstrip("/").lower() not in allowed:
                return _reply(error_response(None, INVALID_REQUEST, "Forbidden: origin not allowed"), status=403)
            return checked(request)

        return origin_guard

    async def post(request: Request) -> Response:
        if request.content_type != "application/json":
            return _reply(
                error_response(None, INVALID_REQUEST, "Unsupported Media Type: send application/json"), status=415
            )
        sse = _wants_sse(request.headers.get("Accept"))
        if sse is None:
            return _reply(
                error_response(None, INVALID_REQUEST, "Not Acceptable: accept application/json or text/event-stream"),
                status=406,
            )
        session_id = request.headers.get(SESSION_HEADER)
        if session_id is None or server.shared is None:
            session = server.session(session_id) if session_id is not None else None
        else:
            session = await server.shared_session(session_id)  # any replica's (state/sessions.py)
        if session_id is not None and session is None:
            return _reply(
                error_response(None, INVALID_REQUEST, "Session not found: initialize again"), status=404, sse=sse
            )
        try:
            payload = json_text.loads(request.body)
        except (ValueError, RecursionError):
            return _reply(error_response(None, PARSE_ERROR, "Parse error: the body is not JSON"), status=400, sse=sse)
        if (
            isinstance(payload, dict)
            and payload.get("method") == "tools/call"
            and isinstance(payload.get("params"), dict)
        ):
            name = payload["params"].get("name")
            request.operation = name if isinstance(name, str) else None
        version = request.headers.get(VERSION_HEADER)
        if session is not None:
            if version is not None and version not in HANDSHAKE_VERSIONS:
                message = f"Bad Request: unsupported {VERSION_HEADER} {version!r} (supported: {', '.join(HANDSHAKE_VERSIONS)})"
                return _reply(error_response(_id(payload), INVALID_REQUEST, message), status=400, sse=sse)
            if _takes_sse(request) and server.reports(payload, session):
                return await _reported(server, payload, session, _handshake_status, sse)
            return _reply(await server.handle(payload, session), sse=sse)
        if (
            isinstance(payload, dict)
            and payload.get("method") == "initialize"
            and version in (None, *HANDSHAKE_VERSIONS)  # 2026-07-28 has no initialize: 404 below
            and _envelope_version(payload) is None
        ):
            session = server.new_session()
            reply = await server.handle(payload, session)
            headers = None
            if isinstance(reply, dict) and "result" in reply:
                kept = server.keep(session) if server.shared is None else await server.keep_shared(session)
                headers = {SESSION_HEADER: kept}
            return _reply(reply, headers=headers, sse=sse)
        if isinstance(payload, dict) and (
            version not in (None, *HANDSHAKE_VERSIONS) or _envelope_version(payload) is not None
        ):
            mismatch = _routing_mismatch(payload, request.headers)
            if mismatch is not None:
                return _reply(error_response(_id(payload), HEADER_MISMATCH, mismatch), status=400, sse=sse)
            if _takes_sse(request) and server.reports(payload, None):
                return await _reported(server, payload, None, _modern_status, sse)
            reply = await server.handle(payload, None)
            return _reply(reply, status=_modern_status(reply), sse=sse)
        message = f"Bad Request: missing {SESSION_HEADER}; send initialize first"
        return _reply(error_response(_id(payload), INVALID_REQUEST, message), status=400, sse=sse)

    async def get(request: Request) -> Response:
        session_id = request.headers.get(SESSION_HEADER)
        if session_id is None:  # 2026-07-28 is sessionless: nothing to stream
            return Response(
                status=405,
                text=f"a stream of the server's own belongs to a session: send {SESSION_HEADER}",
                content_type="text/plain",
                headers={"Allow": "POST, DELETE"},
            )
        if server.shared is None:
            session = server.session(session_id)
        else:
            session = await server.shared_session(session_id)  # opened on another replica, maybe
        if session is None:
            return _reply(error_response(None, INVALID_REQUEST, "Session not found: initialize again"), status=404)
        if not _takes_sse(request):
            return _reply(error_response(None, INVALID_REQUEST, "Not Acceptable: accept text/event-stream"), status=406)
        stream = EventStream()
        session.open_outlet(stream)
        return StreamingResponse(
            _session_events(session, stream), content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    async def delete(request: Request) -> Response:
        session_id = request.headers.get(SESSION_HEADER)
        if session_id is None:
            return _reply(error_response(None, INVALID_REQUEST, f"Bad Request: missing {SESSION_HEADER}"), status=400)
        ended = server.end_session(session_id) if server.shared is None else await server.end_shared(session_id)
        if not ended:
            return _reply(error_response(None, INVALID_REQUEST, "Session not found"), status=404)
        return Response(status=204)

    return {"POST": guarded(post), "GET": guarded(get), "DELETE": guarded(delete)}


def _reply(message: Any, status: int = 200, headers: Mapping[str, str] | None = None, sse: bool = False) -> Response:
    """Notifications and responses get 202; a JSON-RPC message as JSON or as one SSE event."""
    if message is None:
        return Response(status=202, headers=headers)
    if (
        isinstance(message, dict)
        and status == 200
        and message.get("error", {}).get("code") in (PARSE_ERROR, INVALID_REQUEST)
    ):
        status = 400
    if sse:
        return Response(
            body=event(message),
            status=status,
            headers=headers,
            content_type="text/event-stream",
        )
    return Response(body=encode(message), status=status, headers=headers, content_type="application/json")


async def _session_events(session: Session, stream: EventStream):  # type: ignore[no-untyped-def]
    try:
        async for chunk in stream.events():
            yield chunk
    finally:
        session.close_outlet(stream)


async def _reported(server: McpServer, payload: Any, session: Session | None, status_of: Any, sse: bool) -> Response:
    """A call that sends notifications: an SSE stream of them, then the response. A call that
    answers before its first notification (an unknown tool, bad arguments) gets a plain answer
    with its usual status. The queue holds at most a notification per step, plus start and end."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    notified = asyncio.Event()

    def notify(message: dict[str, Any]) -> None:
        queue.put_nowait(message)
        notified.set()

    call = asyncio.ensure_future(server.handle(payload, session, notify))
    waiter = asyncio.ensure_future(notified.wait())
    try:
        await asyncio.wait((call, waiter), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        call.cancel()
        raise
    finally:
        waiter.cancel()
    if queue.empty():  # nothing notified, so the call is done
        reply = call.result()
        return _reply(reply, status=status_of(reply), sse=sse)
    call.add_done_callback(lambda _: queue.put_nowait(None))

    async def events():  # type: ignore[no-untyped-def]
        try:
            while (message := await queue.get()) is not None:
                yield event(message)
            reply = call.result()
            if reply is not None:
                yield event(reply)
        finally:
            if not call.done():  # the client left: the call is not worth finishing
                call.cancel()

    return StreamingResponse(events(), content_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _handshake_status(reply: Any) -> int:
    return 200


def _modern_status(reply: Any) -> int:
    """2026-07-28 answers a JSON-RPC error with its HTTP status."""
    return _MODERN_STATUS.get(reply["error"]["code"], 200) if isinstance(reply, dict) and "error" in reply else 200


def _takes_sse(request: Request) -> bool:
    accept = request.headers.get("Accept")
    return accept is not None and "text/event-stream" in accept.lower()


def _wants_sse(accept: str | None) -> bool | None:
    """False: answer JSON; True: the client takes only SSE; None: it takes neither."""
    if accept is None:
        return False
    accept = accept.lower()
    if "application/json" in accept or "*/*" in accept or "application/*" in accept:
        return False
    return True if "text/event-stream" in accept or "text/*" in accept else None


def _id(payload: Any) -> Any:
    request_id = payload.get("id") if isinstance(payload, dict) else None
    return request_id if isinstance(request_id, (str, int)) and not isinstance(request_id, bool) else None


def _envelope_version(payload: Mapping[str, Any]) -> Any:
    params = payload.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get(VERSION_KEY) if isinstance(meta, dict) else None


def _routing_mismatch(payload: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """2026-07-28: the routing headers must repeat what the body says (a proxy routes on them)."""
    version = _envelope_version(payload)
    if version is None:
        return None  # no envelope: the core answers that the request needs one
    if _trimmed(headers.get(VERSION_HEADER)) != version:
        return f"{VERSION_HEADER} header does not match params._meta"
    method = payload.get("method")
    if _trimmed(headers.get("Mcp-Method")) != method:
        return "Mcp-Method header does not match the body's method"
    key = _NAME_PARAMS.get(method) if isinstance(method, str) else None
    params = payload.get("params")
    value = params.get(key) if key is not None and isinstance(params, dict) else None
    if value is not None and _decode_header(_trimmed(headers.get("Mcp-Name"))) != value:
        return f"Mcp-Name header does not match the body's {key}"
    return None


def _trimmed(value: str | None) -> str | None:
    """A header value without the optional whitespace around it (RFC 9110 §5.5)."""
    return value.strip(" \t") if value is not None else None


def _decode_header(value: str | None) -> str | None:
    """Header values that are not plain ASCII travel as `=?base64?…?=`."""
    match = _B64_HEADER.fullmatch(value) if value is not None else None
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
