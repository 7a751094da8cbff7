"""Registry records: what the registry knows about an agent, its skills, model, cost and observed behaviour."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from protocol.a2a import AgentCard
from protocol.a2a_v03_card import card_from_v03
from protocol.auth import LOCAL_PRINCIPAL
from protocol.validation import stored_text
from registry.stdio import STDIO_SCHEME, StdioAllowlist

__all__ = [
    "HealthStatus",
    "Transport",
    "ModelInfo",
    "CostHints",
    "SkillStats",
    "AgentStats",
    "SkillRecord",
    "AgentRecord",
    "AgentVersion",
    "CardTrust",
    "KeyEvent",
    "Registration",
    "StdioRegistration",
    "CallReport",
    "MAX_SEARCH_TEXT_BYTES",
    "check_card_columns",
    "LOCAL_OWNER",
]

Transport = Literal["a2a", "mcp", "local"]
SkillSchemas = dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]

MAX_BIGINT = 2**63 - 1
# PostgreSQL refuses a tsvector over 1 MB; the searchable text of one card (name, description, skill ids, names,
# descriptions, examples, tags) stays far enough below it that any text fits, on both databases.
MAX_SEARCH_TEXT_BYTES = 256 * 1024
MAX_SKILLS = 1000
AGENT_ID_PATTERN = r"^[A-Za-z0-9._:@-]+$"
# The owner of records registered by a trusted local caller (no access control), and of rows older than owners.
LOCAL_OWNER = LOCAL_PRINCIPAL.owner

# Strings that reach a column: the column's length, no NUL, one line (descriptions may span lines).
if TYPE_CHECKING:
    AgentId = str
    Name = str
    Quantisation = str
    Url = str
else:
    AgentId = stored_text(200, min_length=1, pattern=AGENT_ID_PATTERN)
    Name = stored_text(200, min_length=1)
    Quantisation = stored_text(50)
    Url = stored_text(2000, min_length=1)


class HealthStatus(StrEnum):
    """Health of an agent as the registry sees it."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelInfo(_Record):
    """The model behind an agent."""

    name: Name
    parameters: int | None = Field(default=None, ge=0, le=MAX_BIGINT)
    quantisation: Quantisation | None = None
    file_size: int | None = Field(default=None, ge=0, le=MAX_BIGINT)


class CostHints(_Record):
    """Declared cost of calling an agent (any currency or unit, used consistently by a deployment)."""

    per_call: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    per_1k_tokens: float = Field(default=0.0, ge=0, allow_inf_nan=False)


class SkillStats(_Record):
    """Behaviour of one skill of an agent observed by callers (reported back through ``record_call``).

    Latency percentiles are nearest-rank over a sliding window of the most recent calls (the registry's
    ``latency_window``, 256 by default), not over all calls ever made.
    """

    calls: int = 0
    successes: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    tokens: int = 0

    @property
    def success_rate(self) -> float | None:
        """Successes over calls, or None before the first call."""
        return self.successes / self.calls if self.calls else None


class AgentStats(SkillStats):
    """Behaviour observed by callers: the agent's totals over all its skills, and per skill in ``skills``.

    ``skills`` holds the skills whose calls named them (``record_call(..., skill=...)``); calls that named no
    skill, or one the agent's card does not declare, count in the totals only.
    """

    skills: dict[str, SkillStats] = Field(default_factory=dict)

    def for_skill(self, skill: str | None) -> SkillStats:
        """The statistics of ``skill`` when it has any calls, else the agent's totals (what the router uses)."""
        own = self.skills.get(skill) if skill is not None else None
        return own if own is not None and own.calls else self


class SkillRecord(_Record):
    """One skill (A2A skill or MCP tool) with its optional JSON schemas."""

    id: str
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None


class CardTrust(_Record):
    """What the registry knows about an agent card's signature: verified on the last fetch or not, by which key
    (id and RFC 7638 SHA-256 fingerprint), and since when the key differs from the one pinned before."""

    verified: bool = False
    kid: str | None = None
    fingerprint: str | None = None
    key_changed_at: datetime | None = Field(
        default=None, description="set when the signing key changed; cleared by accepting the new key"
    )
    error: str | None = Field(default=None, description="why the last signature check failed (not stored)")

    @property
    def trusted(self) -> bool:
        """Verified, and its key is the pinned one (no unaccepted key change)."""
        return self.verified and self.key_changed_at is None


