"""The MCP protocol core (DESIGN §4.7), shared by the Streamable HTTP and stdio transports.

`McpServer.handle(payload, session)` takes one decoded JSON-RPC message (or a batch) and returns
the response to send, or None when there is none. Everything a request needs — tool listings,
input schemas, resource and prompt tables — is built once, in the constructor.

Two protocol eras are served side by side:
- the handshake era (2024-11-05 … 2025-11-25): `initialize` negotiates a version held by a
  `Session` (one per `Mcp-Session-Id`, or one per stdio connection);
- the stateless era (2026-07-28): no handshake, every request carries its protocol version and
  client capabilities in `params._meta`; `server/discover` replaces `initialize`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .. import __version__, json_text, state
from ..engine.capability import Capability, Exposure, Target
from ..engine.inputs import compile_source
from ..engine.progress import observing_steps
from ..engine.results import (
    DryRun,
    InvalidInput,
    RateLimited,
    Result,
    Success,
    UpstreamError,
    is_media,
    result_as_json,
)
from ..json_text import dumps_text
from .mcp_completion import Completions
from .mcp_content import (
    DynamicResource,
    Prompt,
    StaticResource,
    guess_mime_type,
    local_path,
    read_file,
    resource_arguments,
    resource_contents,
    safe_child,
    static_files,
)
from .mcp_jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    JsonRpcError,
    error_response,
)
from .mcp_reports import LOG_LEVELS, CallReport, Notify, progress_token, request_log_level
from .mcp_subscriptions import MAX_SUBSCRIPTIONS, FileWatch, Outlet

logger = logging.getLogger("naftiko.mcp")

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
LATEST_HANDSHAKE = HANDSHAKE_VERSIONS[-1]
BATCH_VERSIONS = frozenset({"2025-03-26"})  # JSON-RPC batches existed in this revision only

VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

HEADER_MISMATCH, UNSUPPORTED_VERSION = -32020, -32022

_CACHEABLE = frozenset(
    {"tools/list", "resources/list", "resources/templates/list", "prompts/list", "resources/read", "server/discover"}
)
_REMOVED_IN_MODERN = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)
_PROMPT_ARGUMENT = re.compile(r"\{\{\s*([A-Za-z0-9_-]+)\s*\}\}")
_URI_VARIABLE = re.compile(r"\{([A-Za-z0-9_-]+)\}")


# The transport's channel for notifications about the request being answered (set by
# `McpServer.handle` only for a request that asked for some: see `McpServer.reports`).
_NOTIFY: ContextVar[Notify | None] = ContextVar("naftiko_mcp_notify", default=None)


@dataclass(eq=False)
class Session:
    """A handshake-era conversation.

    The first fields are portable (plain data a shared session store may hold); the last ones
    belong to this process: calls running here, the outlet open here, the files watched here.
    """

    version: str = LATEST_HANDSHAKE
    id: str | None = None
    client_info: dict[str, Any] | None = None
    client_capabilities: dict[str, Any] | None = None
    log_level: str | None = None  # set by logging/setLevel: log notifications during calls
    subscriptions: set[str] = field(default_factory=set)  # resource URIs
    # -- per process --
    inflight: dict[Any, asyncio.Task[Any]] = field(default_factory=dict, repr=False)
    cancelled: set[Any] = field(default_factory=set, repr=False)
    outlet: Outlet | None = field(default=None, repr=False)
    watch: FileWatch | None = field(default=None, repr=False)

    def cancel(self, request_id: Any) -> None:
        task = self.inflight.pop(request_id, None)
        if task is not None:
            self.cancelled.add(request_id)
            task.cancel()

    def send(self, message: dict[str, Any]) -> None:
        """A notification of the session's own (not about a request): dropped without an outlet."""
        if self.outlet is not None:
            self.outlet.send(message)

    def open_outlet(self, outlet: Outlet) -> None:
        """The newest stream gets the session's notifications; an older one ends."""
        if self.outlet is not None:
            self.outlet.close()
        self.outlet = outlet

    def close_outlet(self, outlet: Outlet) -> None:
        if self.outlet is outlet:
            self.outlet = None

    def watch_file(self, uri: str, path: Path) -> None:
        if self.watch is None:
            self.watch = FileWatch(self.send)
        self.watch.add(uri, path)


class _Cancelled(Exception):
    """The client cancelled the request: it gets no response."""


