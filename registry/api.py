"""HTTP API of the registry (Starlette): register by URL or card JSON, list, get, search, heartbeat, stats.

Errors come back as ``{"error": {"type": "<RegistryError subclass>", "message": "..."}}`` with a fitting
HTTP status, so ``registry.client`` can raise the same exception on the other side.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from registry import discovery
from registry.errors import (
    AgentNotFound,
    CardFetchError,
    CardValidationError,
    InvalidQuery,
    McpDiscoveryError,
    NameConflict,
    RegistryError,
    RegistryReadOnly,
    RegistryUnavailable,
)
from registry.health import HealthChecker
from registry.models import HealthStatus, Registration
from registry.schemas import RecordCallRequest, RegisterMcpRequest, RegisterUrlRequest, SearchParams, StatusRequest
from registry.store import Registry

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 2_000_000
B = TypeVar("B", bound=BaseModel)
_STATUS: dict[type[RegistryError], int] = {
    AgentNotFound: 404,
    NameConflict: 409,
    CardValidationError: 422,
    InvalidQuery: 422,
    CardFetchError: 502,
    McpDiscoveryError: 502,
    RegistryReadOnly: 503,
    RegistryUnavailable: 503,
}


def _error(exc: RegistryError) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
    return JSONResponse({"error": {"type": type(exc).__name__, "message": str(exc)}}, status_code=status)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


async def _body(request: Request, model: type[B]) -> B:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidQuery(f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        return model.model_validate(json.loads(raw or b"{}"))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise CardValidationError(f"invalid {model.__name__}: {exc}") from None


def _search_params(request: Request) -> SearchParams:
    q = request.query_params
    status: list[str] | None = q.getlist("status") or None
    raw: dict[str, Any] = {
        "skill": q.get("skill"),
        "tags": q.getlist("tag") or None,
        "text": q.get("q"),
        "max_cost": q.get("max_cost"),
        "max_latency_ms": q.get("max_latency_ms"),
        "all_tags": q.get("all_tags", "false").lower() in ("1", "true", "yes"),
        "limit": q.get("limit", 20),
        "offset": q.get("offset", 0),
    }
    if status != ["any"]:
        raw["status"] = status or [HealthStatus.HEALTHY]
    else:
        raw["status"] = None
    try:
        return SearchParams.model_validate({k: v for k, v in raw.items() if v is not None or k == "status"})
    except ValidationError as exc:
        raise InvalidQuery(f"invalid search parameters: {exc}") from None


Handler = Callable[[Request], Awaitable[Any]]


def _endpoint(handler: Handler, status_code: int = 200) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except RegistryError as exc:
            return _error(exc)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(_dump(result), status_code=status_code)

    return endpoint


def create_app(registry: Registry | str | None = None, *, health_interval: float | None = None) -> Starlette:
    """The registry API over ``registry`` (a Registry, or a database URL); optionally sweeps health."""
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    run = anyio.to_thread.run_sync

    async def list_agents(request: Request) -> Any:
        q = request.query_params
        try:
            limit, offset = int(q.get("limit", 100)), int(q.get("offset", 0))
        except ValueError:
            raise InvalidQuery("limit and offset must be integers") from None
        status = [HealthStatus(s) for s in q.getlist("status")] if q.getlist("status") else None
        return await run(lambda: reg.list(limit, offset, status=status))

    async def register_card(request: Request) -> Any:
        return await run(reg.register, await _body(request, Registration))

    async def register_url(request: Request) -> Any:
        body = await _body(request, RegisterUrlRequest)
        return await discovery.register_url(
            reg, body.url, model=body.model, cost=body.cost, agent_id=body.agent_id, timeout_s=body.timeout
        )

    async def register_mcp(request: Request) -> Any:
        body = await _body(request, RegisterMcpRequest)
        return await discovery.register_mcp(
            reg, body.url, name=body.name, model=body.model, cost=body.cost, timeout_s=body.timeout
        )

    async def get_agent(request: Request) -> Any:
        return await run(reg.find, request.path_params["agent_id"])

    async def delete_agent(request: Request) -> Any:
        await run(reg.deregister, request.path_params["agent_id"])

    async def heartbeat(request: Request) -> Any:
        await run(reg.heartbeat, request.path_params["agent_id"])

    async def record_call(request: Request) -> Any:
        body = await _body(request, RecordCallRequest)
        fn = partial(reg.record_call, success=body.success, latency_s=body.latency_s, tokens=body.tokens)
        await run(fn, request.path_params["agent_id"])

    async def set_status(request: Request) -> Any:
        body = await _body(request, StatusRequest)
        await run(reg.set_status, request.path_params["agent_id"], body.status)

    async def history(request: Request) -> Any:
        return await run(reg.history, request.path_params["agent_id"])

    async def search(request: Request) -> Any:
        p = _search_params(request)
        fn = partial(
            reg.search,
            p.skill,
            p.tags,
            p.text,
            status=None if p.status is None else set(p.status),
            max_cost=p.max_cost,
            max_latency_ms=p.max_latency_ms,
            all_tags=p.all_tags,
            limit=p.limit,
            offset=p.offset,
        )
        return await run(fn)

    async def healthz(_: Request) -> Any:
        return {"ok": True, "agents": await run(reg.count)}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            if health_interval is not None:
                tg.start_soon(HealthChecker(reg).run, health_interval)
            yield
            tg.cancel_scope.cancel()

    routes = [
        Route("/healthz", _endpoint(healthz), methods=["GET"]),
        Route("/agents", _endpoint(list_agents), methods=["GET"]),
        Route("/agents", _endpoint(register_card, 201), methods=["POST"]),
        Route("/agents/register-url", _endpoint(register_url, 201), methods=["POST"]),
        Route("/agents/register-mcp", _endpoint(register_mcp, 201), methods=["POST"]),
        Route("/agents/{agent_id}", _endpoint(get_agent), methods=["GET"]),
        Route("/agents/{agent_id}", _endpoint(delete_agent), methods=["DELETE"]),
        Route("/agents/{agent_id}/heartbeat", _endpoint(heartbeat), methods=["POST"]),
        Route("/agents/{agent_id}/calls", _endpoint(record_call), methods=["POST"]),
        Route("/agents/{agent_id}/status", _endpoint(set_status), methods=["PUT"]),
        Route("/agents/{agent_id}/history", _endpoint(history), methods=["GET"]),
        Route("/search", _endpoint(search), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.registry = reg
    return app
