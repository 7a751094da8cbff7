"""What a client asks the orchestrator to do: a task or a graph of tasks, with constraints, as pydantic models.

Inputs may reference earlier outputs with ``{"$ref": "TASK_ID.output"}`` or ``{"$ref": "TASK_ID.output.a.b"}``
(a dotted path into the producing task's JSON output; list items by index, e.g. ``items.0``).

A task may hold its output for a person's approval before its dependents run: ``"approve": {"when": {"path":
"total", "op": ">", "value": 10000}, "by": ["user:ana"]}`` (``when`` null: always; see orchestrator/approvals.py).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from protocol.validation import stored_text

__all__ = [
    "Approval",
    "Condition",
    "Constraints",
    "TaskSpec",
    "GraphSpec",
    "RunSpec",
    "Ref",
    "REF_KEY",
    "parse_ref",
    "find_refs",
    "as_graph",
]

REF_KEY = "$ref"
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")  # always fullmatch: '$' would let "a\n" through
_REF = re.compile(r"(?P<task>[A-Za-z0-9][A-Za-z0-9_\-]{0,63})\.output(?:\.(?P<path>[^\s]{1,500}))?")


def _finite_json(value: Any) -> Any:
    """``value`` unchanged; refuses NaN and infinities anywhere inside (JSON has none; PostgreSQL's json refuses
    them while SQLite would store them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or Infinity (they are not JSON numbers)")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


# Every string that reaches a column fits it: length, no NUL, one line (protocol.validation.stored_text).
if TYPE_CHECKING:
    TaskId = str
    Name = str
    Skill = str
    Tag = str
    Text = str
else:
    TaskId = stored_text(64, min_length=1)
    Name = stored_text(200)
    Skill = stored_text(200)
    Tag = stored_text(200, min_length=1)
    Text = stored_text(2_000, single_line=False)


class Constraints(BaseModel):
    """Limits on how a task may run: per-attempt deadline, cost ceiling, model size, attempts and backoff."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    deadline_s: float | None = Field(default=None, gt=0, le=86_400, description="per-attempt time limit (s)")
    max_cost: float | None = Field(default=None, ge=0, description="highest per-call cost hint accepted")
    prefer: Literal["smallest", "largest", "best"] = Field(
        default="smallest", description="smallest capable model first (default), largest first, or best score"
    )
    max_parameters: int | None = Field(default=None, gt=0, description="skip agents whose model is larger")
    max_attempts: int = Field(default=3, ge=1, le=20, description="attempts in all, across candidates")
    backoff_s: float = Field(default=0.05, ge=0, le=60, description="base delay before a retry; doubles each time")
    max_backoff_s: float = Field(
        default=30.0, ge=0, le=3_600, description="longest delay before a retry (the doubling stops there)"
    )

    @model_validator(mode="after")
    def _backoff_cap(self) -> Constraints:
        if "max_backoff_s" in self.model_fields_set and self.max_backoff_s < self.backoff_s:
            raise ValueError(
                f"max_backoff_s ({self.max_backoff_s}) is below backoff_s ({self.backoff_s}); the cap must be at "
                "least the first delay"
            )
        return self

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1: before the second attempt): ``backoff_s`` doubled
        each time, at most ``max_backoff_s``."""
        return min(self.backoff_s * 2 ** max(0, retry - 1), self.max_backoff_s)


Operator = Literal[">", ">=", "<", "<=", "==", "!="]


class Condition(BaseModel):
    """When a task's output needs approval: the value at ``path`` (dotted, as in a ``$ref``; empty: the whole
    output) compared with ``value`` by ``op``. No code is evaluated; a missing path or values that do not compare
    (a number against a string) count as holding: when in doubt, a person decides."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    path: Annotated[str, Field(max_length=500, pattern=r"^[^\s]*$")] = Field(
        default="", description="dotted path into the output, e.g. 'total' or 'lines.0.price'; '' the whole output"
    )
    op: Operator = Field(description="one of > >= < <= == !=")
    value: Annotated[str | int | float | bool | None, AfterValidator(_finite_json)] = Field(
        description="what the value at path is compared with (a JSON scalar)"
    )


if TYPE_CHECKING:
    Approver = str
else:
    Approver = stored_text(200, min_length=1)


class Approval(BaseModel):
    """A gate on a task's output: when ``when`` holds (null: always), the output waits for approval by one of
    ``by`` (a principal's subject, ``user:SUBJECT``, tenant or ``tenant:NAME``; empty: whoever may see the run);
    a caller holding ``admin`` may always decide."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    when: Condition | None = Field(default=None, description="condition on the output; null: always ask")
    by: list[Approver] = Field(default_factory=list, max_length=50, description="who may approve or reject")


class TaskSpec(BaseModel):
    """One unit of work: what capability it needs (skill, tags or free text), its input, its constraints."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: TaskId = Field(default="task", description="unique within the graph; 1-64 letters, digits, '_' or '-'")
    skill: Skill | None = Field(default=None)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    text: Text | None = Field(default=None, description="free-text description of the need")
    input: Annotated[Any, AfterValidator(_finite_json)] = Field(
        default_factory=dict, description="skill input; may hold {'$ref': 'ID.output.path'}"
    )
    output_schema: Annotated[dict[str, Any] | None, AfterValidator(_finite_json)] = Field(
        default=None, description="JSON schema the output must meet"
    )
    constraints: Constraints = Field(default_factory=Constraints)
    approve: Approval | None = Field(
        default=None, description="hold the output for a person's approval before dependents run"
    )

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        if not _TASK_ID.fullmatch(self.id):
            raise ValueError(f"task id {self.id!r} must be 1-64 letters, digits, '_' or '-'")
        if not (self.skill or self.tags or self.text):
            raise ValueError(f"task {self.id!r} must name a skill, tags or a text describing what it needs")
        return self


class GraphSpec(BaseModel):
    """A run: tasks forming a DAG through their ``$ref`` inputs (and optional explicit ``after`` edges)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tasks: list[TaskSpec] = Field(min_length=1, max_length=1_000_000, description="at most RunLimits.max_tasks")
    after: dict[TaskId, list[TaskId]] = Field(default_factory=dict, description="extra ordering: task -> tasks first")
    concurrency: int = Field(default=16, ge=1, le=10_000, description="at most RunLimits.max_concurrency")
    deadline_s: float | None = Field(default=None, gt=0, le=7 * 86_400, description="limit for the whole run")
    name: Name = Field(default="", description="up to 200 characters, one line")


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
    match = _REF.fullmatch(target)
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
