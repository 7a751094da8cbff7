"""The orchestrator HTTP API as an OpenAPI 3.1 document (``GET /openapi.json``).

``python -m orchestrator.openapi --markdown`` writes docs/api/orchestrator.md and docs/api/registry.md from the
two documents (``orchestrator.api_docs``; a test checks the committed pages are up to date); without
``--markdown`` it prints the JSON.
"""

from __future__ import annotations

import functools
import sys
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.limits import RUN_STATUSES as _RUN_STATUSES
from orchestrator.spec import GraphSpec, TaskSpec
from registry.models import AgentRecord
from registry.openapi import ErrorBody, Operation, Param, Reply, build_document

__all__ = [
    "orchestrator_operations",
    "orchestrator_document",
    "ORCHESTRATOR_SCOPES",
    "main",
    "RunRecord",
    "RunSummary",
    "TaskRecord",
    "AttemptRecord",
    "RunEvent",
    "Usage",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # records may carry more fields than documented here


class Usage(_Open):
    """What a run (or task) used, summed over its attempts."""

    prompt_tokens: float = 0
    completion_tokens: float = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    energy_joules: float = 0.0
    attempts: float = 0


class RunSummary(_Open):
    """A run as listed: id, kind, name, status, error and times."""

    id: str
    kind: str = Field(default="graph", description="graph (a task graph) or negotiation")
    name: str
    status: str = Field(description="one of " + ", ".join(_RUN_STATUSES))
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    owner: str | None = Field(description="the principal's owner (tenant, else subject) that submitted it")


class RunList(BaseModel):
    """A page of runs, newest first."""

    runs: list[RunSummary]


class TaskRecord(_Open):
    """One task of a run: status, the agent that served it, input, output or error, routing explanation."""

    run_id: str
    task_id: str
    status: str
    agent_id: str | None
    input: Any = None
    output: Any = None
    error: str | None
    attempts: int
    routing: dict[str, Any] | None = Field(description="why candidates were ranked or excluded (Routing.explain)")
    usage: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None


class AttemptRecord(_Open):
    """One call of an agent for a task: request, response, error, tokens, seconds and energy."""

    id: str
    run_id: str
    task_id: str
    number: int
    agent_id: str
    agent_url: str
    transport: str
    skill: str
    status: str
    request: Any = None
    response: Any = None
    remote_task_id: str | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    wall_seconds: float
    cpu_seconds: float
    energy_joules: float
    started_at: datetime
    finished_at: datetime | None


class RunRecord(_Open):
    """A run's stored record: its spec, status, usage, tasks and attempts (a negotiation: no tasks, its outcome
    in ``output`` and its steps as events)."""

    id: str
    kind: str = Field(default="graph", description="graph (a task graph) or negotiation")
    output: Any = Field(default=None, description="a negotiation's outcome (the negotiation.ended event's data)")
    name: str
    status: str
    spec: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    usage: Usage | None
    owner: str | None
    tasks: list[TaskRecord]
    attempts: list[AttemptRecord] = Field(default_factory=list)


class RunEvent(BaseModel):
    """The JSON ``data`` of one SSE frame (``id:`` is ``seq``, ``event:`` is ``kind``)."""

    seq: int = Field(description="1, 2, ... within the run; resume after it with Last-Event-ID or ?after=")
    kind: str = Field(description="run.created, task.routed, attempt.started, task.succeeded, run.succeeded, ...")
    task_id: str | None
    data: dict[str, Any]
    at: datetime


class Submitted(BaseModel):
    """The run was accepted: its id and where to follow it."""

    id: str
    status: str
    url: str
    events: str


class Cancelled(BaseModel):
    """Whether the run was cancelled now (false: it had already ended)."""

    cancelled: bool


class AnswerBody(BaseModel):
    """The answer to a task's question: JSON valid against the schema in its ``task.waiting`` event."""

    input: Any


class Answered(BaseModel):
    """The agent has the answer; the run's events show ``task.answered`` once its task goes on."""

    run_id: str
    task_id: str
    accepted: bool
    by: str


class ApprovalBody(BaseModel):
    """A decision on the output a task holds for approval (its ``task.approval_requested`` event)."""

    approve: bool
    comment: str = Field(default="", max_length=2_000)


class Decided(BaseModel):
    """The decision is taken; the run's events show ``task.approved`` or ``task.rejected``."""

    run_id: str
    task_id: str
    approved: bool
    by: str
    at: str


class AgentList(BaseModel):
    """Every agent the registry knows, with skills, health and observed statistics per skill."""

    agents: list[AgentRecord]


class OrchestratorHealth(BaseModel):
    """This replica is up; whether its run database answers."""

    status: str = Field(description="ok, or degraded while the database is unavailable")
    replica: str
    active_runs: int
    database: str


class ResourceMetadata(BaseModel):
    """RFC 9728 protected-resource metadata."""

    resource: str
    resource_name: str
    scopes_supported: list[str]
    bearer_methods_supported: list[str]


ORCHESTRATOR_SCOPES = {
    "runs:submit": "start runs",
    "runs:read": "list, show and follow one's own runs (and use /mcp)",
    "runs:cancel": "cancel one's own runs",
    "registry:read": "list the agents the registry knows",
    "admin": "see and cancel every principal's runs",
}


def _sse_description() -> str:
    return (
        "Server-sent events: one frame per event, `id: SEQ`, `event: KIND`, `data: RunEvent JSON`; the stream ends "
        "after the run's last event. Resume with the `Last-Event-ID` header or `?after=N`."
    )


def _negotiation_spec() -> Any:
    from orchestrator.negotiation.spec import NegotiationSpec

    return NegotiationSpec


def orchestrator_operations() -> list[Operation]:
    """Every route of the orchestrator API (console and MCP included), documented."""
    from orchestrator.api import RESOURCE_METADATA_PATH

    not_found = Reply(404, "no such run (or another owner's)", ErrorBody)
    unavailable = Reply(503, "the run database is unavailable; retry after Retry-After seconds", ErrorBody)
    bad_query = Reply(400, "a query parameter is out of range or unknown", ErrorBody)
    runs, meta = "runs", "meta"
    operations = [
        Operation(
            "POST",
            "/runs",
            "Start a run: a task graph, or one task",
            runs,
            (
                Reply(202, "accepted; follow it at events", Submitted),
                Reply(400, "invalid request, graph (cycle, unknown reference) or no agent for a skill", ErrorBody),
                Reply(413, "too many tasks or too large an input", ErrorBody),
                Reply(429, "too many runs active and queued", ErrorBody),
                unavailable,
            ),
            body=GraphSpec | TaskSpec,
        ),
        Operation(
            "POST",
            "/negotiations",
            "Start a negotiation (alternating offers, contract net or auction) between registered agents, as a run",
            "negotiations",
            (
                Reply(202, "accepted; its steps are the run's negotiation.* events", Submitted),
                Reply(
                    400,
                    "invalid spec (InvalidRequest) or a party not registered, healthy or able (InvalidParty)",
                    ErrorBody,
                ),
                Reply(429, "too many runs active", ErrorBody),
                unavailable,
            ),
            body=_negotiation_spec(),
            description="Follow it with GET /runs/{id} (kind negotiation, output: the outcome) and "
            "GET /runs/{id}/events: negotiation.started, negotiation.offer, negotiation.bid, negotiation.award, "
            "negotiation.ended (docs/negotiation.md).",
        ),
        Operation(
            "GET",
            "/runs",
            "The caller's runs, newest first",
            runs,
            (Reply(200, "a page of runs", RunList), bad_query, unavailable),
            params=(
                Param("status", {"enum": list(_RUN_STATUSES)}, "only runs with this status"),
                Param("kind", {"enum": ["graph", "negotiation"]}, "only task-graph runs, or only negotiations"),
                Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
                Param("offset", {"type": "integer", "minimum": 0, "default": 0}),
            ),
        ),
        Operation(
            "GET",
            "/runs/{run_id}",
            "One run: status, usage, tasks with routing, input, output and error, and attempts",
            runs,
            (Reply(200, "the run's record", RunRecord), not_found, unavailable),
        ),
        Operation(
            "GET",
            "/runs/{run_id}/events",
            "The run's events, live (SSE), until it ends",
            runs,
            (Reply(200, _sse_description(), RunEvent, media="text/event-stream"), bad_query, not_found, unavailable),
            params=(
                Param("after", {"type": "integer", "minimum": 0, "default": 0}, "events with seq greater than this"),
                Param("Last-Event-ID", {"type": "integer", "minimum": 0}, "as after; wins over it", where="header"),
            ),
        ),
        Operation(
            "POST",
            "/runs/{run_id}/cancel",
            "Cancel a run and its tasks on the agents",
            runs,
            (Reply(200, "cancelled, or false when it had already ended", Cancelled), not_found, unavailable),
        ),
        Operation(
            "POST",
            "/runs/{run_id}/tasks/{task_id}/input",
            "Answer the question a task waits on (its agent's task is input-required)",
            runs,
            (
                Reply(202, "the agent has the answer", Answered),
                Reply(400, "the body is not {input: ...} (InvalidRequest)", ErrorBody),
                not_found,
                Reply(409, "the task does not wait for input (NotWaiting)", ErrorBody),
                Reply(422, "the answer fails the question's schema; the task keeps waiting (InvalidAnswer)", ErrorBody),
                Reply(502, "the agent could not be given the answer (AgentCallFailed)", ErrorBody),
                unavailable,
            ),
            body=AnswerBody,
            description="The question, its JSON schema and who answered what and when are the run's task.waiting "
            "and task.answered events (docs/humans.md).",
        ),
        Operation(
            "POST",
            "/runs/{run_id}/tasks/{task_id}/approval",
            "Approve or reject the output a task holds for approval (its approval gate)",
            runs,
            (
                Reply(200, "the decision is taken", Decided),
                Reply(400, "the body is not {approve: bool, comment: str} (InvalidRequest)", ErrorBody),
                Reply(403, "the caller is not among the gate's by and lacks admin (NotAnApprover)", ErrorBody),
                not_found,
                Reply(409, "the task holds no output for approval here now (NotAwaitingApproval)", ErrorBody),
                unavailable,
            ),
            body=ApprovalBody,
            description="Approved: the task succeeds with the output and its dependents run. Rejected: the attempt "
            "fails with the comment as its reason and the next attempt is tried. The held output and who decided "
            "what and when are the run's task.approval_requested and task.approved/task.rejected events "
            "(docs/humans.md).",
        ),
        Operation(
            "GET",
            "/agents",
            "The agents the registry knows: skills, health, observed success and latency per skill",
            "registry",
            (Reply(200, "every agent", AgentList),),
        ),
        Operation("GET", "/health", "This replica's health", meta, (Reply(200, "up", OrchestratorHealth),)),
        Operation(
            "GET",
            RESOURCE_METADATA_PATH,
            "RFC 9728 protected-resource metadata of this API",
            meta,
            (Reply(200, "the metadata", ResourceMetadata),),
        ),
        Operation(
            "GET",
            RESOURCE_METADATA_PATH + "/mcp",
            "RFC 9728 protected-resource metadata of the MCP server at /mcp",
            meta,
            (Reply(200, "the metadata", ResourceMetadata),),
        ),
        Operation(
            "*",
            "/mcp",
            "The orchestrator's MCP server (Streamable HTTP): submit_task, submit_graph, run_status, cancel_run, "
            "list_runs, list_agents",
            "mcp",
            (Reply(200, "MCP JSON-RPC over Streamable HTTP (JSON or SSE)"),),
            description="Each tool checks its own scope (runs:submit, runs:read, runs:cancel, registry:read).",
        ),
        Operation(
            "GET", "/openapi.json", "This document", meta, (Reply(200, "the OpenAPI 3.1 document", dict[str, Any]),)
        ),
        Operation(
            "GET",
            "/ui",
            "The web console (static page; its data calls use this API with the user's token)",
            "console",
            (Reply(200, "the console's HTML page", media="text/html"),),
        ),
        Operation(
            "GET",
            "/ui/{path:path}",
            "The web console's static assets (JavaScript, CSS)",
            "console",
            (
                Reply(
                    200,
                    "the asset; a path without a file suffix (a deep link) gets the console page",
                    media="text/plain",
                ),
                Reply(404, "no such asset", ErrorBody),
            ),
        ),
    ]
    return operations


@functools.cache
def orchestrator_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the orchestrator HTTP API (built once; do not change the dict)."""
    from orchestrator.api import ACCESS_RULES

    return build_document(
        title="scaleout orchestrator",
        version="1",
        description="Routes tasks to agents, runs task graphs and negotiations, records every run: submit, list, "
        "show, follow (SSE) and cancel runs; the registry's agents; the web console at /ui; MCP at /mcp.",
        operations=orchestrator_operations(),
        rules=ACCESS_RULES,
        scopes=ORCHESTRATOR_SCOPES,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestrator.openapi [--markdown [--out DIR]] [--registry]`` (see ``orchestrator.api_docs``)."""
    from orchestrator.api_docs import main as api_docs_main

    return api_docs_main(argv)


if __name__ == "__main__":
    sys.exit(main())
