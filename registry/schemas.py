"""Request bodies and query parameters of the registry HTTP API (shared by the server and the client)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from registry.models import CostHints, HealthStatus, ModelInfo

__all__ = ["RegisterUrlRequest", "RegisterMcpRequest", "RecordCallRequest", "StatusRequest", "SearchParams"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterUrlRequest(_Body):
    """Register the agent whose card is served at ``url``."""

    url: str = Field(min_length=1, max_length=2000)
    model: ModelInfo | None = None
    cost: CostHints | None = None
    agent_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@-]+$")
    timeout: float = Field(default=10.0, gt=0, le=60)


class RegisterMcpRequest(_Body):
    """Register an MCP server reachable over Streamable HTTP (stdio commands are not accepted over HTTP)."""

    url: str = Field(min_length=1, max_length=2000, pattern=r"^(mcp\+)?https?://")
    name: str | None = Field(default=None, min_length=1, max_length=200)
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


class SearchParams(_Body):
    """Search criteria; ``status=None`` means any status."""

    skill: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=50)
    text: str | None = Field(default=None, max_length=1000)
    status: list[HealthStatus] | None = Field(default_factory=lambda: [HealthStatus.HEALTHY])
    max_cost: float | None = Field(default=None, ge=0)
    max_latency_ms: float | None = Field(default=None, ge=0)
    all_tags: bool = False
    limit: int = Field(default=20, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
