"""The orchestrator as an MCP server (mcp 2.3 ``MCPServer``): any MCP client can submit and follow runs.

Served at /mcp behind the boundary, which lets in callers holding ``runs:read``; each tool then checks the scope it
needs against the principal of the HTTP request that carried the call (submit_task, submit_graph, answer_task and
approve_task ``runs:submit``, run_status and list_runs ``runs:read``, cancel_run ``runs:cancel``, list_agents
``registry:read``), and sees only the caller's own runs unless it holds ``admin``.

Errors say what was wrong and how to fix it: arguments that fail a tool's schema and refusals (an unknown skill or
run, a bad spec) are tool results with ``isError`` (SEP-1303), naming the field or the thing; an unknown tool is a
JSON-RPC error -32602, as on the agents' /mcp. It serves tools only and advertises nothing else (no prompts or
resources).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from orchestrator.api import caller_owner
from orchestrator.approvals import NotAnApprover
from orchestrator.graph import GraphError
from orchestrator.reads import RunNotFound
from orchestrator.service import Orchestrator, StoreUnavailable
from orchestrator.transports import AgentCallError
from protocol.access import request_principal
from protocol.auth import LOCAL_PRINCIPAL, Principal
from protocol.validation import describe_validation_error, field_errors

__all__ = ["OrchestratorMcpServer", "orchestrator_mcp"]

_MAX_FIELD_ERRORS = 10
# what MCPServer serves besides tools; the orchestrator has none of it, so it neither serves nor advertises it
_NOT_SERVED = (
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
)
_log = logging.getLogger(__name__)


class OrchestratorMcpServer(MCPServer):
    """``MCPServer`` serving tools only, whose errors say what was wrong and how to fix it (see the module doc)."""

    def __init__(self, name: str, instructions: str) -> None:
        super().__init__(name=name, instructions=instructions, subscriptions=False)
        # Capabilities are derived from the low-level server's handlers (mcp 2.x, pinned below 3 in pyproject.toml);
        # tests/mcp/test_orchestrator_mcp.py checks that initialize advertises tools only.
        for method in _NOT_SERVED:
            self._lowlevel_server._request_handlers.pop(method, None)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None) -> Any:
        """Call tool ``name``: an unknown tool is MCP error -32602; every failure is a ``ToolError`` whose text
        names what was wrong and how to fix it (never the bare "Error executing tool ...")."""
        known = [tool.name for tool in await self.list_tools()]
        if name not in known:
            raise MCPError(
                types.INVALID_PARAMS,
                f"unknown tool {name[:200]!r}; this server has: {', '.join(known)} (tools/list gives their schemas)",
            )
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            cause = exc.__cause__ or exc
            _log.error("MCP tool %r failed unexpectedly", name, exc_info=cause)
            raise ToolError(
                f"{name} failed unexpectedly ({type(cause).__name__}); the orchestrator logged the details: "
                "retry, and if it fails again check the orchestrator's log around the time of this call"
            ) from None
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                fields = "; ".join(f"{f}: {m}" for f, m in field_errors(exc.__cause__, _MAX_FIELD_ERRORS))
                raise ToolError(
                    f"invalid arguments for tool {name!r}: {fields}. Fix the arguments to match the tool's "
                    f"inputSchema (tools/list) and call {name!r} again."
                ) from None
            reason = str(exc).removeprefix(f"Error executing tool {name}: ")
            raise ToolError(reason if reason.startswith(name) else f"{name}: {reason}") from None


def orchestrator_mcp(orchestrator: Orchestrator) -> OrchestratorMcpServer:
    """An MCP server with tools submit_task, submit_graph, run_status, cancel_run, answer_task, approve_task,
    list_runs and list_agents."""
    server = OrchestratorMcpServer(
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
        with _refusals(run_id):
            run = await orchestrator.get_run(run_id, attempts=False, owner=owner)
        return _summary(run)

    @server.tool()
    async def cancel_run(run_id: str, ctx: Context) -> dict[str, Any]:
        """Cancel an active run (its tasks are cancelled on the agents)."""
        owner = caller_owner(_caller(ctx, "cancel_run", "runs:cancel"))
        with _refusals(run_id):
            return {"run_id": run_id, "cancelled": await orchestrator.cancel(run_id, owner=owner)}

    @server.tool()
    async def answer_task(run_id: str, task_id: str, answer: Any, ctx: Context) -> dict[str, Any]:
        """Answer the question a task of a run waits on (``answer``: JSON valid against the schema of the run's
        latest task.waiting event for that task)."""
        caller = _caller(ctx, "answer_task", "runs:submit")
        with _refusals(run_id):  # RunNotFound, NotWaiting, InvalidAnswer
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
        with _refusals(run_id):  # RunNotFound, NotAwaitingApproval, a comment too long
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
def _refusals(run_id: str | None = None) -> Iterator[None]:
    """Bad arguments become a tool error with a one-line reason saying how to fix it (anything else stays a
    crash, logged)."""
    try:
        yield
    except ValidationError as exc:
        raise ToolError(f"invalid run request: {describe_validation_error(exc)}; fix those fields") from None
    except RunNotFound:
        shown = repr((run_id or "")[:80])
        raise ToolError(f"no run {shown} that this caller can see; the list_runs tool lists your runs") from None
    except GraphError as exc:
        reason = " ".join(str(exc).split())
        if reason.startswith("no healthy agent serves"):  # an unknown skill, or none of its agents is up
            reason += " (the list_agents tool lists the registered agents and their skills)"
        raise ToolError(reason) from None
    except (ValueError, LookupError, StoreUnavailable) as exc:  # LimitExceeded, NotWaiting, InvalidAnswer, ...
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
