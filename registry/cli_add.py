"""What ``scaleout registry add`` declares beyond an agent card (the model behind it, its skills' input schemas)
and how it reports what it stored."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.models import AgentRecord, ModelInfo, SkillSchemas

__all__ = ["model_option", "skill_schema_options", "check_skills", "stored_summary"]


def stored_summary(record: AgentRecord, verb: str = "registered") -> str:
    """What ``add`` stored: the agent, its model, and each skill with whether it has an input schema."""
    model = record.model.model_dump(exclude_none=True) if record.model else "none (give --model NAME --parameters N)"
    lines = [f"{verb} {record.name} ({record.id}) at {record.url}", f"  model   {model}"]
    for skill in record.skills:
        schema = "input schema" if skill.input_schema else "no input schema (give --skill-schema SKILL=FILE.json)"
        lines.append(f"  skill   {skill.id:<24} {schema}")
    if not record.skills:
        lines.append("  skills  none")
    return "\n".join(lines)


def model_option(args: argparse.Namespace) -> ModelInfo | None:
    """``--model``/``--parameters`` as the ModelInfo to store (None when neither is given)."""
    if args.model is None:
        if args.parameters is not None:
            raise RegistryError("--parameters needs --model NAME (the model's name, e.g. gemma-3-270m)")
        return None
    from pydantic import ValidationError

    from protocol.validation import describe_validation_error

    try:
        return ModelInfo(name=args.model, parameters=args.parameters)
    except ValidationError as exc:
        raise RegistryError(f"invalid --model/--parameters: {describe_validation_error(exc)}") from None


def skill_schema_options(args: argparse.Namespace) -> SkillSchemas:
    """``--skill-schema SKILL=FILE.json`` values as the input schemas to store, each file read and checked."""
    schemas: SkillSchemas = {}
    for value in args.skill_schema or ():
        skill, sep, file = value.partition("=")
        if not sep or not skill or not file:
            raise RegistryError(f"--skill-schema {value!r}: give SKILL=FILE.json, e.g. classify=classify.schema.json")
        path = Path(file).expanduser()
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RegistryError(f"--skill-schema {skill}: cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise RegistryError(f"--skill-schema {skill}: {path} is not valid JSON: {exc}") from None
        if not isinstance(schema, dict):
            raise RegistryError(f'--skill-schema {skill}: {path} must hold a JSON Schema object ({{"type": ...}})')
        schemas[skill] = (schema, None)
    return schemas


def check_skills(card: Any, schemas: dict[str, Any], where: str) -> None:
    """Refuse schemas for skills the card does not have, naming the skills it has."""
    unknown = sorted(set(schemas) - {skill.id for skill in card.skills})
    if unknown:
        known = ", ".join(skill.id for skill in card.skills) or "none"
        raise RegistryError(
            f"--skill-schema names skill(s) {', '.join(unknown)} that {where} lacks; its skills: {known}"
        )
