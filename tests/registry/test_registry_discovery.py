"""Discovery over real loopback servers: A2A cards by URL, MCP servers over HTTP and stdio, and failures."""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port, no_network, serve_in_thread
from registry import CardFetchError, CardValidationError, McpDiscoveryError, Registry
from registry.discovery import card_url_for, register_mcp, register_url
from registry.stdio import StdioAllowlist

HERE = Path(__file__).parent


@pytest.mark.anyio
async def test_register_a2a_agent_by_url(registry: Registry) -> None:
    port = free_port()
    app = create_app([echo_agent("echo-a"), echo_agent("echo-b")], f"http://127.0.0.1:{port}")
    with serve_in_thread(app, port) as base, no_network():
        with anyio.fail_after(30):
            rec = await register_url(registry, f"{base}/agents/echo-a/")
            again = await register_url(registry, f"{base}/agents/echo-a/.well-known/agent-card.json")
    assert rec.name == "echo-a" and rec.url == f"{base}/agents/echo-a/" and rec.transport == "a2a"
    assert rec.card_url == f"{base}/agents/echo-a/.well-known/agent-card.json"
    assert [s.id for s in rec.skills] == ["echo"] and again.id == rec.id and registry.count() == 1


def _bad_server() -> Starlette:
    async def not_json(_: object) -> Response:
        return Response("<html>hello</html>", media_type="text/html")

    async def not_card(_: object) -> Response:
        return JSONResponse({"name": "x", "supportedInterfaces": []})

    async def slow(_: object) -> Response:
        await anyio.sleep(5)
        return JSONResponse({})

    async def drip(_: object) -> Response:  # each byte in time, the whole card never
        async def body() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b" "
                await anyio.sleep(0.1)

        return StreamingResponse(body(), media_type="application/json")

    async def big(_: object) -> Response:
        return Response(b" " * 1_100_000, media_type="application/json")

    return Starlette(
        routes=[
            Route("/drip/.well-known/agent-card.json", drip),
            Route("/big/.well-known/agent-card.json", big),
            Route("/html/.well-known/agent-card.json", not_json),
            Route("/bad/.well-known/agent-card.json", not_card),
            Route("/slow/.well-known/agent-card.json", slow),
        ]
    )


@pytest.mark.anyio
async def test_bad_cards_and_unreachable_urls(registry: Registry) -> None:
    with serve_in_thread(_bad_server()) as base, anyio.fail_after(30):
        with pytest.raises(CardValidationError, match="is not JSON"):
            await register_url(registry, f"{base}/html")
        with pytest.raises(CardValidationError, match="description: Field required"):
            await register_url(registry, f"{base}/bad")
        with pytest.raises(CardFetchError, match="timed out after 0.3 s"):
            await register_url(registry, f"{base}/slow", timeout_s=0.3)
        with pytest.raises(CardFetchError, match="timed out after 0.5 s"):
            await register_url(registry, f"{base}/drip", timeout_s=0.5)  # the whole fetch is bounded
        with pytest.raises(CardValidationError, match="larger than 1 MB"):
            await register_url(registry, f"{base}/big")
        with pytest.raises(CardFetchError, match="HTTP 404"):
            await register_url(registry, f"{base}/missing")
        with pytest.raises(CardFetchError, match="check the URL"):
            await register_url(registry, f"http://127.0.0.1:{free_port()}/")
        with pytest.raises(CardFetchError, match="not an http"):
            await register_url(registry, "ftp://example/")
    assert registry.count() == 0


def test_card_url_for() -> None:
    assert card_url_for("http://h:1/") == "http://h:1/.well-known/agent-card.json"
    assert card_url_for("http://h:1/a/card.json") == "http://h:1/a/card.json"


@pytest.mark.anyio
async def test_register_mcp_over_http(registry: Registry) -> None:
    server = MCPServer("calc", version="0.3.0", instructions="Adds numbers")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    with serve_in_thread(server.streamable_http_app()) as base, anyio.fail_after(30):
        rec = await register_mcp(registry, f"{base}/mcp")
    assert rec.name == "calc" and rec.transport == "mcp" and rec.url == f"mcp+{base}/mcp"
    assert rec.version == "0.3.0" and rec.description == "Adds numbers"
    (skill,) = rec.skills
    assert skill.id == "add" and skill.description == "Add two integers." and skill.tags == ["mcp"]
    assert skill.input_schema is not None and set(skill.input_schema["properties"]) == {"a", "b"}
    assert skill.output_schema is not None
    assert [r.name for r in registry.search(text="integers")] == ["calc"]


@pytest.mark.anyio
async def test_register_mcp_over_stdio(registry: Registry, tmp_path: Path) -> None:
    command = [sys.executable, str(HERE / "mcp_stdio_server.py")]
    with anyio.fail_after(60):
        with pytest.raises(McpDiscoveryError, match="not in this host's stdio allowlist"):
            await register_mcp(registry, "stdio:" + shlex.join(command))  # no allowlist: nothing is started
        allowlist = StdioAllowlist([command], tmp_path / "allow")
        rec = await register_mcp(registry, "stdio:" + shlex.join(command), stdio_allowlist=allowlist)
    assert rec.name == "units" and rec.url == "mcp+stdio:" + shlex.join(command)
    assert [s.id for s in rec.skills] == ["mm_to_inch"]
    assert rec.skills[0].input_schema is not None and "mm" in rec.skills[0].input_schema["properties"]


@pytest.mark.anyio
async def test_mcp_failures(registry: Registry, tmp_path: Path) -> None:
    missing = ["/definitely/not/a/program"]
    with anyio.fail_after(30):
        with pytest.raises(McpDiscoveryError, match="cannot list the tools"):
            allowlist = StdioAllowlist([missing], tmp_path / "allow")
            await register_mcp(registry, "stdio:" + missing[0], timeout_s=10, stdio_allowlist=allowlist)
        with pytest.raises(McpDiscoveryError, match="unknown MCP target"):
            await register_mcp(registry, "gopher://x")
        with pytest.raises(McpDiscoveryError):
            await register_mcp(registry, f"http://127.0.0.1:{free_port()}/mcp", timeout_s=5)
    assert registry.count() == 0


@pytest.mark.anyio
async def test_mcp_responses_are_capped(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry import discovery

    monkeypatch.setattr(discovery, "MAX_MCP_RESPONSE_BYTES", 10_000)

    async def huge(_: object) -> Response:
        payload = b'{"jsonrpc": "2.0", "id": 0, "result": {"pad": "' + b"x" * 100_000 + b'"}}'
        return Response(payload, media_type="application/json")

    app = Starlette(routes=[Route("/mcp", huge, methods=["GET", "POST", "DELETE"])])
    with serve_in_thread(app) as base, anyio.fail_after(30):
        with pytest.raises(McpDiscoveryError, match="larger than 10000 bytes"):
            await register_mcp(registry, f"{base}/mcp", timeout_s=10)
    assert registry.count() == 0
