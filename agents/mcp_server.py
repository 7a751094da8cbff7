"""Every skill of an agent as an MCP tool: one low-level MCP server, served in memory, over HTTP or stdio.

Tool name = skill id (``agent.skill`` when one server carries several agents), description = skill
description, input/output schema = the skill's pydantic models. Usage travels in ``_meta["scaleout/usage"]``.
Arguments the skill does not take answer a tool result with ``isError`` naming each field (SEP-1303: the model
can read it and correct itself), marked in ``_meta["scaleout/invalid_arguments"]``; an unknown tool is a
JSON-RPC error -32602, as the specification's tools page shows.
Over HTTP, sessions expire when idle and are capped per client (``McpHttpApp``); Host, Origin, content type and
body limits are the boundary's (``agents.serve.create_app`` puts the app behind ``protocol.boundary.Boundary``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from agents.agent import Agent, Asker, Skill, SkillContext
from agents.errors import AgentError, SkillInputError
from agents.mcp_sessions import SessionLimiter, jsonrpc_error_body, respond
from agents.task_ask import DEFAULT_INPUT_TIMEOUT_S, InputTimeout, InputUnavailable
from agents.usage import Usage
from protocol import telemetry
from protocol.validation import field_errors

__all__ = [
    "USAGE_META_KEY",
    "INVALID_ARGUMENTS_META_KEY",
    "DEFAULT_SESSION_IDLE_TIMEOUT_S",
    "DEFAULT_SESSIONS_PER_CLIENT",
    "DEFAULT_MAX_SESSIONS",
    "McpHttpApp",
    "mcp_server",
    "mcp_http_app",
    "run_stdio",
]

USAGE_META_KEY = "scaleout/usage"
INVALID_ARGUMENTS_META_KEY = "scaleout/invalid_arguments"  # on an isError result: the caller's arguments were wrong
DEFAULT_CALL_TIMEOUT_S = 300.0
DEFAULT_SESSION_IDLE_TIMEOUT_S = 300.0
DEFAULT_SESSIONS_PER_CLIENT = 32
DEFAULT_MAX_SESSIONS = 1_000
_MAX_FIELD_ERRORS = 10
_log = logging.getLogger(__name__)


_NOT_RUNNING = jsonrpc_error_body(
    types.INTERNAL_ERROR, "MCP endpoint is not running: serve it with lifespan on, or inside McpHttpApp.running()"
)


@dataclass(frozen=True)
class _Tool:
    agent: Agent
    skill: Skill

    def describe(self, name: str) -> types.Tool:
        return types.Tool(
            name=name,
            title=self.skill.name,
            description=self.skill.description,
            input_schema=self.skill.input_model.model_json_schema(),
            output_schema=self.skill.output_model.model_json_schema(mode="serialization"),
        )


def _tool_table(agents: Sequence[Agent]) -> dict[str, _Tool]:
    if len(agents) == 1:
        return {skill_id: _Tool(agents[0], skill) for skill_id, skill in agents[0].skills.items()}
    return {f"{a.name}.{skill_id}": _Tool(a, skill) for a in agents for skill_id, skill in a.skills.items()}


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": field, "message": message} for field, message in field_errors(exc, _MAX_FIELD_ERRORS)]


def _usage_meta(usage: Usage, elapsed_s: float) -> dict[str, Any]:
    dump = usage.model_dump(mode="json")
    dump["total_tokens"] = usage.total_tokens
    dump["elapsed_seconds"] = round(elapsed_s, 6)
    return {USAGE_META_KEY: dump}


def _error_result(reason: str, meta: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=reason)], is_error=True, _meta=meta)


def _invalid_arguments(
    tool: str, reason: str, fields: list[dict[str, str]], meta: dict[str, Any]
) -> types.CallToolResult:
    """A tool result with ``isError`` saying which arguments were wrong and how to call again."""
    text = f"{reason}. Fix the arguments to match the tool's inputSchema (tools/list) and call {tool!r} again."
    return _error_result(text, {**meta, INVALID_ARGUMENTS_META_KEY: {"tool": tool, "errors": fields}})


def mcp_server(
    agents: Agent | Sequence[Agent], *, call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S, name: str | None = None
) -> Server[Any]:
    """An MCP server whose tools are the skills of ``agents`` (tool name = skill id for a single agent).

    Invalid arguments (and input the skill itself refuses) answer a tool result with ``isError`` naming the fields;
    so does a skill that fails (invalid model output, deadline, bug), with the reason. An unknown tool is an MCP
    ``INVALID_PARAMS`` error listing the tools. Each call is bounded by ``call_timeout_s``.
    """
    agent_list = [agents] if isinstance(agents, Agent) else list(agents)
    if not agent_list:
        raise ValueError("mcp_server needs at least one agent")
    if call_timeout_s <= 0:
        raise ValueError(f"call_timeout_s must be positive, got {call_timeout_s}")
    tools = _tool_table(agent_list)
    listing = [tool.describe(tool_name) for tool_name, tool in tools.items()]
    first = agent_list[0]

    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing)

    async def call_tool(_ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            known = ", ".join(tools) or "none"
            raise MCPError(
                types.INVALID_PARAMS,
                f"unknown tool {params.name[:200]!r}; this server has: {known} (tools/list gives their input schemas)",
            )
        arguments = params.arguments or {}
        try:
            tool.skill.input_model.model_validate(arguments)
        except ValidationError as exc:
            fields = _field_errors(exc)
            detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
            reason = f"invalid arguments for tool {params.name!r}: {detail}"
            return _invalid_arguments(params.name, reason, fields, _usage_meta(Usage(), 0.0))
        ctx = SkillContext(
            tool.agent.brain, deadline=anyio.current_time() + call_timeout_s, asker=_elicitation_asker(_ctx)
        )
        started = time.perf_counter()
        name, skill_id = tool.agent.name, tool.skill.id
        # the SDK's server span already continues the caller's trace; without one, the request's _meta does
        parent = None if telemetry.current_ids() else telemetry.extract_meta(params.meta)
        with telemetry.span(telemetry.SPAN_SKILL, context=parent) as span:
            if span.is_recording():
                span.set_attributes({"scaleout.agent.name": name, "scaleout.skill": skill_id})
            try:
                result, usage = await tool.agent.call(skill_id, arguments, ctx=ctx)
            except SkillInputError as exc:
                elapsed = time.perf_counter() - started
                telemetry.record_skill(name, skill_id, "rejected", elapsed)
                return _invalid_arguments(params.name, str(exc), [], _usage_meta(ctx.usage, elapsed))
            except Exception as exc:  # a bug in a skill must answer this call, not take the server down
                _log.error("skill %r of agent %r failed (MCP tool %r)", skill_id, name, params.name, exc_info=True)
                telemetry.failed(span, exc)
                elapsed = time.perf_counter() - started
                telemetry.record_skill(name, skill_id, "failed", elapsed)
                reason = f"{type(exc).__name__}: {exc}"
                reason = reason if isinstance(exc, AgentError) else f"skill {skill_id!r} raised {reason}"
                return _error_result(reason, _usage_meta(ctx.usage, elapsed))
        elapsed = time.perf_counter() - started
        telemetry.record_skill(name, skill_id, "completed", elapsed)
        return _success(result, _usage_meta(usage, elapsed))

    def input_schema(tool_name: str) -> dict[str, Any] | None:
        tool = tools.get(tool_name)
        return None if tool is None else tool.skill.input_model.model_json_schema()

    return Server(
        name or (first.name if len(agent_list) == 1 else "scaleout-agents"),
        version=first.version,
        description=first.description if len(agent_list) == 1 else ", ".join(a.name for a in agent_list),
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _elicitation_asker(rctx: ServerRequestContext[Any]) -> Asker:
    """``ctx.ask`` over MCP: an elicitation (form mode) when the client can answer one; else a clear tool error
    (``InputUnavailable``). The call's time limit (``call_timeout_s``) includes the wait for the answer."""
    session = getattr(rctx, "session", None)
    capabilities = getattr(session, "client_capabilities", None)
    able = (
        session is not None
        and capabilities is not None
        and capabilities.elicitation is not None
        and getattr(session, "can_send_request", True)
    )

    async def ask(question: str, answer_type: type[BaseModel], timeout_s: float | None) -> BaseModel:
        if not able or session is None:
            raise InputUnavailable(
                f"the skill asked {question[:200]!r}, but this MCP client cannot answer questions (it declared no "
                "elicitation capability, or its connection has no channel for server requests); call the agent "
                "over A2A, where its task waits for input, or from a client that supports elicitation"
            )
        limit = timeout_s or DEFAULT_INPUT_TIMEOUT_S
        schema = answer_type.model_json_schema()
        with anyio.move_on_after(limit):
            result = await session.elicit_form(
                message=question, requested_schema=schema, related_request_id=rctx.request_id
            )
            if result.action != "accept" or result.content is None:
                raise InputUnavailable(f"the MCP client did not answer {question[:200]!r} ({result.action})")
            try:
                return answer_type.model_validate(result.content)
            except ValidationError as exc:
                raise InputUnavailable(
                    f"the MCP client's answer to {question[:200]!r} does not fit {answer_type.__name__}: "
                    f"{'; '.join(f['field'] + ': ' + f['message'] for f in _field_errors(exc))}"
                ) from None
        raise InputTimeout(f"the MCP client did not answer {question[:200]!r} within {limit:g} s")

    return ask


