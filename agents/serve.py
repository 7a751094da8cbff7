"""ASGI app serving one or many agents: Agent Card, A2A JSON-RPC (+SSE) and an MCP endpoint per agent.

One agent is served at the root (``/.well-known/agent-card.json``, ``POST /``, ``/mcp``); several agents
each get a prefix ``/agents/{name}`` with the same three routes under it. The whole app sits behind
``protocol.boundary.Boundary`` (host, origin, JSON content type, body size, JSON depth), whose
refusals are JSON-RPC errors since both A2A and MCP speak JSON-RPC.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from agents.agent import Agent
from agents.jsonrpc_server import MAX_BODY_BYTES, JsonRpcEndpoint, render_jsonrpc_error
from agents.tasks import TaskRuntime
from protocol.a2a import AGENT_CARD_PATH
from protocol.boundary import Boundary, BoundaryPolicy

__all__ = ["AgentApp", "AgentServer", "create_app", "default_policy", "CARD_MAX_AGE_S"]

CARD_MAX_AGE_S = 300


class AgentServer:
    """The agents of one process, their runtimes and their public URLs."""

    def __init__(
        self,
        agents: Agent | Sequence[Agent],
        base_url: str = "http://127.0.0.1:8000",
        *,
        mcp_options: dict[str, Any] | None = None,
    ) -> None:
        self.agents = [agents] if isinstance(agents, Agent) else list(agents)
        if not self.agents:
            raise ValueError("serve at least one agent")
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique in one server: {names}")
        self.base_url = base_url.rstrip("/")
        self.runtimes = {a.name: TaskRuntime(a) for a in self.agents}
        self.mcp_apps = {a.name: _mcp_app(a, mcp_options or {}) for a in self.agents}

    def prefix(self, agent: Agent) -> str:
        return "" if len(self.agents) == 1 else f"/agents/{agent.name}"

    def url(self, agent: Agent) -> str:
        """The A2A endpoint URL of ``agent`` (also where its card's interface points)."""
        return f"{self.base_url}{self.prefix(agent)}/"

    def card_url(self, agent: Agent) -> str:
        return f"{self.base_url}{self.prefix(agent)}{AGENT_CARD_PATH}"

    def agent_routes(self, agent: Agent) -> list[BaseRoute]:
        """The card, JSON-RPC and MCP routes of one agent, relative to its prefix."""
        endpoint = JsonRpcEndpoint(self.runtimes[agent.name])
        routes: list[BaseRoute] = [
            Route(AGENT_CARD_PATH, _card_endpoint(agent.card(self.url(agent)).wire()), methods=["GET"]),
            Route("/", endpoint.handle, methods=["POST"]),
        ]
        mcp = self.mcp_apps[agent.name]
        if mcp is not None:  # "/mcp" and "/mcp/" both answer directly: MCP clients do not follow redirects
            routes += [Route("/mcp", mcp), Mount("/mcp", app=mcp)]
        return routes

    def routes(self) -> list[BaseRoute]:
        if len(self.agents) == 1:
            return self.agent_routes(self.agents[0])
        # One mount for all agents, dispatched by name: a request costs one dict lookup, not a scan of every
        # agent's routes (a server may hold a thousand agents).
        routers = {a.name: Router(routes=self.agent_routes(a)) for a in self.agents}
        index = [{"name": a.name, "url": self.url(a), "card": self.card_url(a)} for a in self.agents]

        async def by_name(scope: Scope, receive: Receive, send: Send) -> None:
            router = routers.get(scope["path_params"]["name"])
            if router is None:
                response = JSONResponse({"error": f"no agent named {scope['path_params']['name']!r}"}, 404)
                await response(scope, receive, send)
                return
            await router(scope, receive, send)

        async def list_agents(_: Request) -> Response:
            return JSONResponse({"agents": index})

        return [Route("/agents", list_agents, methods=["GET"]), Mount("/agents/{name}", app=by_name)]

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for runtime in self.runtimes.values():
                await stack.enter_async_context(runtime.running())
            for mcp in self.mcp_apps.values():
                if mcp is not None:  # the streamable-HTTP session manager needs its task group running
                    await stack.enter_async_context(mcp.running())
            yield


def _card_endpoint(card: dict[str, Any]) -> Callable[[Request], Awaitable[Response]]:
    """Serve a fixed card with caching headers (ETag, Last-Modified, max-age) and 304 on a matching ETag."""
    body = json.dumps(card, separators=(",", ":")).encode()
    headers = {
        "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        "Last-Modified": formatdate(time.time(), usegmt=True),
        "Cache-Control": f"public, max-age={CARD_MAX_AGE_S}",
    }

    async def endpoint(request: Request) -> Response:
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    return endpoint


def _mcp_app(agent: Agent, options: dict[str, Any]) -> Any:
    """The agent's MCP streamable-HTTP app, or None where the MCP binding is not available."""
    try:
        from agents.mcp import mcp_http_app
    except ImportError:
        return None
    return mcp_http_app(agent, **options)


class AgentApp(Boundary):
    """The agents' ASGI app: the Starlette app behind the boundary; ``state.agent_server`` as on the inner app."""

    def __init__(self, app: Starlette, server: AgentServer, policy: BoundaryPolicy) -> None:
        super().__init__(app, policy, render=render_jsonrpc_error)
        self.starlette = app
        self.agent_server = server
        self.state = app.state


def default_policy(base_url: str, **limits: Any) -> BoundaryPolicy:
    """The boundary of an agent server at ``base_url``: its loopback names and its own host, 1 MB bodies."""
    parts = urlsplit(base_url)
    limits.setdefault("max_body_bytes", MAX_BODY_BYTES)
    return BoundaryPolicy.for_bind(parts.hostname or "127.0.0.1", parts.port, public_url=base_url, **limits)


def create_app(
    agents: Agent | Sequence[Agent],
    base_url: str = "http://127.0.0.1:8000",
    *,
    policy: BoundaryPolicy | None = None,
    mcp_sessions_per_client: int | None = None,
    mcp_idle_timeout_s: float | None = None,
) -> AgentApp:
    """An ASGI app serving ``agents`` behind the boundary; run it with uvicorn or ``scaleout agent serve``.

    ``policy`` defaults to ``default_policy(base_url)``; the MCP options override ``McpHttpApp``'s defaults.
    """
    mcp_options: dict[str, Any] = {}
    if mcp_sessions_per_client is not None:
        mcp_options["max_sessions_per_client"] = mcp_sessions_per_client
    if mcp_idle_timeout_s is not None:
        mcp_options["session_idle_timeout_s"] = mcp_idle_timeout_s
    server = AgentServer(agents, base_url, mcp_options=mcp_options)
    app = Starlette(routes=server.routes(), lifespan=server.lifespan)
    app.state.agent_server = server
    return AgentApp(app, server, policy or default_policy(base_url))
