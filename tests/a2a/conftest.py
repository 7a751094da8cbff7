"""Fixtures for the A2A suites: a test agent with typed, gated and model-backed skills, over both transports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext
from agents.client import AgentClient, HttpAgentClient, LocalAgentClient
from agents.llm.base import Brain
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread

TRANSPORTS = ["local", "http"]


class Order(BaseModel):
    sku: str = Field(min_length=1, max_length=40)
    quantity: int = Field(ge=1, le=1000)


class Quote(BaseModel):
    sku: str
    quantity: int
    total_cents: int


class Gate(BaseModel):
    key: str = Field(min_length=1, max_length=100)


class GateOut(BaseModel):
    key: str


class Inquiry(BaseModel):
    text: str = Field(min_length=1)


class Verdict(BaseModel):
    department: str = Field(pattern="^(sales|support|billing)$")


def shop_agent(brain: Brain | None = None, name: str = "shop") -> Agent:
    """``quote`` (default, typed input), ``hold``/``release`` (a task held on an anyio.Event), ``route`` (model)."""
    agent = Agent(name, "Quotes orders; test agent for the A2A suites", brain=brain)
    gates: dict[str, anyio.Event] = {}

    @agent.skill()
    async def quote(ctx: SkillContext, req: Order) -> Quote:
        """Price an order at 250 cents a unit."""
        return Quote(sku=req.sku, quantity=req.quantity, total_cents=250 * req.quantity)

    @agent.skill()
    async def hold(ctx: SkillContext, req: Gate) -> GateOut:
        """Stay running until ``release`` is called with the same key."""
        await gates.setdefault(req.key, anyio.Event()).wait()
        return GateOut(key=req.key)

    @agent.skill()
    async def release(ctx: SkillContext, req: Gate) -> GateOut:
        """Let the ``hold`` task with this key finish."""
        gates.setdefault(req.key, anyio.Event()).set()
        return GateOut(key=req.key)

    @agent.skill()
    async def route(ctx: SkillContext, req: Inquiry) -> Verdict:
        """Ask the model which department handles the message."""
        return await ctx.generate(f"Department for: {req.text}", Verdict, retries=1)

    return agent


@pytest.fixture(scope="module")
def shop_url() -> Iterator[str]:
    """A real uvicorn server on loopback serving ``shop_agent()`` at its root."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(shop_agent(), url), port=port) as served:
        yield served


@asynccontextmanager
async def open_client(agent: Agent, transport: str) -> AsyncIterator[AgentClient]:
    """A client for ``agent``: in-process, or over HTTP to a fresh loopback server."""
    if transport == "local":
        async with LocalAgentClient(agent) as local:
            yield local
        return
    port = free_port()
    with serve_in_thread(create_app(agent, f"http://127.0.0.1:{port}"), port=port) as base:
        async with HttpAgentClient(base + "/") as http:
            yield http
