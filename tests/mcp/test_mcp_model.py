"""The real small model behind an MCP tool: grammar-constrained output comes back validated, with usage."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from agents.examples import Classification, triage_agent
from agents.llm import LlamaCpp
from agents.mcp import USAGE_META_KEY, mcp_server

pytestmark = [pytest.mark.anyio, pytest.mark.model]


async def test_real_model_classification_over_mcp() -> None:
    with anyio.fail_after(240):
        async with Client(mcp_server(triage_agent(LlamaCpp())), read_timeout_seconds=200) as client:
            result = await client.call_tool("classify", {"text": "We were charged twice this month"})
    usage = (result.meta or {})[USAGE_META_KEY]
    assert usage["calls"] >= 1 and usage["completion_tokens"] > 0 and usage["model"]
    if result.is_error:  # the guardrail held: a bad answer is reported, never passed on
        assert "InvalidModelOutput" in result.content[0].text  # type: ignore[union-attr]
    else:
        Classification.model_validate(result.structured_content)
