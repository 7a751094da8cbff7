"""The orchestrator as an MCP server (mcp 2.3 ``MCPServer``): any MCP client can submit and follow runs.

Served at /mcp behind the boundary, which lets in callers holding ``runs:read``; each tool then checks the scope it
needs against the principal of the HTTP request that carried the call (submit_task, submit_graph, answer_task and
approve_task ``runs:submit``, run_status and list_runs ``runs:read``, cancel_run ``runs:cancel``, list_agents
``registry:read``), and sees only the caller's own runs unless it holds ``admin``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from orchestrator.api import caller_owner
from orchestrator.approvals import NotAnApprover
from orchestrator.service import Orchestrator, StoreUnavailable
from orchestrator.transports import AgentCallError
from protocol.access import request_principal
from protocol.auth import LOCAL_PRINCIPAL, Principal
from protocol.validation import describe_validation_error

__all__ = ["orchestrator_mcp"]


def orchestrator_mcp(orchestrator: Orchestrator) -> MCPServer:
    """An MCP server with tools submit_task, submit_graph, run_status, cancel_run, list_runs, list_agents."""
    server: MCPServer = MCPServer(
        name="scaleout-orchestrator",
        instructions="Submit tasks or task graphs to scaleout's agents and follow the runs.",
    )

    @server.tool()
    async def submit_task(
        skill: str, input: dict[str, Any], ctx: Context, wait: bool = True, deadline_s: float | None = None
    ) -> dict[str, Any]:
        """Run one task needing ``skill`` with ``input``; with wait, return the finished run (else its id)."""
        caller = _caller(ctx, "submit_task", "runs:submit")
        spec: dict[str, Any] = {"skill": skill, "input": input}
        if deadline_s:
            spec["constraints"] = {"deadline_s": deadline_s}
        with _refusals():
            return await _submit(orchestrator, spec, wait, caller)

    @server.tool()
    async def submit_graph(graph: dict[str, Any], ctx: Context, wait: bool = False) -> dict[str, Any]:
        """Run a task graph ({"tasks": [...]}, inputs may hold {"$ref": "ID.output.path"}); returns the run id."""
        caller = _caller(ctx, "submit_graph", "runs:submit")
        with _refusals():
            return await _submit(orchestrator, graph, wait, caller)

    @server.tool()
    async def run_status(run_id: str, ctx: Context) -> dict[str, Any]:
        """The status, tasks (outputs, errors) and usage of a run."""
        owner = caller_owner(_caller(ctx, "run_status", "runs:read"))
        with _refusals():
            run = await orchestrator.get_run(run_id, attempts=False, owner=owner)
        return _summary(run)

    @server.tool()
    async def cancel_run(run_id: str, ctx: Context) -> dict[str, Any]:
        """Cancel an active run (its tasks are cancelled on the agents)."""
        owner = caller_owner(_caller(ctx, "cancel_run", "runs:cancel"))
        with _refusals():
            return {"run_id": run_id, "cancelled": await orchestrator.cancel(run_id, owner=owner)}

    @server.tool()
    async def answer_task(run_id: str, task_id: str, answer: Any, ctx: Context) -> dict[str, Any]:
        """Answer the question a task of a run waits on (``answer``: JSON valid against the schema of the run's
        latest task.waiting event for that task)."""
        caller = _caller(ctx, "answer_task", "runs:submit")
        with _refusals():  # RunNotFound, NotWaiting, InvalidAnswer
            try:
                return await orchestrator.answer(run_id, task_id, answer, by=caller.owner, owner=caller_owner(caller))
            except AgentCallError as exc:
                raise ToolError(f"the agent could not be given the answer: {exc}"[:1000]) from None

    @server.tool()
    async def approve_task(
        run_id: str, task_id: str, ctx: Context, approve: bool = True, comment: str = ""
    ) -> dict[str, Any]:
        """Approve (or, with approve false, reject) the output a task holds for approval (its
        task.approval_requested event); a rejection fails that attempt with the comment as its reason."""
        caller = _caller(ctx, "approve_task", "runs:submit")
        with _refusals():  # RunNotFound, NotAwaitingApproval, a comment too long
            try:
                return await orchestrator.approve(
                    run_id, task_id, approve, comment, principal=caller, owner=caller_owner(caller)
                )
            except NotAnApprover as exc:
                raise ToolError(str(exc)) from None

    @server.tool()
    async def list_runs(ctx: Context, status: str | None = None, limit: int = 20) -> dict[str, Any]:
        """The most recent runs (``limit`` 1-500), optionally only those with ``status`` (pending, running,
        succeeded, failed or cancelled)."""
        owner = caller_owner(_caller(ctx, "list_runs", "runs:read"))
        with _refusals():  # validates status and limit
            runs = await orchestrator.list_runs(status=status, limit=limit, owner=owner)
        return {"runs": to_jsonable_python(runs)}

    @server.tool()
    async def list_agents(ctx: Context, skill: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Healthy registered agents (optionally only those serving ``skill``) with their skills and models."""
        _caller(ctx, "list_agents", "registry:read")
        if skill is not None and (len(skill) > 200 or any(c in skill for c in "\x00\r\n")):
            raise ToolError("skill must be one line of at most 200 characters with no NUL")
        if isinstance(limit, bool) or not 1 <= limit <= 200:
            raise ToolError(f"limit must be an integer from 1 to 200, not {limit!r}")
        registry = orchestrator.registry
        with _refusals():
            records = await anyio.to_thread.run_sync(lambda: registry.search(skill=skill, limit=limit))
        return {
            "agents": [
                {
                    "id": r.id,
                    "name": r.name,
                    "url": r.url,
                    "transport": r.transport,
                    "skills": [s.id for s in r.skills],
                    "parameters": r.model.parameters if r.model else None,
                }
                for r in records
            ]
        }

    return server


def _caller(ctx: Context, tool: str, scope: str) -> Principal:
    """The principal of the HTTP request carrying this call (``LOCAL_PRINCIPAL`` in process, where no boundary
    stands in front); a ToolError unless it holds ``scope``."""
    try:
        request = ctx.request_context.request
    except ValueError:  # no request context: called in process
        request = None
    principal = request_principal(request) if request is not None and hasattr(request, "scope") else LOCAL_PRINCIPAL
    if not principal.has(scope):
        raise ToolError(f"{tool} needs the scope {scope!r}, which the caller's token does not hold")
    return principal


@contextmanager
def _refusals() -> Iterator[None]:
    """Bad arguments become a tool error with a one-line reason (anything else stays a crash, logged)."""
    try:
        yield
    except ValidationError as exc:
        raise ToolError(f"invalid run request: {describe_validation_error(exc)}") from None
    except (ValueError, LookupError, StoreUnavailable) as exc:  # GraphError, LimitExceeded, RunNotFound, ...
        raise ToolError(" ".join(str(exc).split())) from None


async def _submit(orchestrator: Orchestrator, spec: dict[str, Any], wait: bool, caller: Principal) -> dict[str, Any]:
    run_id = await orchestrator.submit(spec, owner=caller.owner)
    if not wait:
        return {"run_id": run_id, "status": "pending"}
    return _summary(await orchestrator.wait(run_id, owner=caller_owner(caller)))


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    tasks = {t["task_id"]: {"status": t["status"], "output": t["output"], "error": t["error"]} for t in run["tasks"]}
    return to_jsonable_python(
        {"run_id": run["id"], "status": run["status"], "error": run["error"], "usage": run["usage"], "tasks": tasks}
    )
