"""Discovery: read an A2A Agent Card from a URL, or list an MCP server's tools, and register the result.

Every network step is bounded by a timeout; failures become CardFetchError / CardValidationError /
McpDiscoveryError with the URL and a hint how to fix it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

import anyio
import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from pydantic import ValidationError

from protocol.a2a import AGENT_CARD_PATH, AgentCard, AgentInterface, AgentSkill
from protocol.validation import describe_validation_error
from registry.errors import CardFetchError, CardValidationError, McpDiscoveryError
from registry.models import AgentRecord, CostHints, ModelInfo, Registration
from registry.store import Registry

__all__ = [
    "MAX_CARD_BYTES",
    "card_url_for",
    "parse_card",
    "fetch_card",
    "mcp_target",
    "describe_mcp",
    "ping_mcp",
    "register_url",
    "register_mcp",
]

MAX_CARD_BYTES = 1_000_000
McpTarget = str | Sequence[str] | StdioServerParameters


def card_url_for(url: str) -> str:
    """Where the card of the agent at ``url`` is served (``url`` itself when it already names a .json)."""
    if url.split("?", 1)[0].endswith(".json"):
        return url
    return url.rstrip("/") + AGENT_CARD_PATH


def parse_card(payload: bytes | str | dict[str, Any], source: str = "the request") -> AgentCard:
    """Validate an Agent Card (JSON text or dict); raises CardValidationError naming the bad fields."""
    try:
        data = json.loads(payload) if isinstance(payload, bytes | str) else payload
    except json.JSONDecodeError as exc:
        raise CardValidationError(f"the agent card from {source} is not JSON: {exc}") from None
    try:
        return AgentCard.model_validate(data)
    except ValidationError as exc:
        details = describe_validation_error(exc, limit=8)
        raise CardValidationError(
            f"the agent card from {source} is not a valid A2A 1.0 Agent Card: {details}"
        ) from None


async def fetch_card(url: str, *, timeout_s: float = 10.0) -> tuple[AgentCard, str]:
    """Fetch and validate the card of the agent at ``url``; returns the card and the URL it came from."""
    where = card_url_for(url)
    if not where.startswith(("http://", "https://")):
        raise CardFetchError(f"{url!r} is not an http(s) URL; pass the agent's base URL or its card URL")
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client:
            async with client.stream("GET", where, headers={"Accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise CardFetchError(
                        f"GET {where} answered HTTP {resp.status_code}; an A2A agent serves its card at "
                        f"<base URL>{AGENT_CARD_PATH}"
                    )
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_CARD_BYTES:
                        raise CardValidationError(f"the agent card at {where} is larger than 1 MB")
    except httpx.TimeoutException:
        raise CardFetchError(
            f"timed out after {timeout_s:g} s fetching {where}; is the agent running and reachable?"
        ) from None
    except httpx.HTTPError as exc:
        raise CardFetchError(
            f"cannot fetch {where}: {exc.__class__.__name__}: {exc}; check the URL and that the agent is up"
        ) from None
    return parse_card(bytes(body), where), where


def mcp_target(target: McpTarget) -> tuple[str | StdioServerParameters, str]:
    """What the MCP client connects to, and the registry URL for it (mcp+http://... or mcp+stdio:...)."""
    if isinstance(target, StdioServerParameters):
        return target, "mcp+stdio:" + shlex.join([target.command, *target.args])
    if isinstance(target, str):
        plain = target.removeprefix("mcp+")
        if plain.startswith(("http://", "https://")):
            return plain, "mcp+" + plain
        if plain.startswith("stdio:"):
            target = shlex.split(plain.removeprefix("stdio:"))
        else:
            raise McpDiscoveryError(
                f"unknown MCP target {target!r}; use http(s)://host/mcp, or stdio:'command args' "
                "(or a list of command words)"
            )
    words = list(target)
    if not words:
        raise McpDiscoveryError("an MCP stdio command needs at least the program to run")
    return StdioServerParameters(command=words[0], args=words[1:]), "mcp+stdio:" + shlex.join(words)


async def describe_mcp(target: McpTarget, *, name: str | None = None, timeout_s: float = 20.0) -> Registration:
    """Connect to an MCP server, list its tools, and describe it as a Registration (tools become skills)."""
    server, url = mcp_target(target)
    tools: list[Any] = []
    try:
        with anyio.fail_after(timeout_s):
            async with Client(server, read_timeout_seconds=timeout_s) as client:
                info = client.server_info
                instructions = client.instructions
                cursor: str | None = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools += page.tools
                    cursor = page.next_cursor
                    if not cursor or len(tools) > 1000:
                        break
    except TimeoutError:
        raise McpDiscoveryError(
            f"the MCP server {url} did not list its tools within {timeout_s:g} s; is it running?"
        ) from None
    except Exception as exc:  # noqa: BLE001 - transport errors come in many shapes (OSError, groups, MCPError)
        raise McpDiscoveryError(f"cannot list the tools of the MCP server {url}: {_reason(exc)}") from None
    server_name = name or (info.name if info and info.name else None)
    if not server_name:
        raise McpDiscoveryError(f"the MCP server {url} did not give a name; pass name=...")
    description = (info.description if info else None) or instructions or f"MCP server {server_name}"
    try:
        card = AgentCard(
            name=server_name[:200],
            description=description[:10_000],
            version=((info.version if info else None) or "0")[:100],
            supported_interfaces=[AgentInterface(url=url, protocol_binding="MCP")],
            skills=[
                AgentSkill(
                    id=t.name,
                    name=(t.title or t.name)[:200],
                    description=(t.description or "")[:10_000],
                    tags=["mcp"],
                )
                for t in tools
            ],
        )
    except ValidationError as exc:
        raise CardValidationError(f"the MCP server {url} describes itself invalidly: {exc}") from None
    schemas = {t.name: (t.input_schema, t.output_schema) for t in tools}
    return Registration(card=card, transport="mcp", url=url, skill_schemas=schemas)


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{exc.__class__.__name__}: {exc}"


async def ping_mcp(url: str, *, timeout_s: float = 10.0) -> bool:
    """True when the MCP server registered under ``url`` answers a ping within ``timeout_s``."""
    server, _ = mcp_target(url)
    try:
        with anyio.fail_after(timeout_s):
            async with Client(server, read_timeout_seconds=timeout_s) as client:
                await client.send_ping()
        return True
    except Exception:  # noqa: BLE001 - any failure is a failed probe
        return False


async def register_url(
    registry: Registry,
    url: str,
    *,
    model: ModelInfo | None = None,
    cost: CostHints | None = None,
    agent_id: str | None = None,
    timeout_s: float = 10.0,
) -> AgentRecord:
    """Fetch the agent card at ``url``, validate it and register it (idempotent)."""
    card, where = await fetch_card(url, timeout_s=timeout_s)
    reg = Registration(card=card, model=model, cost=cost, agent_id=agent_id, card_url=where)
    return await anyio.to_thread.run_sync(registry.register, reg)


async def register_mcp(
    registry: Registry,
    target: McpTarget,
    *,
    name: str | None = None,
    model: ModelInfo | None = None,
    cost: CostHints | None = None,
    timeout_s: float = 20.0,
) -> AgentRecord:
    """List an MCP server's tools and register it, each tool a skill with its input/output schemas."""
    reg = await describe_mcp(target, name=name, timeout_s=timeout_s)
    reg = reg.model_copy(update={"model": model, "cost": cost})
    return await anyio.to_thread.run_sync(registry.register, reg)
