"""HTTP API of the orchestrator (Starlette), with SSE events and the orchestrator's own MCP server at /mcp.

POST /runs (a graph or a single task) -> 202 {"id", "status"}; GET /runs; GET /runs/{id};
GET /runs/{id}/events (SSE; resume with the Last-Event-ID header or ?after=N); POST /runs/{id}/cancel;
POST /negotiations (a negotiation as a run, orchestrator.negotiation_api); GET /runs?kind=graph|negotiation;
GET /agents (what the registry knows); GET /health; GET /.well-known/oauth-protected-resource[/mcp] (RFC 9728);
GET /openapi.json (this API as OpenAPI 3.1, orchestrator.openapi); GET /ui (the web console, orchestrator.console).

The whole app, /mcp included, sits behind ``protocol.boundary.Boundary``: Host and Origin checked, the caller's
bearer token verified and the route's scope required (``ACCESS_RULES``), JSON content type required on every
POST, the body streamed with a cap and parsed once with a depth limit. Every error is
``{"error": {"type": KIND, "message": MSG}}`` with a one-line message, as on the registry and the boundary.

Runs belong to the principal that submitted them (its ``owner``: tenant, else subject): list, show, events and
cancel see only the caller's own runs unless it holds ``admin``; another owner's run answers 404 exactly as an
unknown id. With no keys on loopback every caller is ``LOCAL_PRINCIPAL`` (every scope): today's behaviour.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from orchestrator.console import CONSOLE_RULES, console_routes
from orchestrator.graph import GraphError
from orchestrator.limits import MAX_BODY_BYTES, InvalidQuery, LimitExceeded, parse_int
from orchestrator.service import Orchestrator, RunNotFound, StoreUnavailable
from protocol.access import PUBLIC, Rule, access_policy, check_rules, request_principal
from protocol.auth import ADMIN, AuthSettings, Principal
from protocol.boundary import NO_BODY, Boundary, BoundaryPolicy, request_json
from protocol.timestamps import with_rfc3339
from protocol.validation import describe_validation_error

__all__ = [
    "create_app",
    "ACCESS_RULES",
    "RESOURCE_METADATA_PATH",
    "MAX_BODY_BYTES",
    "jsonable",
    "error_response",
    "caller_owner",
    "refusal",
]

RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"
ORCHESTRATOR_SCOPES = ("runs:submit", "runs:read", "runs:cancel", "registry:read", ADMIN)

ACCESS_RULES: list[Rule] = [
    Rule.of("GET", "/health", PUBLIC),
    Rule.of("GET", RESOURCE_METADATA_PATH, PUBLIC),
    Rule.of("GET", RESOURCE_METADATA_PATH + "/mcp", PUBLIC),
    Rule.of("POST", "/runs", "runs:submit"),
    Rule.of("GET", "/runs", "runs:read"),
    Rule.of("GET", "/runs/{run_id}", "runs:read"),
    Rule.of("GET", "/runs/{run_id}/events", "runs:read"),
    Rule.of("POST", "/runs/{run_id}/cancel", "runs:cancel"),
    Rule.of("POST", "/runs/{run_id}/tasks/{task_id}/input", "runs:submit"),  # answer a task's question
    Rule.of("POST", "/runs/{run_id}/tasks/{task_id}/approval", "runs:submit"),  # approve or reject held output
    Rule.of("POST", "/negotiations", "runs:submit"),  # starts a negotiation run (orchestrator.negotiation_api)
    Rule.of("GET", "/agents", "registry:read"),
    Rule.of("GET", "/openapi.json", PUBLIC),
    *CONSOLE_RULES,
    # MCP: reading runs lets a caller in; each tool then checks its own scope (orchestrator.mcp)
    Rule.of("*", "/mcp", "runs:read"),
    Rule.of("*", "/mcp/{rest:path}", "runs:read"),
]
"""Which scope each route needs; every route of the app has one (``check_rules`` runs in ``create_app``)."""

MCP_MAX_SESSIONS = 1_000  # MCP sessions open at once on /mcp
MCP_SESSION_IDLE_S = 600.0  # an MCP session unused this long is closed


def jsonable(value: Any) -> Any:
    """``value`` with datetimes (RFC 3339 UTC with Z) and other non-JSON types turned into JSON-ready values."""
    return to_jsonable_python(with_rfc3339(value))


def error_response(status: int, kind: str, message: str) -> JSONResponse:
    """The error body every scaleout REST surface answers with: ``{"error": {"type", "message"}}``."""
    one_line = " ".join(message.split())
    return JSONResponse({"error": {"type": kind, "message": one_line}}, status_code=status)


def refusal(exc: Exception) -> JSONResponse:
    """The response for an exception a request can cause (anything else is a bug and stays a 500); the other
    route modules use it for the refusals they share (unknown run, database unavailable)."""
    if isinstance(exc, ValidationError):
        return error_response(400, "InvalidRequest", f"invalid run request: {describe_validation_error(exc)}")
    if isinstance(exc, LimitExceeded):
        kind = {413: "RunTooLarge", 429: "TooManyRuns"}.get(exc.status, "LimitExceeded")
        return error_response(exc.status, kind, str(exc))
    if isinstance(exc, GraphError):
        return error_response(400, "InvalidGraph", str(exc))
    if isinstance(exc, InvalidQuery):
        return error_response(400, "InvalidQuery", str(exc))
    if isinstance(exc, RunNotFound):
        return error_response(404, "RunNotFound", str(exc))
    if isinstance(exc, StoreUnavailable):
        response = error_response(503, "DatabaseUnavailable", str(exc))
        response.headers["Retry-After"] = "2"
        return response
    raise exc


def caller_owner(principal: Principal) -> str | None:
    """Whose runs ``principal`` sees: its owner's, or every run (None) when it holds ``admin``."""
    return None if principal.has(ADMIN) else principal.owner


