"""Request bodies and query parameters of the registry HTTP API (shared by the server, the client and the store).

Every string that reaches a column or a query is limited as that column is (``protocol.validation.stored_text``:
length, no NUL, one line), and every number as the database can hold it, so both databases answer the same 4xx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from protocol.validation import stored_text
from registry.models import AgentId, CostHints, HealthStatus, ModelInfo, Name

__all__ = [
    "MAX_OFFSET",
    "RegisterUrlRequest",
    "RegisterMcpRequest",
    "RecordCallRequest",
    "StatusRequest",
    "PathId",
    "ListParams",
    "SearchParams",
]

MAX_OFFSET = 1_000_000_000  # far past any real fleet, and inside both databases' integers

if TYPE_CHECKING:
    PathId = str
    FetchUrl = str
    McpUrl = str
    Skill = str
    Tag = str
else:
    PathId = stored_text(200, min_length=1)  # an agent id or name
    # room for the card path that discovery appends, inside the 2000-character card_url column
    FetchUrl = stored_text(1900, min_length=1, pattern=r"^https?://")
    McpUrl = stored_text(1900, min_length=1, pattern=r"^(mcp\+)?https?://")
    Skill = stored_text(200, min_length=1)
    Tag = stored_text(200)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterUrlRequest(_Body):
    """Register the agent whose card is served at ``url`` (an http(s) URL)."""

    url: FetchUrl
    model: ModelInfo | None = None
    cost: CostHints | None = None
    agent_id: AgentId | None = None
    timeout: float = Field(default=10.0, gt=0, le=60)


class RegisterMcpRequest(_Body):
    """Register an MCP server reachable over Streamable HTTP (stdio commands are not accepted over HTTP)."""

    url: McpUrl
    name: Name | None = None
    model: ModelInfo | None = None
    cost: CostHints | None = None
    timeout: float = Field(default=20.0, gt=0, le=60)


class RecordCallRequest(_Body):
    """One observed call of an agent."""

    success: bool
    latency_s: float = Field(ge=0, le=86_400)
    tokens: int = Field(default=0, ge=0, le=10**9)


class StatusRequest(_Body):
    """A health status set by hand."""

    status: HealthStatus


class ListParams(_Body):
    """A page of agents ordered by name; ``status=None`` means any status."""

    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    status: list[HealthStatus] | None = Field(default=None, max_length=10)


class SearchParams(_Body):
    """Search criteria; ``status=None`` means any status."""

    skill: Skill | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    text: str | None = Field(default=None, max_length=1000, description="words only; never stored or parsed")
    status: list[HealthStatus] | None = Field(default_factory=lambda: [HealthStatus.HEALTHY], max_length=10)
    max_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    all_tags: bool = False
    limit: int = Field(default=20, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
