"""A skill that asks, served as an MCP tool: the question is an elicitation when the client can answer one (the
legacy handshake, with an elicitation callback), else the tool fails with a clear error."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from agents.mcp import mcp_server
from tests.a2a.test_ask import DAY_QUESTION, PLANT_QUESTION, planner_agent

pytestmark = pytest.mark.anyio


async def test_ask_is_an_elicitation_the_client_answers() -> None:
    asked: list[tuple[str, Any]] = []

    async def answer(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append((params.message, getattr(params, "requested_schema", None)))
        content = {"plant": "north"} if params.message == PLANT_QUESTION else {"day": 5}
        return types.ElicitResult(action="accept", content=content)

    with anyio.fail_after(10):
        async with Client(mcp_server(planner_agent()), mode="legacy", elicitation_callback=answer) as client:
            result = await client.call_tool("ship", {"sku": "M"})
    assert not result.is_error, result.content
    assert result.structured_content == {"sku": "M", "plant": "north", "day": 5}
    assert [message for message, _ in asked] == [PLANT_QUESTION, DAY_QUESTION]
    assert asked[0][1]["properties"]["plant"]["pattern"] == "^(north|south)$"


async def test_declined_elicitation_fails_the_call_with_the_reason() -> None:
    async def decline(_context: Any, _params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    with anyio.fail_after(10):
        async with Client(mcp_server(planner_agent()), mode="legacy", elicitation_callback=decline) as client:
            result = await client.call_tool("ship", {"sku": "M"})
    assert result.is_error
    text = result.content[0].text if isinstance(result.content[0], types.TextContent) else ""
    assert "did not answer" in text and "decline" in text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_client_that_cannot_answer_gets_a_clear_error(mode: str) -> None:
    with anyio.fail_after(10):
        async with Client(mcp_server(planner_agent()), mode=mode) as client:
            result = await client.call_tool("ship", {"sku": "M"})
    assert result.is_error
    text = result.content[0].text if isinstance(result.content[0], types.TextContent) else ""
    assert "InputUnavailable" in text and "cannot answer questions" in text and "A2A" in text
