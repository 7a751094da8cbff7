"""The orchestrator as an MCP server (mcp 2.3 ``MCPServer``): any MCP client can submit and follow runs."""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic_core import to_jsonable_python

from orchestrator.service import Orchestrator

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
        return await _submit(orchestrator, spec, wait)

    @server.tool()
    async def submit_graph(graph: dict[str, Any], wait: bool = False) -> dict[str, Any]:
        """Run a task graph ({"tasks": [...]}, inputs may hold {"$ref": "ID.output.path"}); returns the run id."""
        return await _submit(orchestrator, graph, wait)

    @server.tool()
    async def run_status(run_id: str) -> dict[str, Any]:
        """The status, tasks (outputs, errors) and usage of a run."""
        run = await orchestrator.get_run(run_id, attempts=False)
        return _summary(run)

    @server.tool()
    async def cancel_run(run_id: str) -> dict[str, Any]:
        """Cancel an active run (its tasks are cancelled on the agents)."""
        return {"run_id": run_id, "cancelled": await orchestrator.cancel(run_id)}

    @server.tool()
    async def list_runs(status: str | None = None, limit: int = 20) -> dict[str, Any]:
        """The most recent runs, optionally only those with ``status``."""
        runs = await orchestrator.list_runs(status=status, limit=min(limit, 200))
        return {"runs": to_jsonable_python(runs)}

    @server.tool()
    async def list_agents(skill: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Healthy registered agents (optionally only those serving ``skill``) with their skills and models."""
        registry = orchestrator.registry
        records = await anyio.to_thread.run_sync(lambda: registry.search(skill=skill, limit=min(limit, 200)))
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