@dataclass(frozen=True, slots=True)
class _Tool:
    capability: Capability
    target: Target
    listing: dict[str, Any]
    typed_output: bool  # an object outputSchema is published: results always carry an object
    steps: int  # steps a call reports progress for (1 for a single call or mock)


class McpServer:
    """The tools, resources and prompts of one or more MCP exposures, and their sessions."""

    def __init__(
        self,
        entries: Sequence[tuple[Capability, Exposure]],
        server_name: str | None = None,
        instructions: str | None = None,
        page_size: int = 100,
        max_sessions: int = 10_000,
    ):
        self.page_size = page_size
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self.tools: dict[str, _Tool] = {}
        self.static_resources: list[StaticResource] = []
        self.static_listing: list[dict[str, Any]] = []
        self.dynamic_resources: list[DynamicResource] = []
        self.prompts: dict[str, Prompt] = {}
        origins: dict[tuple[str, str], str] = {}
        for capability, exposure in entries:
            self._add_tools(capability, exposure, origins)
            self._add_resources(capability, exposure, origins)
            self._add_prompts(capability, exposure, origins)
        self.tool_list = [t.listing for t in self.tools.values()]
        self.resource_list = self.static_listing + [d.listing for d in self.dynamic_resources if d.pattern is None]
        self.template_list = [d.listing for d in self.dynamic_resources if d.pattern is not None]
        self.prompt_list = [p.listing for p in self.prompts.values()]
        namespaces = [e.namespace for _, e in entries]
        self.server_info = {
            "name": server_name or (namespaces[0] if len(namespaces) == 1 else "naftiko"),
            "version": __version__,
        }
        descriptions = [str(e.spec["description"]) for _, e in entries if e.spec.get("description")]
        self.instructions = (
            instructions if instructions is not None else ("\n\n".join(dict.fromkeys(descriptions)) or None)
        )
        self.completions = Completions(
            {name: [a["name"] for a in p.listing.get("arguments", ())] for name, p in self.prompts.items()},
            {d.uri: d.variables for d in self.dynamic_resources if d.pattern is not None},
        )
        self.capabilities: dict[str, Any] = {"tools": {}}
        if self.resource_list or self.template_list:
            self.capabilities["resources"] = {}
        if self.prompt_list:
            self.capabilities["prompts"] = {}
        if self.prompt_list or self.template_list:  # what completion/complete can name
            self.capabilities["completions"] = {}
        self.handshake_capabilities = {**self.capabilities, "logging": {}}
        if self.static_resources:  # file resources: subscriptions, on the session's own stream
            self.handshake_capabilities["resources"] = {"subscribe": True}
        self.cache_scope = "private" if any(e.auth is not None for _, e in entries) else "public"
        self.shared = state.current().sessions(self.server_info["name"])  # None: sessions of this process only
        self._requests = {
            "initialize": self._initialize,
            "ping": self._ping,
            "logging/setLevel": self._set_level,
            "server/discover": self._discover,
            "tools/list": self._list_tools,
            "tools/call": self._call_tool,
            "resources/list": self._list_resources,
            "resources/templates/list": self._list_templates,
            "resources/read": self._read_resource,
            "resources/subscribe": self._subscribe,
            "resources/unsubscribe": self._unsubscribe,
            "prompts/list": self._list_prompts,
            "prompts/get": self._get_prompt,
            "completion/complete": self._complete,
        }

    # -- building (once) ----------------------------------------------------------------------

    @staticmethod
    def _claim(origins: dict[tuple[str, str], str], kind: str, name: str, capability: Capability) -> None:
        previous = origins.get((kind, name))
        if previous is not None:
            raise ValueError(
                f"MCP {kind} {name!r} is declared twice on one server: in {previous} and in {capability.file}"
            )
        origins[(kind, name)] = capability.file

    def _add_tools(self, capability: Capability, exposure: Exposure, origins: dict[tuple[str, str], str]) -> None:
        served = {t.name for t in exposure.targets}
        for spec in exposure.spec.get("tools") or []:
            if isinstance(spec, Mapping) and spec.get("name") not in served:
                logger.warning(
                    "%s: MCP tool %r is not served (no call, steps, ref or value-bearing outputs)",
                    capability.file,
                    spec.get("name"),
                )
        for target in exposure.targets:
            self._claim(origins, "tool", target.name, capability)
            listing: dict[str, Any] = {"name": target.name}
            if isinstance(target.spec.get("label"), str):
                listing["title"] = target.spec["label"]
            if target.description:
                listing["description"] = target.description
            listing["inputSchema"] = input_schema(target)
            output = None if capability.dry_run else target.outputs.json_schema()
            if output is not None and output.get("type") == "object":  # MCP output schemas are objects
                listing["outputSchema"] = output
            annotations = tool_annotations(target.hints if target.hints is not None else target.spec.get("hints"))
            if annotations:
                listing["annotations"] = annotations
            steps = len(getattr(target.plan, "steps", ())) or 1
            self.tools[target.name] = _Tool(capability, target, listing, "outputSchema" in listing, steps)

    def _add_resources(self, capability: Capability, exposure: Exposure, origins: dict[tuple[str, str], str]) -> None:
        for spec in exposure.spec.get("resources") or []:
            uri, name = str(spec.get("uri", "")), str(spec.get("name", ""))
            self._claim(origins, "resource", uri, capability)
            listing = {"name": name, "title": str(spec.get("label") or name)}
            if spec.get("description"):
                listing["description"] = str(spec["description"])
            location, call = spec.get("location"), spec.get("call")
            if isinstance(location, str):
                static = StaticResource(uri, local_path(capability, location), spec.get("mimeType"))
                self.static_resources.append(static)
                self.static_listing += [
                    {"uri": u, **listing, "mimeType": static.mime_type or guess_mime_type(p)}
                    for u, p in static_files(uri, static.root)
                ]
                if not static.root.exists():
                    logger.warning("%s: MCP resource %r: %s does not exist", capability.file, name, static.root)
                continue
            target = capability.consumed.get(call) if isinstance(call, str) else None
            if target is None:
                logger.warning(
                    "%s: MCP resource %r is not served (only `location` and `call` resources are supported)",
                    capability.file,
                    name,
                )
                continue
            mime = str(spec.get("mimeType") or "application/json")
            variables = tuple(_URI_VARIABLE.findall(uri))
            pattern = None
            if variables:  # each {name} matches one path segment
                pattern = re.compile(
                    "".join("([^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(_URI_VARIABLE.split(uri)))
                )
                listing = {"uriTemplate": uri, **listing, "mimeType": mime}
            else:
                listing = {"uri": uri, **listing, "mimeType": mime}
            wiring = {str(k): compile_source(v, (exposure.namespace,)) for k, v in (spec.get("with") or {}).items()}
            accepted = frozenset(f.name for f in target.inputs)
            self.dynamic_resources.append(
                DynamicResource(uri, pattern, variables, capability, target, wiring, accepted, mime, listing)
            )

    def _add_prompts(self, capability: Capability, exposure: Exposure, origins: dict[tuple[str, str], str]) -> None:
        for spec in exposure.spec.get("prompts") or []:
            name = str(spec.get("name", ""))
            self._claim(origins, "prompt", name, capability)
            listing: dict[str, Any] = {"name": name}
            if spec.get("label"):
                listing["title"] = str(spec["label"])
            if spec.get("description"):
                listing["description"] = str(spec["description"])
            arguments = []
            for argument in spec.get("arguments") or []:
                entry: dict[str, Any] = {"name": str(argument.get("name"))}
                if argument.get("label"):
                    entry["title"] = str(argument["label"])
                if argument.get("description"):
                    entry["description"] = str(argument["description"])
                entry["required"] = argument.get("required") is not False  # schema default: true
                arguments.append(entry)
            if arguments:
                listing["arguments"] = arguments
            if isinstance(spec.get("location"), str):
                path = local_path(capability, spec["location"])
                try:
                    messages: tuple[tuple[str, str], ...] = (("user", path.read_text(encoding="utf-8")),)
                except (OSError, UnicodeDecodeError) as exc:
                    raise ValueError(f"{capability.file}: MCP prompt {name!r}: cannot read {path}: {exc}") from None
            else:
                messages = tuple(
                    (str(m.get("role", "user")), str(m.get("content", ""))) for m in spec.get("template") or []
                )
            self.prompts[name] = Prompt(listing, messages)

    # -- sessions -----------------------------------------------------------------------------

    def new_session(self) -> Session:
        """A session not yet kept: the HTTP transport keeps it once `initialize` succeeded."""
        return Session()

    def keep(self, session: Session, session_id: str | None = None) -> str:
        session.id = session_id or secrets.token_urlsafe(24)
        self.sessions[session.id] = session
        while len(self.sessions) > self.max_sessions:  # drop the least recently used
            _, oldest = self.sessions.popitem(last=False)
            self._abandon(oldest)
        return session.id

    def session(self, session_id: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is not None:
            self.sessions.move_to_end(session_id)
        return session

    def end_session(self, session_id: str) -> bool:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self._abandon(session)
        return session is not None

    # Sessions every replica sharing a Redis knows (`shared`, state/sessions.py); the transport
    # calls these instead of keep/session/end_session only when `shared` is set. A session opened
    # elsewhere gets its per-process parts (calls in flight) here on first use.

    async def keep_shared(self, session: Session) -> str:
        assert self.shared is not None
        session_id = self.keep(session)
        await self.shared.save(session_id, _portable(session))
        return session_id

    async def shared_session(self, session_id: str) -> Session | None:
        assert self.shared is not None
        local = self.session(session_id)
        record = await self.shared.find(session_id, _portable(local) if local is not None else None)
        if record is None:  # unknown, or ended on some replica
            if local is not None:
                self.end_session(session_id)
            return None
        if local is None:
            local = Session()
            self.keep(local, session_id)
        _restore(local, record)  # what another replica may have changed (logging/setLevel)
        return local

    async def end_shared(self, session_id: str) -> bool:
        assert self.shared is not None
        return await self.shared.end(session_id, self.end_session(session_id))

    @staticmethod
    def _abandon(session: Session) -> None:
        for request_id in list(session.inflight):
            session.cancel(request_id)
        if session.watch is not None:
            session.watch.close()
        if session.outlet is not None:
            session.outlet.close()
            session.outlet = None

    # -- dispatch -----------------------------------------------------------------------------

    def handle(self, payload: Any, session: Session | None, notify: Notify | None = None) -> Awaitable[Any | None]:
        """The response to one message or batch; None when nothing is owed (notifications).

        `session` None means a stateless request: it must carry the 2026-07-28 envelope.
        `notify` carries the notifications the request asked for (see `reports`) before its
        response; the transport passes it only then, so other requests pay nothing for it.
        """
        if isinstance(payload, list):
            return self._batch(payload, session)
        if notify is not None:
            return self._reporting(payload, session, notify)
        return self._message(payload, session)

    def reports(self, payload: Any, session: Session | None) -> bool:
        """Whether answering `payload` sends notifications first: a tools/call that carries a
        progressToken, or whose client asked for log messages."""
        if not isinstance(payload, dict) or payload.get("method") != "tools/call":
            return False
        params = payload.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        return progress_token(meta) is not None or self._log_level(meta, session) is not None

    @staticmethod
    def _log_level(meta: Any, session: Session | None) -> str | None:
        """2026-07-28 requests say their level in `_meta` (on stdio too); others use the session's."""
        if isinstance(meta, dict) and VERSION_KEY in meta:
            return request_log_level(meta)
        return session.log_level if session is not None else None

    async def _reporting(self, payload: Any, session: Session | None, notify: Notify) -> dict[str, Any] | None:
        token = _NOTIFY.set(notify)
        try:
            return await self._message(payload, session)
        finally:
            _NOTIFY.reset(token)

    async def _batch(self, payload: list[Any], session: Session | None) -> Any | None:
        if not payload or session is None or session.version not in BATCH_VERSIONS:
            return error_response(
                None, INVALID_REQUEST, "Invalid Request: batches are only accepted at protocol version 2025-03-26"
            )
        replies = await asyncio.gather(*(self._message(item, session) for item in payload))
        return [r for r in replies if r is not None] or None

    async def _message(self, message: Any, session: Session | None) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return error_response(None, INVALID_REQUEST, "Invalid Request: a JSON-RPC message is an object")
        request_id = message.get("id")
        if "id" in message and (
            request_id is None or isinstance(request_id, bool) or not isinstance(request_id, (str, int))
        ):
            return error_response(None, INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
        method = message.get("method")
        if message.get("jsonrpc") != "2.0":
            return error_response(request_id, INVALID_REQUEST, "Invalid Request: jsonrpc must be '2.0'")
        if method is None and "id" in message and ("result" in message or "error" in message):
            return None  # a response to a server request: we send none, so there is nothing to match
        if not isinstance(method, str):
            return error_response(request_id, INVALID_REQUEST, "Invalid Request: method must be a string")
        params = message.get("params")
        if "id" not in message:
            if method == "notifications/cancelled" and session is not None and isinstance(params, dict):
                session.cancel(params.get("requestId"))
            return None
        try:
            if params is None:
                params = {}
            elif not isinstance(params, dict):
                raise JsonRpcError(INVALID_PARAMS, "Invalid params: params must be an object")
            modern = self._modern_version(method, params, session)
            handler = self._requests.get(method)
            if (
                handler is None
                or (modern is not None and method in _REMOVED_IN_MODERN)
                or (modern is None and method == "server/discover")
            ):
                raise JsonRpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
            result = await handler(params, session, request_id)
            if modern is not None:
                result = self._stamp(method, result)
            return {"jsonrpc": "2.0", "id": request_id, "result": result}
        except JsonRpcError as exc:
            return error_response(request_id, exc.code, exc.message, exc.data)
        except _Cancelled:
            return None
        except Exception as exc:  # a bug: never a traceback on the wire, never a hang
            logger.error("MCP %s failed: %s", method, type(exc).__name__, exc_info=logger.isEnabledFor(logging.DEBUG))
            return error_response(request_id, INTERNAL_ERROR, "Internal error")

    def _modern_version(self, method: str, params: dict[str, Any], session: Session | None) -> str | None:
        """The 2026-07-28 version a request carries in `_meta`, or None for a handshake-era one."""
        meta = params.get("_meta")
        if not isinstance(meta, dict) or VERSION_KEY not in meta:
            if session is None:  # the transport found no session: only the 2026-07-28 envelope can serve
                raise JsonRpcError(
                    INVALID_PARAMS,
                    f"Invalid params: no session; carry {VERSION_KEY} and {CAPABILITIES_KEY} in params._meta, or send initialize first",
                )
            return None
        version = meta[VERSION_KEY]
        if CAPABILITIES_KEY not in meta or not isinstance(version, str):
            raise JsonRpcError(
                INVALID_PARAMS,
                f"Invalid params: params._meta needs a string {VERSION_KEY} and an object {CAPABILITIES_KEY}",
            )
        if version not in MODERN_VERSIONS:
            raise JsonRpcError(
                UNSUPPORTED_VERSION,
                "Unsupported protocol version",
                {"supported": list(MODERN_VERSIONS), "requested": version},
            )
        return version

    def _stamp(self, method: str, result: dict[str, Any]) -> dict[str, Any]:
        """2026-07-28 results: `resultType`, the server's identity, and cache hints on listings."""
        stamped = {**result, "resultType": "complete", "_meta": {SERVER_INFO_KEY: self.server_info}}
        if method in _CACHEABLE:
            stamped["ttlMs"] = 0  # capabilities may be reloaded at any time
            stamped["cacheScope"] = self.cache_scope
        return stamped

    # -- lifecycle ----------------------------------------------------------------------------

    async def _initialize(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        version = requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE
        if session is not None:
            session.version = version
            info, capabilities = params.get("clientInfo"), params.get("capabilities")
            session.client_info = info if isinstance(info, dict) else None
            session.client_capabilities = capabilities if isinstance(capabilities, dict) else None
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": self.handshake_capabilities,
            "serverInfo": self.server_info,
        }
        if self.instructions:
            result["instructions"] = self.instructions
        return result

    async def _discover(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"supportedVersions": list(MODERN_VERSIONS), "capabilities": self.capabilities}
        if self.instructions:
            result["instructions"] = self.instructions
        return result

    async def _ping(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        return {}

    async def _set_level(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        level = params.get("level")
        if level not in LOG_LEVELS:
            raise JsonRpcError(INVALID_PARAMS, f"Invalid params: level must be one of {', '.join(LOG_LEVELS)}")
        if session is not None:  # tool calls of this session now log to the client at this level
            session.log_level = level
            if self.shared is not None and session.id is not None:  # on every replica
                await self.shared.save(session.id, _portable(session))
        return {}

    async def _complete(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        return self.completions.complete(params)

    # -- tools --------------------------------------------------------------------------------

    async def _list_tools(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        return self._page(self.tool_list, params, "tools")

    async def _call_tool(self, params: dict[str, Any], session: Session | None, request_id: Any) -> dict[str, Any]:
        name = params.get("name")
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            raise JsonRpcError(INVALID_PARAMS, f"Unknown tool: {name}")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict):
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: arguments must be an object")
        notify = _NOTIFY.get()  # set only when the request asked for notifications (`reports`)
        if notify is None:
            result = await self._invoke(tool.capability, tool.target, arguments, session, request_id)
        else:
            meta = params.get("_meta")
            report = CallReport(
                notify, tool.target.name, progress_token(meta), self._log_level(meta, session), tool.steps
            )
            report.started()
            with observing_steps(report.step):
                result = await self._invoke(tool.capability, tool.target, arguments, session, request_id)
            report.finished(not isinstance(result, (Success, DryRun)))
        if isinstance(result, InvalidInput):
            raise JsonRpcError(
                INVALID_PARAMS, f"Invalid arguments for tool {name}: {result.reason}", {"argument": result.name}
            )
        return tool_result(result, tool.typed_output, tool.capability)

    @staticmethod
    async def _invoke(
        capability: Capability, target: Target, arguments: Mapping[str, Any], session: Session | None, request_id: Any
    ) -> Result:
        """Invoke, cancellable by `notifications/cancelled` for this request id."""
        if session is None:
            return await capability.invoke(target, arguments)
        task = asyncio.current_task()
        assert task is not None
        session.inflight[request_id] = task
        try:
            return await capability.invoke(target, arguments)
        except asyncio.CancelledError:
            if request_id not in session.cancelled:
                raise
            task.uncancel()
            raise _Cancelled from None
        finally:
            session.cancelled.discard(request_id)
            if session.inflight.get(request_id) is task:
                del session.inflight[request_id]

    # -- resources ----------------------------------------------------------------------------

    async def _list_resources(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        return self._page(self.resource_list, params, "resources")

    async def _list_templates(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        return self._page(self.template_list, params, "resourceTemplates")

    async def _read_resource(self, params: dict[str, Any], session: Session | None, request_id: Any) -> dict[str, Any]:
        uri = _uri(params)
        static = self._static_file(uri)
        if static is not None:
            path, mime_type = static
            return {"contents": [await asyncio.to_thread(read_file, uri, path, mime_type)]}
        resource, captured = self._dynamic(uri)
        arguments = resource_arguments(resource, captured)
        result = await self._invoke(resource.capability, resource.target, arguments, session, request_id)
        return {"contents": [resource_contents(uri, resource.mime_type, result)]}

    def _static_file(self, uri: str) -> tuple[Path, str | None] | None:
        """The file a static resource URI names (and its declared type); None when no static resource does."""
        for static in self.static_resources:
            if uri == static.uri and static.root.is_file():
                return static.root, static.mime_type
            if uri.startswith(static.uri + "/"):
                return safe_child(static.root, uri[len(static.uri) + 1 :], uri), static.mime_type
        return None

    def _dynamic(self, uri: str) -> tuple[DynamicResource, dict[str, str]]:
        """The dynamic resource serving `uri` and the URI variables it captured, or -32602."""
        for resource in self.dynamic_resources:
            match = resource.pattern.fullmatch(uri) if resource.pattern is not None else None
            if match is None and uri != resource.uri:
                continue
            return resource, dict(zip(resource.variables, map(unquote, match.groups()), strict=True)) if match else {}
        raise JsonRpcError(INVALID_PARAMS, f"Resource not found: {uri}", {"uri": uri})

    async def _subscribe(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        """Updates of a file resource come as notifications/resources/updated on the session's stream;
        a resource served by a call can be subscribed to but never reports a change."""
        uri = _uri(params)
        static = self._static_file(uri)
        if static is None:
            self._dynamic(uri)  # -32602 for a URI no resource serves
        if session is None or uri in session.subscriptions:
            return {}
        if len(session.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise JsonRpcError(INVALID_PARAMS, f"Invalid params: at most {MAX_SUBSCRIPTIONS} subscriptions per session")
        session.subscriptions.add(uri)
        if static is not None:
            session.watch_file(uri, static[0])
        return {}

    async def _unsubscribe(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        uri = _uri(params)
        if session is not None:
            session.subscriptions.discard(uri)
            if session.watch is not None:
                session.watch.remove(uri)
        return {}

    # -- prompts ------------------------------------------------------------------------------

    async def _list_prompts(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        return self._page(self.prompt_list, params, "prompts")

    async def _get_prompt(self, params: dict[str, Any], session: Session | None, _: Any) -> dict[str, Any]:
        name = params.get("name")
        prompt = self.prompts.get(name) if isinstance(name, str) else None
        if prompt is None:
            raise JsonRpcError(INVALID_PARAMS, f"Unknown prompt: {name}")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise JsonRpcError(INVALID_PARAMS, "Invalid params: arguments must be an object")

        def substitute(match: re.Match[str]) -> str:
            value = arguments.get(match.group(1))
            return match.group(0) if value is None else str(value)  # a missing argument stays literal

        messages = [
            {"role": role, "content": {"type": "text", "text": _PROMPT_ARGUMENT.sub(substitute, text)}}
            for role, text in prompt.messages
        ]
        result: dict[str, Any] = {"messages": messages}
        if "description" in prompt.listing:
            result["description"] = prompt.listing["description"]
        return result

    # -- pagination ---------------------------------------------------------------------------

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict[str, Any]:
        start = 0
        cursor = params.get("cursor")
        if cursor is not None:
            try:
                start = int(base64.urlsafe_b64decode(str(cursor).encode()).decode().removeprefix("offset:"))
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise JsonRpcError(INVALID_PARAMS, "Invalid params: unknown cursor") from None
            if not 0 <= start <= len(items):
                raise JsonRpcError(INVALID_PARAMS, "Invalid params: unknown cursor")
        end = start + self.page_size
        result: dict[str, Any] = {key: items[start:end]}
        if end < len(items):
            result["nextCursor"] = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode()
        return result


def _uri(params: Mapping[str, Any]) -> str:
    uri = params.get("uri")
    if not isinstance(uri, str) or not uri:
        raise JsonRpcError(INVALID_PARAMS, "Invalid params: uri is required")
    return uri


# -- sessions: the portable fields, as state/sessions.py stores them ------------------------------


def _portable(session: Session) -> str:
    return dumps_text(
        {
            "version": session.version,
            "clientInfo": session.client_info,
            "clientCapabilities": session.client_capabilities,
            "logLevel": session.log_level,
        }
    )


def _restore(session: Session, record: str) -> None:
    fields = json_text.loads(record)
    session.version = fields["version"]
    session.client_info = fields.get("clientInfo")
    session.client_capabilities = fields.get("clientCapabilities")
    session.log_level = fields.get("logLevel")


# -- tools: schemas and results ---------------------------------------------------------------


def input_schema(target: Target) -> dict[str, Any]:
    """The tool's arguments as JSON Schema, from the engine's declared or inferred inputs."""
    schema: dict[str, Any] = {"type": "object", "properties": {f.name: f.json_schema() for f in target.inputs}}
    required = [f.name for f in target.inputs if f.required]
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False  # the engine refuses unknown arguments
    return schema


_HINTS = {
    "readOnly": "readOnlyHint",
    "destructive": "destructiveHint",
    "idempotent": "idempotentHint",
    "openWorld": "openWorldHint",
}


def tool_annotations(hints: Any) -> dict[str, bool]:
    """Only the hints the file sets explicitly: MCP's defaults are not ours to assert."""
    if not isinstance(hints, Mapping):
        return {}
    return {wire: hints[key] for key, wire in _HINTS.items() if isinstance(hints.get(key), bool)}


def tool_result(result: Result, typed_output: bool, capability: Capability) -> dict[str, Any]:
    """A `CallToolResult`: one text item holding compact JSON, plus `structuredContent` when the
    value is a JSON object. Failures are results with `isError` (the model can read them)."""
    if isinstance(result, Success):
        if result.raw is not None and is_media(result.content_type):
            return {"content": [media_content(result.raw, result.content_type)], "isError": False}
        body = {} if typed_output and result.body is None else result.body
    elif isinstance(result, DryRun):
        body = result.request
    else:
        if not isinstance(result, (UpstreamError, RateLimited)):  # the caller's to read, not ours
            logger.warning("tool call failed: %s", capability.masker.text(dumps_text(result_as_json(result))))
        return {"content": [{"type": "text", "text": dumps_text(result_as_json(result))}], "isError": True}
    reply: dict[str, Any] = {"content": [{"type": "text", "text": dumps_text(body)}]}
    if isinstance(body, dict):
        reply["structuredContent"] = body
    reply["isError"] = False
    return reply


def media_content(data: bytes, content_type: str | None) -> dict[str, Any]:
    """MCP image or audio content: the upstream's bytes, base64, with its media type."""
    mime_type = (content_type or "").partition(";")[0].strip().lower()
    kind = "image" if mime_type.startswith("image/") else "audio"
    return {"type": kind, "data": base64.b64encode(data).decode(), "mimeType": mime_type}
