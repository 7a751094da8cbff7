"""HTTP API of the registry (Starlette behind ``protocol.boundary.Boundary``): register by URL or card JSON, list,
get, search, heartbeat, stats.

The boundary checks Host, Origin, content type, body size, arrival time and JSON depth before any route runs;
routes read the parsed body with ``request_json``. Bodies, query parameters and path ids are validated by pydantic
models (``registry.schemas``), so bad input answers a 4xx with a one-line reason. Errors come back as
``{"error": {"type": "<RegistryError subclass or boundary kind>", "message": "..."}}`` with a fitting HTTP status,
so ``registry.client`` can raise the same exception on the other side.

Access control (``ACCESS_RULES``, enforced by the boundary): reads need ``registry:read``, registering and changing
agents ``registry:write``, reporting call statistics ``registry:report``; ``/healthz`` is public. Writes also check
ownership: an agent is changed, drained, heartbeaten or removed only by the principal that registered it (its
``owner``) or an ``admin``, and a name taken by another principal is refused (409).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.access import PUBLIC, Rule, access_policy, check_rules, request_principal
from protocol.auth import ADMIN, AuthSettings
from protocol.boundary import NO_BODY, Boundary, BoundaryPolicy, request_json
from protocol.egress import EgressPolicy
from protocol.timestamps import with_rfc3339
from protocol.validation import describe_validation_error
from registry import discovery
from registry.errors import (
    AgentNotFound,
    CardFetchError,
    CardValidationError,
    InvalidQuery,
    InvalidRequest,
    McpDiscoveryError,
    NameConflict,
    NotOwner,
    RegistryError,
    RegistryReadOnly,
    RegistryUnavailable,
)
from registry.health import HealthChecker
from registry.models import Registration
from registry.schemas import (
    ListParams,
    PathId,
    RecordCallRequest,
    RegisterMcpRequest,
    RegisterUrlRequest,
    SearchParams,
    StatusRequest,
)
from registry.stdio import StdioAllowlist
from registry.store import Registry

__all__ = ["MAX_BODY_BYTES", "ACCESS_RULES", "create_app"]

MAX_BODY_BYTES = 2_000_000
B = TypeVar("B", bound=BaseModel)
_STATUS: dict[type[RegistryError], int] = {
    AgentNotFound: 404,
    NameConflict: 409,
    NotOwner: 403,
    CardValidationError: 422,
    InvalidQuery: 422,
    InvalidRequest: 422,
    CardFetchError: 502,
    McpDiscoveryError: 502,
    RegistryReadOnly: 503,
    RegistryUnavailable: 503,
}
_PATH_ID: TypeAdapter[str] = TypeAdapter(PathId)

READ, WRITE, REPORT = "registry:read", "registry:write", "registry:report"
ACCESS_RULES: list[Rule] = [
    Rule.of("GET", "/healthz", PUBLIC),
    Rule.of("GET", "/agents", READ),
    Rule.of("POST", "/agents", WRITE),
    Rule.of("POST", "/agents/register-url", WRITE),
    Rule.of("POST", "/agents/register-mcp", WRITE),
    Rule.of("GET", "/agents/{agent_id}", READ),
    Rule.of("DELETE", "/agents/{agent_id}", WRITE),
    Rule.of("POST", "/agents/{agent_id}/heartbeat", WRITE),
    Rule.of("PUT", "/agents/{agent_id}/status", WRITE),
    Rule.of("POST", "/agents/{agent_id}/calls", REPORT),
    Rule.of("GET", "/agents/{agent_id}/history", READ),
    Rule.of("GET", "/search", READ),
    Rule.of("GET", "/openapi.json", PUBLIC),
]
"""The scope each route of the registry API needs (the boundary answers 401/403 before a handler runs)."""


def _error(exc: RegistryError) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
    return JSONResponse({"error": {"type": type(exc).__name__, "message": str(exc)}}, status_code=status)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):  # timestamps as RFC 3339 UTC with Z, like every scaleout API
        return to_jsonable_python(with_rfc3339(value.model_dump()))
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _body(request: Request, model: type[B]) -> B:
    """The body the boundary parsed, validated as ``model`` (InvalidRequest, one line, when it does not fit)."""
    data = request_json(request)
    try:
        return model.model_validate({} if data is NO_BODY else data)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid {model.__name__} body: {describe_validation_error(exc)}") from None


def _agent_id(request: Request) -> str:
    """The ``{agent_id}`` path parameter (an id or name as the columns hold them)."""
    try:
        return _PATH_ID.validate_python(request.path_params["agent_id"])
    except ValidationError as exc:
        reason = describe_validation_error(exc).removeprefix("<root>: ")
        raise InvalidRequest(f"invalid agent id or name in the path: {reason}") from None


def _registrant(request: Request) -> tuple[str, bool]:
    """(owner, admin) of the caller: who a registration is recorded for, and whether it may override owners."""
    principal = request_principal(request)
    return principal.owner, principal.has(ADMIN)


def _acting_owner(request: Request) -> str | None:
    """The owner a change must belong to: the caller's, or None (any) for an admin."""
    principal = request_principal(request)
    return None if principal.has(ADMIN) else principal.owner