class KeyEvent(_Record):
    """One change of an agent's card-signing key: ``pinned`` (first key), ``rotated``, ``unsigned``
    (a signed agent's card no longer verifies) or ``accepted`` (a rotation accepted by hand)."""

    at: datetime
    kind: Literal["pinned", "rotated", "unsigned", "accepted"]
    old_fingerprint: str | None = None
    new_fingerprint: str | None = None
    kid: str | None = None
    detail: str = ""


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
    owner: str = Field(
        default=LOCAL_OWNER,
        description="who registered it (a principal's tenant, else subject); only they or an admin may change it",
    )
    trust: CardTrust = Field(default_factory=CardTrust, description="the card's signature, as last verified")


class AgentVersion(_Record):
    """One version of an agent seen by the registry (the history kept across updates)."""

    version: str
    recorded_at: datetime
    card: dict[str, Any]


def _fits(field: str, value: str, limit: int, minimum: int = 0, *, lines: bool = False) -> None:
    if not minimum <= len(value) <= limit:
        raise ValueError(f"{field}: must be {minimum} to {limit} characters, got {len(value)}")
    if "\x00" in value:
        raise ValueError(f"{field}: must not contain a NUL character (\\u0000)")
    if not lines and ("\n" in value or "\r" in value):
        raise ValueError(f"{field}: must be one line, without newline or carriage return")


def check_card_columns(card: AgentCard) -> None:
    """Raise ValueError (one line) when a string of ``card`` does not fit the registry column it is stored in.

    Plain Python rather than a pydantic model: it runs once per registration, bulk loads included.
    """
    _fits("name", card.name, 200, 1)
    _fits("description", card.description, 10_000, lines=True)
    _fits("version", card.version, 100, 1)
    if card.provider is not None:
        _fits("provider.organization", card.provider.organization, 200, 1)
    if len(card.skills) > MAX_SKILLS:
        raise ValueError(f"skills: at most {MAX_SKILLS} skills per card, got {len(card.skills)}")
    seen: set[str] = set()
    texts = [card.name, card.description]
    for i, skill in enumerate(card.skills):
        _fits(f"skills.{i}.id", skill.id, 200, 1)
        _fits(f"skills.{i}.name", skill.name, 200, 1)
        _fits(f"skills.{i}.description", skill.description, 10_000, lines=True)
        for j, tag in enumerate(skill.tags):
            _fits(f"skills.{i}.tags.{j}", tag, 200)
        for j, example in enumerate(skill.examples):
            _fits(f"skills.{i}.examples.{j}", example, 10_000, lines=True)
        if skill.id in seen:
            raise ValueError(f"skills.{i}.id: skill ids must be unique within a card; {skill.id[:50]!r} appears twice")
        seen.add(skill.id)
        texts += (skill.id, skill.name, skill.description, *skill.examples, *skill.tags)
    size = len("\n".join(texts).encode("utf-8", "surrogatepass"))
    if size > MAX_SEARCH_TEXT_BYTES:
        raise ValueError(
            f"the card's searchable text (name, description, skills' ids, names, descriptions, examples and "
            f"tags) is {size} bytes, over the limit of {MAX_SEARCH_TEXT_BYTES}; shorten it"
        )


