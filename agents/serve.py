"""ASGI app serving one or many agents: Agent Card, A2A JSON-RPC (+SSE) and an MCP endpoint per agent.

One agent is served at the root (``/.well-known/agent-card.json``, ``POST /``, ``/mcp``); several agents
each get a prefix ``/agents/{name}`` with the same three routes under it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from agents.agent import Agent
from agents.jsonrpc_server import JsonRpcEndpoint
from agents.tasks import TaskRuntime
from protocol.a2a import AGENT_CARD_PATH

__all__ = ["AgentServer", "create_app", "CARD_MAX_AGE_S"]

CARD_MAX_AGE_S = 300


class AgentServer:
    """The agents of one process, their runtimes and their public URLs."""

    def __init__(self, agents: Agent | Sequence[Agent], base_url: str = "http://127.0.0.1:8000") -> None:
        self.agents = [agents] if isinstance(agents, Agent) else list(agents)
        if not self.agents:
            raise ValueError("serve at least one agent")
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique in one server: {names}")
        self.base_url = base_url.rstrip("/")
        self.runtimes = {a.name: TaskRuntime(a) for a in self.agents}
        self.mcp_apps = {a.name: _mcp_app(a) for a in self.agents}

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


def _mcp_app(agent: Agent) -> Any:
    """The agent's MCP streamable-HTTP app, or None where the MCP binding is not available."""
    try:
        from agents.mcp import mcp_http_app
    except ImportError:
        return None
    return mcp_http_app(agent)


def create_app(agents: Agent | Sequence[Agent], base_url: str = "http://127.0.0.1:8000") -> Starlette:
    """A Starlette app serving ``agents``; run it with uvicorn or ``scaleout agent serve``."""
    server = AgentServer(agents, base_url)
    app = Starlette(routes=server.routes(), lifespan=server.lifespan)
    app.state.agent_server = server
    return app