def _owner(request: Request) -> str | None:
    return caller_owner(request_principal(request))


class _Api:
    def __init__(self, orchestrator: Orchestrator, public_url: str | None = None) -> None:
        self.orch = orchestrator
        self.public_url = public_url.rstrip("/") if public_url else None

    async def submit(self, request: Request) -> Response:
        payload = request_json(request)
        if payload is NO_BODY or not isinstance(payload, dict):
            return error_response(
                400,
                "InvalidRequest",
                'send a JSON object: a task {"skill": ..., "input": ...} or a graph {"tasks": [...]}',
            )
        try:
            run_id = await self.orch.submit(payload, owner=request_principal(request).owner)
        except (ValidationError, LimitExceeded, GraphError, StoreUnavailable) as exc:
            return refusal(exc)
        return JSONResponse(
            {"id": run_id, "status": "pending", "url": f"/runs/{run_id}", "events": f"/runs/{run_id}/events"},
            status_code=202,
        )

    async def list_runs(self, request: Request) -> Response:
        query = request.query_params
        try:
            limit = parse_int("limit", query["limit"]) if "limit" in query else 50
            offset = parse_int("offset", query["offset"]) if "offset" in query else 0
            runs = await self.orch.list_runs(
                status=query.get("status"), limit=limit, offset=offset, owner=_owner(request), kind=query.get("kind")
            )
        except (InvalidQuery, StoreUnavailable) as exc:
            return refusal(exc)
        return JSONResponse(jsonable({"runs": runs}))

    async def get_run(self, request: Request) -> Response:
        try:
            run = await self.orch.get_run(request.path_params["run_id"], owner=_owner(request))
        except (RunNotFound, StoreUnavailable) as exc:
            return refusal(exc)
        return JSONResponse(jsonable(run))

    async def cancel(self, request: Request) -> Response:
        try:
            cancelled = await self.orch.cancel(request.path_params["run_id"], owner=_owner(request))
        except (RunNotFound, StoreUnavailable) as exc:
            return refusal(exc)
        return JSONResponse({"cancelled": cancelled})

    async def events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        header = request.headers.get("last-event-id")
        name, raw = ("Last-Event-ID", header) if header else ("after", request.query_params.get("after") or "0")
        try:
            stream = self.orch.events(run_id, parse_int(name, raw), owner=_owner(request))
            first = await anext(stream)
        except StopAsyncIteration:
            first = None
        except (InvalidQuery, RunNotFound, StoreUnavailable) as exc:
            return refusal(exc)
        return StreamingResponse(
            _sse(first, stream),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def agents(self, request: Request) -> Response:
        lister = getattr(self.orch.registry, "list", None)
        records = await anyio.to_thread.run_sync(lister) if lister else []
        return JSONResponse({"agents": [r.model_dump(mode="json") for r in records]})

    async def openapi(self, _: Request) -> Response:
        from orchestrator.openapi import orchestrator_document

        return JSONResponse(orchestrator_document())

    async def health(self, _: Request) -> Response:
        database = "ok" if self.orch.database_available else "unavailable"
        return JSONResponse(
            {
                "status": "ok" if database == "ok" else "degraded",
                "replica": self.orch.replica_id,
                "active_runs": len(self.orch.active),
                "database": database,
            }
        )

    async def resource_metadata(self, request: Request) -> Response:
        """RFC 9728 protected-resource metadata: what this resource is and which scopes its tokens carry."""
        # The Host header was checked by the boundary (only names this server answers to reach here).
        base = self.public_url or f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        resource = base + request.url.path.removeprefix(RESOURCE_METADATA_PATH)
        return JSONResponse(
            {
                "resource": resource,
                "resource_name": "scaleout orchestrator",
                "scopes_supported": list(ORCHESTRATOR_SCOPES),
                "bearer_methods_supported": ["header"],
            },
            headers={"Cache-Control": "public, max-age=3600"},
        )


def _frame(event: dict[str, Any]) -> bytes:
    data = json.dumps(jsonable({k: event[k] for k in ("seq", "kind", "task_id", "data", "at")}))
    return f"id: {event['seq']}\nevent: {event['kind']}\ndata: {data}\n\n".encode()


async def _sse(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    if first is not None:
        yield _frame(first)
    async for event in rest:
        yield _frame(event)


def create_app(
    orchestrator: Orchestrator,
    *,
    mcp: bool = True,
    policy: BoundaryPolicy | None = None,
    auth: AuthSettings | None = None,
    host: str = "127.0.0.1",
    public_url: str | None = None,
) -> Boundary:
    """The orchestrator's ASGI app behind the boundary ``policy`` (default: loopback hosts, 10 MB bodies);
    its lifespan runs the orchestrator (and the MCP session manager).

    Callers authenticate with bearer tokens checked against ``auth``'s keys; with no keys, callers are
    unauthenticated (every scope) and ``host``, the bind address, must be loopback (``InsecureBind`` otherwise).
    ``public_url`` (how clients reach this server) makes the RFC 9728 metadata URLs absolute."""
    from orchestrator.answer_api import answer_endpoint, approval_endpoint  # it imports this module
    from orchestrator.negotiation_api import NegotiationsEndpoint  # it imports this module

    api = _Api(orchestrator, public_url)
    metadata_url = (api.public_url or "") + RESOURCE_METADATA_PATH + "/mcp"
    access = access_policy(
        ACCESS_RULES, auth or AuthSettings(), host=host, resource_metadata=metadata_url if mcp else None
    )
    routes: list[BaseRoute] = [
        Route("/runs", api.submit, methods=["POST"]),
        Route("/runs", api.list_runs, methods=["GET"]),
        Route("/runs/{run_id}", api.get_run, methods=["GET"]),
        Route("/runs/{run_id}/events", api.events, methods=["GET"]),
        Route("/runs/{run_id}/cancel", api.cancel, methods=["POST"]),
        Route("/runs/{run_id}/tasks/{task_id}/input", answer_endpoint(orchestrator), methods=["POST"]),
        Route("/runs/{run_id}/tasks/{task_id}/approval", approval_endpoint(orchestrator), methods=["POST"]),
        Route("/negotiations", NegotiationsEndpoint(orchestrator).handle, methods=["POST"]),
        Route("/agents", api.agents, methods=["GET"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        *console_routes(),
        Route(RESOURCE_METADATA_PATH, api.resource_metadata, methods=["GET"]),
        Route(RESOURCE_METADATA_PATH + "/mcp", api.resource_metadata, methods=["GET"]),
    ]
    server = None
    if mcp:
        from orchestrator.mcp import orchestrator_mcp

        server = orchestrator_mcp(orchestrator)
        # Host and Origin are the boundary's job (one policy for the whole app, from the bind address and flags).
        open_transport = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        mcp_app = server.streamable_http_app(
            streamable_http_path="/mcp",
            transport_security=open_transport,
            max_sessions=MCP_MAX_SESSIONS,
            session_idle_timeout=MCP_SESSION_IDLE_S,
        )
        routes.extend(mcp_app.routes)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with orchestrator.running():
            if server is None:
                yield
            else:
                async with server.session_manager.run():
                    yield

    check_rules(routes, ACCESS_RULES)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.orchestrator = orchestrator
    return Boundary(app, policy or BoundaryPolicy(max_body_bytes=MAX_BODY_BYTES), access=access)
