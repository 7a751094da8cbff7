"""HTTP API of the orchestrator (Starlette), with SSE events and the orchestrator's own MCP server at /mcp.

POST /runs (a graph or a single task) -> 202 {"id", "status"}; GET /runs; GET /runs/{id};
GET /runs/{id}/events (SSE; resume with the Last-Event-ID header or ?after=N); POST /runs/{id}/cancel;
GET /agents (what the registry knows); GET /health.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from orchestrator.graph import GraphError
from orchestrator.service import Orchestrator, RunNotFound
from protocol.validation import describe_validation_error

__all__ = ["create_app", "MAX_BODY_BYTES", "jsonable"]

MAX_BODY_BYTES = 10_000_000


def jsonable(value: Any) -> Any:
    """``value`` with datetimes and other non-JSON types turned into JSON-ready values."""
    return to_jsonable_python(value)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Api:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orch = orchestrator

    async def submit(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"request body over {MAX_BODY_BYTES} bytes; split the graph")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(payload, dict):
            return _error(400, 'send a JSON object: a task {"skill": ..., "input": ...} or a graph {"tasks": [...]}')
        try:
            run_id = await self.orch.submit(payload)
        except ValidationError as exc:
            return _error(400, f"invalid run request: {describe_validation_error(exc)}")
        except GraphError as exc:
            return _error(400, str(exc))
        except OverflowError as exc:
            return _error(429, str(exc))
        return JSONResponse(
            {"id": run_id, "status": "pending", "url": f"/runs/{run_id}", "events": f"/runs/{run_id}/events"},
            status_code=202,
        )

    async def list_runs(self, request: Request) -> Response:
        try:
            limit = min(int(request.query_params.get("limit", 50)), 500)
            offset = max(int(request.query_params.get("offset", 0)), 0)
        except ValueError:
            return _error(400, "limit and offset must be integers")
        runs = await self.orch.list_runs(status=request.query_params.get("status"), limit=limit, offset=offset)
        return JSONResponse(jsonable({"runs": runs}))

    async def get_run(self, request: Request) -> Response:
        try:
            run = await self.orch.get_run(request.path_params["run_id"])
        except RunNotFound as exc:
            return _error(404, str(exc))
        return JSONResponse(jsonable(run))

    async def cancel(self, request: Request) -> Response:
        try:
            cancelled = await self.orch.cancel(request.path_params["run_id"])
        except RunNotFound as exc:
            return _error(404, str(exc))
        return JSONResponse({"cancelled": cancelled})

    async def events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        try:
            after = int(raw)
        except ValueError:
            return _error(400, f"Last-Event-ID must be an event number, not {raw[:40]!r}")
        stream = self.orch.events(run_id, after)
        try:
            first = await anext(stream)
        except RunNotFound as exc:
            return _error(404, str(exc))
        except StopAsyncIteration:
            first = None
        return StreamingResponse(
            _sse(first, stream),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def agents(self, request: Request) -> Response:
        lister = getattr(self.orch.registry, "list", None)
        records = await _to_thread(lister) if lister else []
        return JSONResponse({"agents": [r.model_dump(mode="json") for r in records]})

    async def health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok", "active_runs": len(self.orch.active)})


async def _to_thread(fn: Any) -> Any:
    import anyio

    return await anyio.to_thread.run_sync(fn)


def _frame(event: dict[str, Any]) -> bytes:
    data = json.dumps(jsonable({k: event[k] for k in ("seq", "kind", "task_id", "data", "at")}))
    return f"id: {event['seq']}\nevent: {event['kind']}\ndata: {data}\n\n".encode()


async def _sse(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    if first is not None:
        yield _frame(first)
    async for event in rest:
        yield _frame(event)


def create_app(orchestrator: Orchestrator, *, mcp: bool = True) -> Starlette:
    """The orchestrator's ASGI app; its lifespan runs the orchestrator (and the MCP session manager)."""
    api = _Api(orchestrator)
    routes: list[BaseRoute] = [
        Route("/runs", api.submit, methods=["POST"]),
        Route("/runs", api.list_runs, methods=["GET"]),
        Route("/runs/{run_id}", api.get_run, methods=["GET"]),
        Route("/runs/{run_id}/events", api.events, methods=["GET"]),
        Route("/runs/{run_id}/cancel", api.cancel, methods=["POST"]),
        Route("/agents", api.agents, methods=["GET"]),
        Route("/health", api.health, methods=["GET"]),
    ]
    server = None
    if mcp:
        from orchestrator.mcp import orchestrator_mcp

        server = orchestrator_mcp(orchestrator)
        routes.extend(server.streamable_http_app(streamable_http_path="/mcp").routes)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with orchestrator.running():
            if server is None:
                yield
            else:
                async with server.session_manager.run():
                    yield

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.orchestrator = orchestrator
    return app
