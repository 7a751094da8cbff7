"""MCP over streamable HTTP against real loopback servers: ``create_app`` mounts, multi-agent, standalone."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from mcp import Client

from agents.agent import Agent
from agents.examples import EchoIn
from agents.mcp import USAGE_META_KEY, McpToolClient, McpToolError, mcp_http_app
from agents.serve import create_app
from agents.testing import no_network, serve_in_thread

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_official_client_over_http_on_both_paths(echo: Agent, path: str, mode: str) -> None:
    with no_network(), serve_in_thread(create_app(echo)) as base:
        with anyio.fail_after(20):
            async with Client(base + path, mode=mode) as client:
                tools = (await client.list_tools()).tools
                result = await client.call_tool("echo", {"text": "over http"})
    assert [(t.name, t.input_schema) for t in tools] == [("echo", EchoIn.model_json_schema())]
    assert result.structured_content == {"text": "over http", "length": 9}
    assert USAGE_META_KEY in (result.meta or {})


async def test_mcp_paths_answer_without_redirects(echo: Agent) -> None:
    with no_network(), serve_in_thread(create_app(echo)) as base:
        async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
            for path in ("/mcp", "/mcp/"):
                response = await http.post(
                    base + path,
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "initialize",
                        "params": {
                            "protocolVersion": "2025-11-25",
                            "capabilities": {},
                            "clientInfo": {"name": "probe", "version": "0"},
                        },
                    },
                    headers={"accept": "application/json, text/event-stream"},
                )
                assert response.status_code == 200, (path, response.status_code, response.text)
                assert response.headers.get("mcp-session-id")


async def test_multi_agent_server_has_one_mcp_endpoint_per_agent(
    echo: Agent, good_triage: Callable[[str], Agent], bad_triage: Callable[[str], Agent]
) -> None:
    app = create_app([echo, good_triage("good"), bad_triage("bad")])
    with no_network(), serve_in_thread(app) as base:
        with anyio.fail_after(30):
            async with McpToolClient.http(f"{base}/agents/echo/mcp") as tools:
                assert [t.name for t in await tools.list_tools()] == ["echo"]
                assert await tools.call_tool("echo", {"text": "a"}) == {"text": "a", "length": 1}
            async with McpToolClient.http(f"{base}/agents/good/mcp/") as tools:
                (info,) = await tools.list_tools()
                assert info.name == "classify" and info.description.startswith("Classify a customer message")
                assert await tools.call_tool("classify", {"text": "invoice"}) == {
                    "department": "billing",
                    "urgent": False,
                }
                assert tools.last_meta[USAGE_META_KEY]["calls"] == 1
            async with McpToolClient.http(f"{base}/agents/bad/mcp") as tools:
                with pytest.raises(McpToolError) as failed:
                    await tools.call_tool("classify", {"text": "invoice"})
                with pytest.raises(McpToolError) as refused:
                    await tools.call_tool("classify", {"txt": "invoice"})
    assert failed.value.code is None and "InvalidModelOutput" in failed.value.reason
    assert refused.value.code is None and "invalid arguments" in refused.value.reason and "text" in refused.value.reason


async def test_the_app_serves_a2a_and_mcp_side_by_side_and_restarts(echo: Agent) -> None:
    app = create_app(echo)
    for run in range(2):  # a second lifespan builds a fresh session manager
        with no_network(), serve_in_thread(app) as base:
            with anyio.fail_after(20):
                async with McpToolClient.http(base + "/mcp") as tools:
                    assert await tools.call_tool("echo", {"text": str(run)}) == {"text": str(run), "length": 1}
                async with httpx.AsyncClient(timeout=10) as http:
                    card = (await http.get(base + "/.well-known/agent-card.json")).json()
    assert card["name"] == "echo"


async def test_standalone_http_app_runs_its_own_lifespan(echo: Agent) -> None:
    with no_network(), serve_in_thread(mcp_http_app(echo)) as base:
        with anyio.fail_after(20):
            async with McpToolClient.http(base + "/") as tools:
                assert await tools.call_tool("echo", {"text": "x"}) == {"text": "x", "length": 1}


async def test_http_app_outside_its_lifespan_says_how_to_fix_it(echo: Agent) -> None:
    transport = httpx.ASGITransport(app=mcp_http_app(echo))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 503 and "lifespan" in response.json()["error"]["message"]


def test_http_client_rejects_a_non_http_url() -> None:
    with pytest.raises(ValueError, match="http://"):
        McpToolClient.http("localhost:8000/mcp")
