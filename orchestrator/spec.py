"""What a client asks the orchestrator to do: a task or a graph of tasks, with constraints, as pydantic models.

Inputs may reference earlier outputs with ``{"$ref": "TASK_ID.output"}`` or ``{"$ref": "TASK_ID.output.a.b"}``
(a dotted path into the producing task's JSON output; list items by index, e.g. ``items.0``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Constraints", "TaskSpec", "GraphSpec", "RunSpec", "Ref", "REF_KEY", "parse_ref", "find_refs", "as_graph"]

REF_KEY = "$ref"
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_REF = re.compile(r"^(?P<task>[A-Za-z0-9][A-Za-z0-9_\-]{0,63})\.output(?:\.(?P<path>[^\s]{1,500}))?$")


class Constraints(BaseModel):
    """Limits on how a task may run: per-attempt deadline, cost ceiling, model size, attempts and backoff."""

    model_config = ConfigDict(extra="forbid")

    deadline_s: float | None = Field(default=None, gt=0, le=86_400, description="per-attempt time limit (s)")
    max_cost: float | None = Field(default=None, ge=0, description="highest per-call cost hint accepted")
    prefer: Literal["smallest", "largest", "best"] = Field(
        default="smallest", description="smallest capable model first (default), largest first, or best score"
    )
    max_parameters: int | None = Field(default=None, gt=0, description="skip agents whose model is larger")
    max_attempts: int = Field(default=3, ge=1, le=20, description="attempts in all, across candidates")
    backoff_s: float = Field(default=0.05, ge=0, le=60, description="base delay before a retry; doubles each time")


class TaskSpec(BaseModel):
    """One unit of work: what capability it needs (skill, tags or free text), its input, its constraints."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="task", description="unique within the graph")
    skill: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=20)
    text: str | None = Field(default=None, max_length=2_000, description="free-text description of the need")
    input: Any = Field(default_factory=dict, description="skill input; may hold {'$ref': 'ID.output.path'}")
    output_schema: dict[str, Any] | None = Field(default=None, description="JSON schema the output must meet")
    constraints: Constraints = Field(default_factory=Constraints)

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        if not _TASK_ID.match(self.id):
            raise ValueError(f"task id {self.id!r} must be 1-64 letters, digits, '_' or '-'")
        if not (self.skill or self.tags or self.text):
            raise ValueError(f"task {self.id!r} must name a skill, tags or a text describing what it needs")
        return self


class GraphSpec(BaseModel):
    """A run: tasks forming a DAG through their ``$ref`` inputs (and optional explicit ``after`` edges)."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[TaskSpec] = Field(min_length=1, max_length=100_000)
    after: dict[str, list[str]] = Field(default_factory=dict, description="extra ordering: task -> tasks first")
    concurrency: int = Field(default=16, ge=1, le=1_000)
    deadline_s: float | None = Field(default=None, gt=0, le=7 * 86_400, description="limit for the whole run")
    name: str = Field(default="", max_length=200)


RunSpec = GraphSpec | TaskSpec


def as_graph(spec: GraphSpec | TaskSpec | dict[str, Any]) -> GraphSpec:
    """A graph for any accepted request: a GraphSpec, a single TaskSpec, or the JSON of either."""
    if isinstance(spec, dict):
        spec = GraphSpec.model_validate(spec) if "tasks" in spec else TaskSpec.model_validate(spec)
    return spec if isinstance(spec, GraphSpec) else GraphSpec(tasks=[spec], concurrency=1)


class Ref(BaseModel):
    """A parsed reference to (part of) an earlier task's output."""

    task: str
    path: list[str]


def parse_ref(value: Any) -> Ref | None:
    """The reference ``value`` stands for, None when it is not one; raises ValueError when malformed."""
    if not (isinstance(value, dict) and REF_KEY in value):
        return None
    target = value[REF_KEY]
    if len(value) != 1 or not isinstance(target, str):
        raise ValueError(f'a reference is {{"$ref": "TASK_ID.output[.path]"}} alone; got {str(value)[:120]}')
    match = _REF.match(target)
    if match is None:
        raise ValueError(f"reference {target!r} must look like 'TASK_ID.output' or 'TASK_ID.output.field.sub'")
    path = match.group("path")
    return Ref(task=match.group("task"), path=path.split(".") if path else [])


def find_refs(value: Any) -> list[Ref]:
    """Every reference inside ``value`` (nested dicts and lists), in document order."""
    ref = parse_ref(value)
    if ref is not None:
        return [ref]
    found: list[Ref] = []
    if isinstance(value, dict):
        for item in value.values():
            found.extend(find_refs(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(find_refs(item))
    return found
