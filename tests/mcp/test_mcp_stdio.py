"""MCP over stdio: ``python -m agents.mcp module:attr`` spawned by the official client and by McpToolClient."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from agents.examples import EchoIn, EchoOut
from agents.mcp import USAGE_META_KEY, McpToolClient, McpToolError

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent  # the spawned server imports mcp_targets from here


async def test_official_client_over_stdio_with_a_factory_target() -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "agents.mcp", "agents.examples:echo_agent"])
    with anyio.fail_after(60):
        async with Client(params, read_timeout_seconds=30) as client:
            (tool,) = (await client.list_tools()).tools
            result = await client.call_tool("echo", {"text": "stdio"})
    assert tool.name == "echo" and tool.description == "Repeat the text back with its length."
    assert tool.input_schema == EchoIn.model_json_schema()
    assert tool.output_schema == EchoOut.model_json_schema()
    assert result.structured_content == {"text": "stdio", "length": 5}
    assert USAGE_META_KEY in (result.meta or {})


async def test_tool_client_over_stdio_with_a_list_target() -> None:
    with anyio.fail_after(60):
        async with McpToolClient.agent_stdio("mcp_targets:pair", cwd=HERE, timeout_s=30) as tools:
            infos = {t.name: t for t in await tools.list_tools()}
            echoed = await tools.call_tool("echo.echo", {"text": "hi"})
            with pytest.raises(McpToolError) as failed:
                await tools.call_tool("triage.classify", {"text": "hi"})
            with pytest.raises(McpToolError) as refused:
                await tools.call_tool("echo.echo", {"text": 3})
    assert sorted(infos) == ["echo.echo", "triage.classify"]
    assert infos["triage.classify"].output_schema is not None
    assert echoed == {"text": "hi", "length": 2}
    assert "InvalidModelOutput" in failed.value.reason and "department" in failed.value.reason
    assert refused.value.code is None and "invalid arguments" in refused.value.reason and "text" in refused.value.reason


async def test_an_agent_attribute_target_serves_over_stdio() -> None:
    with anyio.fail_after(60):
        async with McpToolClient.agent_stdio("mcp_targets:single", cwd=HERE, timeout_s=30) as tools:
            assert [t.name for t in await tools.list_tools()] == ["echo"]


@pytest.mark.parametrize("target", ["mcp_targets:not_an_agent", "mcp_targets:missing", "no_colon"])
async def test_a_bad_target_exits_2_with_a_clear_message(target: str) -> None:
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-m", "agents.mcp", target], cwd=HERE, check=False, stdin=None)
    assert done.returncode == 2
    assert b"error:" in done.stderr and target.split(":")[-1].encode() in done.stderr