def _non_finite(value: Any) -> bool:
    """True when a JSON-like value holds a NaN or infinite float anywhere (an iterative walk)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


_TARGETS: dict[str, tuple[tuple[str, ...], str]] = {
    "a2a": (("http", "https"), "an http(s):// URL"),
    "mcp": (("mcp+http", "mcp+https"), "an mcp+http(s):// URL"),
    "local": (("local",), "local://<name>"),
}


class Registration(BaseModel):
    """One agent to register: its card and what the card cannot say (model, cost, schemas, where it lives).

    ``url`` (or, without one, the card's first interface) must fit the transport: an http(s) URL for "a2a",
    mcp+http(s):// for "mcp", local://name for "local". A command line (``mcp+stdio:``) is never accepted here:
    only ``StdioRegistration``, which the HTTP API never builds, can carry one.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)
    allows_stdio: ClassVar[bool] = False

    card: AgentCard
    model: ModelInfo | None = None
    cost: CostHints | None = None
    transport: Transport = "a2a"
    skill_schemas: SkillSchemas | None = None
    agent_id: AgentId | None = None
    url: Url | None = Field(default=None, validate_default=True)
    card_url: Url | None = None

    @field_validator("card", mode="before")
    @classmethod
    def _card_of_any_version(cls, card: Any) -> Any:
        return card_from_v03(card) if isinstance(card, dict) else card  # an A2A 0.3 card reads as 1.0

    @field_validator("card")
    @classmethod
    def _card_fits_columns(cls, card: AgentCard) -> AgentCard:
        try:
            check_card_columns(card)
        except ValueError as exc:
            raise PydanticCustomError("card_columns", "{reason}", {"reason": str(exc)}) from None
        return card

    @field_validator("skill_schemas")
    @classmethod
    def _schemas_are_finite(cls, schemas: SkillSchemas | None) -> SkillSchemas | None:
        if _non_finite(schemas):
            raise PydanticCustomError("finite_json", "holds NaN or Infinity, which JSON columns cannot store")
        return schemas

    @field_validator("url")
    @classmethod
    def _url_fits_transport(cls, url: str | None, info: ValidationInfo) -> str | None:
        card, transport = info.data.get("card"), info.data.get("transport")
        if card is None or transport is None:
            return url  # already refused
        target, where = (url, "url") if url is not None else (card.url, "the card's first interface URL")
        if url is None and transport == "local":
            return url  # local://<card name>
        reason = cls.target_error(transport, target)
        if reason is None and url is None and (len(target) > 2000 or any(c in target for c in "\r\n\x00")):
            reason = "must be one line of at most 2000 characters"
        if reason is not None:
            raise PydanticCustomError("agent_target", "{where} {reason}", {"where": where, "reason": reason})
        return url

    @classmethod
    def target_error(cls, transport: str, url: str) -> str | None:
        """Why ``url`` cannot be where an agent of ``transport`` lives, or None when it can."""
        if url.startswith(STDIO_SCHEME):
            if not cls.allows_stdio:
                return (
                    "names a command (mcp+stdio:), which is local configuration and never accepted from the "
                    "network; add it on the host that runs it with 'scaleout registry add-stdio NAME -- COMMAND'"
                )
            if transport != "mcp":
                return f"names a command (mcp+stdio:), which needs transport 'mcp', not {transport!r}"
            try:
                argv = StdioAllowlist.argv(url)
            except ValueError as exc:
                return f"is not a readable command line: {exc}"
            return None if argv else "names no command after mcp+stdio:"
        schemes, form = _TARGETS[transport]
        try:
            parts = urlsplit(url)
            host = parts.netloc if transport == "local" else parts.hostname
        except ValueError as exc:
            return f"is not a valid URL ({exc}); a {transport} agent is reached at {form}"
        if parts.scheme.lower() not in schemes or not host:
            return f"must be {form} for transport {transport!r}, got {url[:100]!r}"
        return None


class StdioRegistration(Registration):
    """A Registration that may name an MCP stdio command (``mcp+stdio:command args``, transport "mcp").

    Only local Python code builds one (``discovery.describe_mcp`` for a stdio target, ``scaleout registry
    add-stdio``); no HTTP route validates a body as this type, so commands never arrive from the network.
    """

    allows_stdio: ClassVar[bool] = True


class CallReport(_Record):
    """One observed call of an agent, as a caller reports it (``Registry.record_calls`` takes many at once)."""

    agent_id: Name
    success: bool
    latency_s: float = Field(ge=0, le=86_400)
    tokens: int = Field(default=0, ge=0, le=10**9)
    skill: Name | None = Field(default=None, description="the skill called; its own statistics are kept too")
