"""Registry records: what the registry knows about an agent, its skills, model, cost and observed behaviour."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.a2a import AgentCard

__all__ = [
    "HealthStatus",
    "Transport",
    "ModelInfo",
    "CostHints",
    "AgentStats",
    "SkillRecord",
    "AgentRecord",
    "AgentVersion",
    "Registration",
    "CallReport",
]

Transport = Literal["a2a", "mcp", "local"]
SkillSchemas = dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]


class HealthStatus(StrEnum):
    """Health of an agent as the registry sees it."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelInfo(_Record):
    """The model behind an agent."""

    name: str = Field(min_length=1, max_length=200)
    parameters: int | None = Field(default=None, ge=0)
    quantisation: str | None = Field(default=None, max_length=50)
    file_size: int | None = Field(default=None, ge=0)


class CostHints(_Record):
    """Declared cost of calling an agent (any currency or unit, used consistently by a deployment)."""

    per_call: float = Field(default=0.0, ge=0)
    per_1k_tokens: float = Field(default=0.0, ge=0)


class AgentStats(_Record):
    """Behaviour observed by callers (reported back through ``record_call``)."""

    calls: int = 0
    successes: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    tokens: int = 0

    @property
    def success_rate(self) -> float | None:
        """Successes over calls, or None before the first call."""
        return self.successes / self.calls if self.calls else None


class SkillRecord(_Record):
    """One skill (A2A skill or MCP tool) with its optional JSON schemas."""

    id: str
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None


class AgentRecord(_Record):
    """Everything the registry holds about one agent."""

    id: str
    name: str
    description: str
    version: str
    url: str
    transport: Transport
    interfaces: list[dict[str, Any]] = Field(default_factory=list)
    skills: list[SkillRecord] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    provider: str | None = None
    model: ModelInfo | None = None
    cost: CostHints = Field(default_factory=CostHints)
    status: HealthStatus = HealthStatus.HEALTHY
    last_heartbeat: datetime | None = None
    consecutive_failures: int = 0
    card_url: str | None = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    stats: AgentStats = Field(default_factory=AgentStats)


class AgentVersion(_Record):
    """One version of an agent seen by the registry (the history kept across updates)."""

    version: str
    recorded_at: datetime
    card: dict[str, Any]


class Registration(BaseModel):
    """One agent to register: its card and what the card cannot say (model, cost, schemas, where it lives)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)

    card: AgentCard
    model: ModelInfo | None = None
    cost: CostHints | None = None
    transport: Transport = "a2a"
    skill_schemas: SkillSchemas | None = None
    agent_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@-]+$")
    url: str | None = Field(default=None, max_length=2000)
    card_url: str | None = Field(default=None, max_length=2000)


class CallReport(_Record):
    """One observed call of an agent, as a caller reports it (``Registry.record_calls`` takes many at once)."""

    agent_id: str = Field(min_length=1, max_length=200)
    success: bool
    latency_s: float = Field(ge=0, le=86_400)
    tokens: int = Field(default=0, ge=0, le=10**9)