def _query(request: Request, model: type[B], names: dict[str, str], lists: tuple[str, ...]) -> B:
    """Query parameters (``names``: parameter -> field; ``lists`` may repeat) validated as ``model``."""
    q = request.query_params
    raw: dict[str, Any] = {}
    for param, field in names.items():
        if param in lists:
            if values := q.getlist(param):
                raw[field] = values
        elif param in q:
            raw[field] = q[param]
    if raw.get("status") == ["any"]:
        raw["status"] = None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidQuery(f"invalid query parameters: {describe_validation_error(exc)}") from None


_SEARCH = {p: p for p in ("skill", "status", "max_cost", "max_latency_ms", "all_tags", "limit", "offset")}
_SEARCH |= {"tag": "tags", "q": "text"}
_LIST = {p: p for p in ("limit", "offset", "status")}

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


def create_app(
    registry: Registry | str | None = None,
    *,
    health_interval: float | None = None,
    policy: BoundaryPolicy | None = None,
    egress: EgressPolicy | None = None,
    stdio_allowlist: StdioAllowlist | None = None,
    auth: AuthSettings | None = None,
    host: str = "127.0.0.1",
) -> Boundary:
    """The registry API over ``registry`` (a Registry, or a database URL) behind the HTTP boundary.

    ``policy`` (default: loopback host names, 2 MB bodies) guards every request; ``egress`` (default
    ``EgressPolicy()``) says which addresses register-url, register-mcp and the health sweep may reach;
    ``stdio_allowlist`` names the stdio MCP commands the health sweep may start (default: none). With
    ``health_interval`` the app sweeps health every that many seconds.

    ``auth`` (keys, audience, issuer) authenticates callers by bearer token against ``ACCESS_RULES``; without
    keys every caller is the local principal, which ``host`` (the bind address) must then keep on loopback:
    anything else raises ``protocol.access.InsecureBind``.
    """
    access = access_policy(ACCESS_RULES, auth or AuthSettings(), host=host)
    reg = registry if isinstance(registry, Registry) else Registry(registry)
    egress = egress or EgressPolicy()
    run = anyio.to_thread.run_sync

    async def list_agents(request: Request) -> Any:
        p = _query(request, ListParams, _LIST, ("status",))
        return await run(lambda: reg.list(p.limit, p.offset, status=p.status))

    async def register_card(request: Request) -> Any:
        body, (owner, admin) = _body(request, Registration), _registrant(request)
        return await run(partial(reg.register, body, owner=owner, admin=admin))

    async def register_url(request: Request) -> Any:
        body, (owner, admin) = _body(request, RegisterUrlRequest), _registrant(request)
        return await discovery.register_url(
            reg,
            body.url,
            model=body.model,
            cost=body.cost,
            agent_id=body.agent_id,
            timeout_s=body.timeout,
            egress=egress,
            owner=owner,
            admin=admin,
        )

    async def register_mcp(request: Request) -> Any:
        body, (owner, admin) = _body(request, RegisterMcpRequest), _registrant(request)
        return await discovery.register_mcp(
            reg,
            body.url,
            name=body.name,
            model=body.model,
            cost=body.cost,
            timeout_s=body.timeout,
            egress=egress,
            owner=owner,
            admin=admin,
        )

    async def get_agent(request: Request) -> Any:
        return await run(reg.find, _agent_id(request))

    async def delete_agent(request: Request) -> Any:
        await run(partial(reg.deregister, _agent_id(request), owner=_acting_owner(request)))

    async def heartbeat(request: Request) -> Any:
        await run(partial(reg.heartbeat, _agent_id(request), owner=_acting_owner(request)))

    async def record_call(request: Request) -> Any:
        agent_id, body = _agent_id(request), _body(request, RecordCallRequest)
        fn = partial(reg.record_call, success=body.success, latency_s=body.latency_s, tokens=body.tokens)
        await run(fn, agent_id)

    async def set_status(request: Request) -> Any:
        agent_id, body = _agent_id(request), _body(request, StatusRequest)
        await run(partial(reg.set_status, agent_id, body.status, owner=_acting_owner(request)))

    async def history(request: Request) -> Any:
        return await run(reg.history, _agent_id(request))

    async def search(request: Request) -> Any:
        p = _query(request, SearchParams, _SEARCH, ("status", "tag"))
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

    async def openapi(_: Request) -> Any:
        from registry.openapi import registry_document

        return registry_document()

    async def healthz(_: Request) -> Any:
        return {"ok": True, "agents": await run(reg.count)}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            if health_interval is not None:
                checker = HealthChecker(reg, egress=egress, stdio_allowlist=stdio_allowlist)
                tg.start_soon(checker.run, health_interval)
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
        Route("/openapi.json", _endpoint(openapi), methods=["GET"]),
    ]
    check_rules(routes, ACCESS_RULES)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.registry, app.state.egress, app.state.stdio_allowlist = reg, egress, stdio_allowlist
    app.state.access = access
    return Boundary(app, policy or BoundaryPolicy(max_body_bytes=MAX_BODY_BYTES), access=access)
