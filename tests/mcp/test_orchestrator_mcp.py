"""Both MCP surfaces (an agent's and the orchestrator's) handle unknown tools alike, advertise only what they serve,
and answer the orchestrator's refusals with what was wrong and how to fix it (the official client, in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from agents.examples import echo_agent
from agents.mcp import mcp_server
from orchestrator.mcp import orchestrator_mcp
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from registry import Registry

pytestmark = pytest.mark.anyio
MODES = ["auto", "legacy"]  # auto negotiates 2026-07-28 in process; legacy runs the initialize handshake


@asynccontextmanager
async def _orchestrator(tmp_path: Path) -> AsyncIterator[Orchestrator]:
    db_url = f"sqlite:///{tmp_path / 'scaleout.db'}"
    with Registry(db_url) as registry:
        orchestrator = Orchestrator(registry, db_url, router=Router(registry, cache_ttl_s=0))
        try:
            async with orchestrator.running():
                yield orchestrator
        finally:
            orchestrator.store.close()


@asynccontextmanager
async def _agent_server(tmp_path: Path) -> AsyncIterator[Any]:
    yield mcp_server(echo_agent())


@asynccontextmanager
async def _orchestrator_server(tmp_path: Path) -> AsyncIterator[Any]:
    async with _orchestrator(tmp_path) as orchestrator:
        yield orchestrator_mcp(orchestrator)


SURFACES = {"agent": _agent_server, "orchestrator": _orchestrator_server}


async def _text(result: types.CallToolResult) -> str:
    assert result.is_error, result
    (block,) = result.content
    assert isinstance(block, types.TextContent)
    return block.text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("surface", list(SURFACES))
async def test_unknown_tools_are_a_protocol_error_on_both_surfaces(mode: str, surface: str, tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with SURFACES[surface](tmp_path) as server, Client(server, mode=mode) as client:
            known = [tool.name for tool in (await client.list_tools()).tools]
            with pytest.raises(MCPError) as refused:
                await client.call_tool("no_such_tool", {})
    assert refused.value.code == types.INVALID_PARAMS
    assert "unknown tool 'no_such_tool'" in refused.value.message
    assert all(name in refused.value.message for name in known)


@pytest.mark.parametrize("surface", list(SURFACES))
async def test_initialize_advertises_tools_only(surface: str, tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with SURFACES[surface](tmp_path) as server, Client(server, mode="legacy") as client:
            capabilities = client.server_capabilities
            with pytest.raises(MCPError) as missing:
                await client.list_prompts()
    assert capabilities.tools is not None
    assert (capabilities.prompts, capabilities.resources, capabilities.logging, capabilities.completions) == (
        None,
        None,
        None,
        None,
    )
    assert missing.value.code == types.METHOD_NOT_FOUND


async def test_orchestrator_refusals_say_what_was_wrong_and_how_to_fix_it(tmp_path: Path) -> None:
    async with _orchestrator(tmp_path) as orchestrator:
        with anyio.fail_after(30):
            async with Client(orchestrator_mcp(orchestrator), mode="legacy") as client:
                missing_input = await _text(await client.call_tool("submit_task", {"skill": "work"}))
                not_a_dict = await _text(await client.call_tool("submit_task", {"skill": "work", "input": "x"}))
                unknown_skill = await _text(await client.call_tool("submit_task", {"skill": "nope", "input": {}}))
                unknown_run = await _text(await client.call_tool("run_status", {"run_id": "r-404"}))
                cancel_unknown = await _text(await client.call_tool("cancel_run", {"run_id": "r-404"}))
                bad_spec = await _text(await client.call_tool("submit_graph", {"graph": {"tasks": [{"id": "a"}]}}))
                bad_status = await _text(await client.call_tool("list_runs", {"status": "done"}))
    assert missing_input.startswith("invalid arguments for tool 'submit_task': input: Field required.")
    assert "inputSchema" in missing_input and "call 'submit_task' again" in missing_input
    assert "input: Input should be a valid dictionary" in not_a_dict
    assert "skill 'nope'" in unknown_skill and "list_agents tool" in unknown_skill
    assert "no run 'r-404'" in unknown_run and "list_runs tool" in unknown_run and "GET /runs" not in unknown_run
    assert cancel_unknown.startswith("cancel_run: no run 'r-404'")
    assert "tasks.0" in bad_spec and "must name a skill" in bad_spec and "fix those fields" in bad_spec
    assert "status must be one of" in bad_status and "'done'" in bad_status
    for text in (missing_input, unknown_skill, unknown_run, bad_spec, bad_status):
        assert "Error executing tool" not in text


async def test_an_orchestrator_tool_that_crashes_says_so_without_its_internals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(**_: Any) -> None:
        raise RuntimeError("secret internal detail")

    async with _orchestrator(tmp_path) as orchestrator:
        monkeypatch.setattr(orchestrator, "list_runs", crash)
        with anyio.fail_after(20):
            async with Client(orchestrator_mcp(orchestrator), mode="legacy") as client:
                text = await _text(await client.call_tool("list_runs", {}))
    assert text.startswith("list_runs failed unexpectedly (RuntimeError)") and "orchestrator's log" in text
    assert "secret" not in text
