"""Reach a set of agents as negotiation parties: in-process clients, or one loopback HTTP server for all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

import httpx

from agents.agent import Agent
from agents.client import HttpAgentClient, LocalAgentClient
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from orchestrator.negotiation.calls import Party

__all__ = ["serve_parties"]


@asynccontextmanager
async def serve_parties(
    agents: Sequence[Agent],
    transport: Literal["local", "http"] = "local",
    *,
    max_connections: int = 64,
) -> AsyncIterator[dict[str, Party]]:
    """Parties by agent name. ``http`` serves every agent from one server under ``/agents/{name}`` on
    127.0.0.1 and talks A2A JSON-RPC to it; ``local`` calls the agents in-process. Behaviour is the same."""
    async with AsyncExitStack() as stack:
        if transport == "local":
            clients = {a.name: await stack.enter_async_context(LocalAgentClient(a)) for a in agents}
            yield {name: Party(name, client) for name, client in clients.items()}
            return
        if transport != "http":
            raise ValueError(f"transport must be 'local' or 'http', not {transport!r}")
        port = free_port()
        # one agent would be served at the root; the /agents/{name} layout needs at least two
        app = create_app(list(agents), base_url=f"http://127.0.0.1:{port}")
        base = stack.enter_context(serve_in_thread(app, port))
        prefix = "" if len(agents) == 1 else "/agents/{}"
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=600.0, limits=limits))
        yield {a.name: Party(a.name, HttpAgentClient(base + prefix.format(a.name) + "/", http=http)) for a in agents}