def _success(result: BaseModel, meta: dict[str, Any]) -> types.CallToolResult:
    data = result.model_dump(mode="json")
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(data, ensure_ascii=False))],
        structured_content=data,
        _meta=meta,
    )


class McpHttpApp:
    """ASGI app answering MCP streamable HTTP on whatever path it is mounted at.

    Its session manager runs inside ``running()`` (``AgentServer.lifespan`` enters it) or, when the app is
    served on its own, inside the ASGI lifespan. Each ``running()`` builds a fresh manager, so it restarts.
    Sessions end after ``session_idle_timeout_s`` without a request; one client (its IP address) holds at most
    ``max_sessions_per_client``: a new session past that closes the client's least recently used idle session,
    and is refused (503) only when all of them are busy. ``max_sessions`` caps all clients together.
    """

    def __init__(
        self,
        server: Server[Any],
        *,
        json_response: bool = False,
        stateless: bool = False,
        security: TransportSecuritySettings | None = None,
        session_idle_timeout_s: float | None = DEFAULT_SESSION_IDLE_TIMEOUT_S,
        max_sessions: int | None = DEFAULT_MAX_SESSIONS,
        max_sessions_per_client: int = DEFAULT_SESSIONS_PER_CLIENT,
    ) -> None:
        self.server = server
        self._options: dict[str, Any] = {
            "json_response": json_response,
            "stateless": stateless,
            "security_settings": security,
            "session_idle_timeout": session_idle_timeout_s,
            "max_sessions": max_sessions,
        }
        self._manager: StreamableHTTPSessionManager | None = None
        self._session_limits = (max_sessions_per_client, session_idle_timeout_s)
        self._limiter = SessionLimiter(*self._session_limits)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the streamable-HTTP session manager (its task group holds the sessions) while the block runs."""
        if self._manager is not None:
            raise RuntimeError("this MCP app is already running; enter running() once at a time")
        manager = StreamableHTTPSessionManager(app=self.server, **self._options)
        self._limiter = SessionLimiter(*self._session_limits)
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    def session_count(self, client: str | None = None) -> int:
        """Open stateful sessions (of one client address when ``client`` is given)."""
        return self._limiter.count(self._manager, client)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the MCP endpoint speaks HTTP only, not {scope['type']}")
        manager = self._manager
        if manager is None:
            await respond(send, 503, _NOT_RUNNING)
            return
        if self._options["stateless"]:
            await manager.handle_request(scope, receive, send)
            return
        await self._limiter.serve(manager, scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        started = False
        try:
            async with self.running():
                started = True
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        except Exception as exc:
            phase = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{phase}.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.shutdown.complete"})


def mcp_http_app(agents: Agent | Sequence[Agent], **options: Any) -> McpHttpApp:
    """The streamable-HTTP ASGI app for ``agents``; options go to ``McpHttpApp``."""
    call_timeout_s = options.pop("call_timeout_s", DEFAULT_CALL_TIMEOUT_S)
    return McpHttpApp(mcp_server(agents, call_timeout_s=call_timeout_s), **options)


async def run_stdio(agents: Agent | Sequence[Agent], *, call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S) -> None:
    """Serve the skills of ``agents`` as MCP tools over this process's stdin/stdout until stdin closes."""
    server = mcp_server(agents, call_timeout_s=call_timeout_s)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
