"""The official MCP client against ``mcp_server(agent)`` in process, in both protocol eras."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.errors import SkillInputError
from agents.examples import Classification, EchoIn, EchoOut, Inquiry
from agents.mcp import USAGE_META_KEY, mcp_server
from agents.mcp_server import INVALID_ARGUMENTS_META_KEY

pytestmark = pytest.mark.anyio
MODES = ["auto", "legacy"]  # auto negotiates 2026-07-28 in process; legacy runs the initialize handshake


@pytest.mark.parametrize("mode", MODES)
async def test_lists_every_skill_as_a_tool(mode: str, echo: Agent, good_triage: Callable[[str], Agent]) -> None:
    for agent, model_in, model_out in ((echo, EchoIn, EchoOut), (good_triage("triage"), Inquiry, Classification)):
        with anyio.fail_after(10):
            async with Client(mcp_server(agent), mode=mode) as client:
                listing = await client.list_tools()
        (tool,) = listing.tools
        skill = next(iter(agent.skills.values()))
        assert tool.name == skill.id
        assert tool.description == skill.description
        assert tool.input_schema == model_in.model_json_schema()
        assert tool.output_schema == model_out.model_json_schema()


@pytest.mark.parametrize("mode", MODES)
async def test_call_returns_structured_and_text_content_and_usage(mode: str, echo: Agent) -> None:
    with anyio.fail_after(10):
        async with Client(mcp_server(echo), mode=mode) as client:
            result = await client.call_tool("echo", {"text": "héllo"})
    assert not result.is_error
    assert result.structured_content == {"text": "héllo", "length": 5}
    (block,) = result.content
    assert isinstance(block, types.TextContent) and json.loads(block.text) == result.structured_content
    usage = (result.meta or {})[USAGE_META_KEY]
    assert usage["calls"] == 0 and usage["total_tokens"] == 0 and usage["elapsed_seconds"] >= 0


@pytest.mark.parametrize("mode", MODES)
async def test_model_usage_travels_in_meta(mode: str, good_triage: Callable[[str], Agent]) -> None:
    agent = good_triage("triage")
    with anyio.fail_after(10):
        async with Client(mcp_server(agent), mode=mode) as client:
            result = await client.call_tool("classify", {"text": "We were charged twice"})
    assert result.structured_content == {"department": "billing", "urgent": False}
    usage = (result.meta or {})[USAGE_META_KEY]
    assert usage["model"] == "scripted-gemma" and usage["calls"] == 1
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "wall_seconds" in usage and "cpu_seconds" in usage


@pytest.mark.parametrize("mode", MODES)
async def test_invalid_arguments_are_a_tool_error_naming_the_field(mode: str, echo: Agent) -> None:
    """SEP-1303: the model reads which field was wrong and how to fix it, as a tool result (not a protocol error)."""
    with anyio.fail_after(10):
        async with Client(mcp_server(echo), mode=mode) as client:
            missing = await client.call_tool("echo", {"txt": "hi"})
            too_long = await client.call_tool("echo", {"text": "x" * 10_001})
    assert missing.is_error and too_long.is_error
    (text,) = missing.content
    assert isinstance(text, types.TextContent)
    assert text.text.startswith("invalid arguments for tool 'echo': text: Field required.")
    assert "inputSchema" in text.text and "call 'echo' again" in text.text
    assert missing.meta is not None and missing.meta[INVALID_ARGUMENTS_META_KEY] == {
        "tool": "echo",
        "errors": [{"field": "text", "message": "Field required"}],
    }
    assert missing.meta[USAGE_META_KEY]["calls"] == 0
    assert too_long.meta is not None and too_long.meta[INVALID_ARGUMENTS_META_KEY]["errors"][0]["field"] == "text"


@pytest.mark.parametrize("mode", MODES)
async def test_input_the_skill_refuses_is_a_tool_error_too(mode: str) -> None:
    agent = Agent("picky", "refuses some input")

    @agent.skill()
    async def pick(ctx: SkillContext, req: EchoIn) -> EchoOut:
        """Refuse the text 'no'."""
        if req.text == "no":
            raise SkillInputError("text must not be 'no'; send any other text")
        return EchoOut(text=req.text, length=len(req.text))

    with anyio.fail_after(10):
        async with Client(mcp_server(agent), mode=mode) as client:
            refused = await client.call_tool("pick", {"text": "no"})
    assert refused.is_error and refused.meta is not None and INVALID_ARGUMENTS_META_KEY in refused.meta
    assert "text must not be 'no'" in refused.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_tool_is_an_mcp_error_listing_the_tools(mode: str, echo: Agent) -> None:
    with anyio.fail_after(10):
        async with Client(mcp_server(echo), mode=mode) as client:
            with pytest.raises(MCPError) as err:
                await client.call_tool("shout", {"text": "hi"})
    assert err.value.code == types.INVALID_PARAMS  # the specification's way: a protocol error, as the orchestrator's
    assert "shout" in err.value.message and "echo" in err.value.message and "tools/list" in err.value.message


@pytest.mark.parametrize("mode", MODES)
async def test_invalid_model_output_is_a_tool_error_with_the_reason(
    mode: str, bad_triage: Callable[[str], Agent]
) -> None:
    agent = bad_triage("triage")
    with anyio.fail_after(10):
        async with Client(mcp_server(agent), mode=mode) as client:
            result = await client.call_tool("classify", {"text": "hello"})
    assert result.is_error
    (block,) = result.content
    assert isinstance(block, types.TextContent)
    assert block.text.startswith("InvalidModelOutput:")
    assert "department" in block.text and "3 times" in block.text
    assert (result.meta or {})[USAGE_META_KEY]["calls"] == 3  # the retries were paid for and reported


class Empty(BaseModel):
    pass


class Done(BaseModel):
    ok: bool


def _awkward_agent() -> Agent:
    agent = Agent("awkward", "Skills that fail in the ways a server must survive")

    @agent.skill()
    async def crash(ctx: SkillContext, req: Empty) -> Done:
        """Raise a bug."""
        raise ZeroDivisionError("division by zero in the skill")

    @agent.skill()
    async def hang(ctx: SkillContext, req: Empty) -> Done:
        """Wait for something that never happens."""
        await anyio.Event().wait()
        return Done(ok=True)

    return agent


async def test_a_crashing_or_hanging_skill_answers_a_tool_error_and_the_server_lives_on() -> None:
    server = mcp_server(_awkward_agent(), call_timeout_s=0.2)
    with anyio.fail_after(10):
        async with Client(server) as client:
            crashed = await client.call_tool("crash", {})
            hung = await client.call_tool("hang", {})
            listing = await client.list_tools()
    assert crashed.is_error and "ZeroDivisionError" in crashed.content[0].text  # type: ignore[union-attr]
    assert hung.is_error and "DeadlineExceeded" in hung.content[0].text  # type: ignore[union-attr]
    assert [t.name for t in listing.tools] == ["crash", "hang"]


async def test_several_agents_in_one_server_prefix_tools_with_the_agent_name(
    echo: Agent, good_triage: Callable[[str], Agent]
) -> None:
    with anyio.fail_after(10):
        async with Client(mcp_server([echo, good_triage("triage")])) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool("triage.classify", {"text": "invoice"})
    assert names == ["echo.echo", "triage.classify"]
    assert result.structured_content == {"department": "billing", "urgent": False}


def test_server_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one agent"):
        mcp_server([])
    with pytest.raises(ValueError, match="call_timeout_s"):
        mcp_server(Agent("x", "y"), call_timeout_s=0)
