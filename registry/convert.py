"""Conversions between registrations, table rows and AgentRecord (no I/O)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from registry.errors import CardValidationError
from registry.models import (
    LOCAL_OWNER,
    AgentRecord,
    AgentStats,
    CostHints,
    HealthStatus,
    ModelInfo,
    Registration,
    SkillRecord,
)

__all__ = ["Prepared", "prepare", "default_agent_id", "to_record", "to_skill", "utc", "now"]

_ID_NAMESPACE = uuid.UUID("6f1d1c2e-5b8e-4c55-9a53-0c0de5ca1e00")


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite gives back naive ones)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def default_agent_id(name: str) -> str:
    """The id an agent gets when none is given: stable for its name, on every machine."""
    return str(uuid.uuid5(_ID_NAMESPACE, name))


@dataclass
class Prepared:
    """A registration turned into table rows (the agent row lacks status/stat columns and ``pk``)."""

    name: str
    agent_id: str | None
    version: str
    card: dict[str, Any]
    agent: dict[str, Any]
    skills: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    has_model: bool = False
    has_cost: bool = False


def prepare(reg: Registration) -> Prepared:
    """Rows for one registration (the card's skills, the schemas given for them, the derived search text)."""
    card = reg.card
    schemas = reg.skill_schemas or {}
    unknown = set(schemas) - {s.id for s in card.skills}
    if unknown:
        raise CardValidationError(
            f"skill_schemas names skills the card of {card.name!r} does not have: {sorted(unknown)}"
        )
    if reg.transport == "local":
        url = reg.url or f"local://{card.name}"
    else:
        url = reg.url or card.url
    card_json = card.wire()
    skill_rows: list[dict[str, Any]] = []
    text_parts: list[str] = []
    tags: dict[str, str] = {}
    for position, skill in enumerate(card.skills):
        in_schema, out_schema = schemas.get(skill.id, (None, None))
        skill_rows.append(
            {
                "position": position,
                "skill_id": skill.id,
                "name": skill.name,
                "description": skill.description,
                "tags": list(skill.tags),
                "examples": list(skill.examples),
                "input_schema": in_schema,
                "output_schema": out_schema,
            }
        )
        text_parts += [skill.id.replace("_", " "), skill.name, skill.description, *skill.examples, *skill.tags]
        for tag in skill.tags:
            tags.setdefault(tag.strip().lower()[:200], tag)
    tags.pop("", None)
    content = {
        "card": card_json,
        "url": url,
        "transport": reg.transport,
        "schemas": {k: list(v) for k, v in sorted(schemas.items())},
    }
    agent: dict[str, Any] = {
        "name": card.name,
        "description": card.description,
        "version": card.version,
        "url": url,
        "transport": reg.transport,
        "card_url": reg.card_url,
        "interfaces": [i.wire() for i in card.supported_interfaces],
        "tags": list(dict.fromkeys(tags.values())),
        "provider": card.provider.organization if card.provider else None,
        "card": card_json,
        "card_hash": hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest(),
        "skills_text": "\n".join(p for p in text_parts if p),
    }
    if reg.model is not None:
        agent |= {
            "model_name": reg.model.name,
            "model_parameters": reg.model.parameters,
            "model_quantisation": reg.model.quantisation,
            "model_file_size": reg.model.file_size,
        }
    if reg.cost is not None:
        agent |= {"cost_per_call": reg.cost.per_call, "cost_per_1k_tokens": reg.cost.per_1k_tokens}
    return Prepared(
        name=card.name,
        agent_id=reg.agent_id,
        version=card.version,
        card=card_json,
        agent=agent,
        skills=skill_rows,
        tags=sorted(tags),
        has_model=reg.model is not None,
        has_cost=reg.cost is not None,
    )


def to_skill(row: Row[Any]) -> SkillRecord:
    """A SkillRecord from a registry_skills row."""
    return SkillRecord(
        id=row.skill_id,
        name=row.name,
        description=row.description,
        tags=row.tags or [],
        examples=row.examples or [],
        input_schema=row.input_schema,
        output_schema=row.output_schema,
    )


def to_record(row: Row[Any], skills: list[SkillRecord]) -> AgentRecord:
    """An AgentRecord from a registry_agents row and its skills."""
    # rows were validated on the way in: construct, so an old row never fails a newer, stricter check
    model = (
        ModelInfo.model_construct(
            name=row.model_name,
            parameters=row.model_parameters,
            quantisation=row.model_quantisation,
            file_size=row.model_file_size,
        )
        if row.model_name
        else None
    )
    return AgentRecord(
        id=row.id,
        name=row.name,
        description=row.description,
        version=row.version,
        url=row.url,
        transport=row.transport,
        interfaces=row.interfaces or [],
        skills=skills,
        tags=row.tags or [],
        provider=row.provider,
        model=model,
        cost=CostHints.model_construct(per_call=row.cost_per_call, per_1k_tokens=row.cost_per_1k_tokens),
        status=HealthStatus(row.status),
        last_heartbeat=utc(row.last_heartbeat),
        consecutive_failures=row.consecutive_failures,
        card_url=row.card_url,
        registered_at=utc(row.registered_at),
        updated_at=utc(row.updated_at),
        stats=AgentStats(
            calls=row.calls,
            successes=row.successes,
            latency_p50_ms=row.latency_p50_ms,
            latency_p95_ms=row.latency_p95_ms,
            tokens=row.tokens,
        ),
        owner=row.owner or LOCAL_OWNER,
    )
