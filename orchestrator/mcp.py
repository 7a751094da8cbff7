"""The orchestrator as an MCP server (mcp 2.3 ``MCPServer``): any MCP client can submit and follow runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from orchestrator.service import Orchestrator
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
        skill: str, input: dict[str, Any], wait: bool = True, deadline_s: float | None = None
    ) -> dict[str, Any]:
        """Run one task needing ``skill`` with ``input``; with wait, return the finished run (else its id)."""
        spec: dict[str, Any] = {"skill": skill, "input": input}
        if deadline_s:
            spec["constraints"] = {"deadline_s": deadline_s}
        with _refusals():
            return await _submit(orchestrator, spec, wait)

    @server.tool()
    async def submit_graph(graph: dict[str, Any], wait: bool = False) -> dict[str, Any]:
        """Run a task graph ({"tasks": [...]}, inputs may hold {"$ref": "ID.output.path"}); returns the run id."""
        with _refusals():
            return await _submit(orchestrator, graph, wait)

    @server.tool()
    async def run_status(run_id: str) -> dict[str, Any]:
        """The status, tasks (outputs, errors) and usage of a run."""
        with _refusals():
            run = await orchestrator.get_run(run_id, attempts=False)
        return _summary(run)

    @server.tool()
    async def cancel_run(run_id: str) -> dict[str, Any]:
        """Cancel an active run (its tasks are cancelled on the agents)."""
        with _refusals():
            return {"run_id": run_id, "cancelled": await orchestrator.cancel(run_id)}

    @server.tool()
    async def list_runs(status: str | None = None, limit: int = 20) -> dict[str, Any]:
        """The most recent runs (``limit`` 1-500), optionally only those with ``status`` (pending, running,
        succeeded, failed or cancelled)."""
        with _refusals():
            runs = await orchestrator.list_runs(status=status, limit=limit)  # validates status and limit
        return {"runs": to_jsonable_python(runs)}

    @server.tool()
    async def list_agents(skill: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Healthy registered agents (optionally only those serving ``skill``) with their skills and models."""
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


@contextmanager
def _refusals() -> Iterator[None]:
    """Bad arguments become a tool error with a one-line reason (anything else stays a crash, logged)."""
    try:
        yield
    except ValidationError as exc:
        raise ToolError(f"invalid run request: {describe_validation_error(exc)}") from None
    except (ValueError, LookupError) as exc:  # GraphError, LimitExceeded, InvalidQuery, RunNotFound
        raise ToolError(" ".join(str(exc).split())) from None


async def _submit(orchestrator: Orchestrator, spec: dict[str, Any], wait: bool) -> dict[str, Any]:
    run_id = await orchestrator.submit(spec)
    if not wait:
        return {"run_id": run_id, "status": "pending"}
    return _summary(await orchestrator.wait(run_id))


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    tasks = {t["task_id"]: {"status": t["status"], "output": t["output"], "error": t["error"]} for t in run["tasks"]}
    return to_jsonable_python(
        {"run_id": run["id"], "status": run["status"], "error": run["error"], "usage": run["usage"], "tasks": tasks}
    )
