"""ASGI app serving one or many agents: Agent Card, A2A JSON-RPC and HTTP+JSON (+SSE), and MCP per agent.

One agent is served at the root (``/.well-known/agent-card.json``, ``POST /``, the HTTP+JSON routes
``/message:send``, ``/tasks/{id}`` ... of ``agents.rest_server``, ``/mcp``); several agents each get a prefix
``/agents/{name}`` with the same routes under it. Both A2A bindings call the same ``A2AHandlers``. The whole app
sits behind ``protocol.boundary.Boundary`` (host, origin, JSON content type, body size, JSON depth, and access
control: ``ACCESS_RULES``), whose refusals are JSON-RPC errors (A2A JSON-RPC and MCP speak JSON-RPC), and
``google.rpc`` error bodies on the HTTP+JSON routes (``RestBoundary``).

Access: the cards, the agent index and the MCP protected-resource metadata (RFC 9728) are public; A2A and MCP
need the scope ``agents:call``. With keys (``AuthSettings.jwks_file``) callers send bearer tokens, the cards
declare the bearer scheme, and ``GetExtendedAgentCard`` answers authenticated callers with the skills' JSON
schemas; without keys the server runs on loopback only, and every caller is ``LOCAL_PRINCIPAL``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from agents.a2a_handlers import A2AHandlers
from agents.a2a_v03_server import served_card, v03_compatible
from agents.agent import Agent
from agents.jsonrpc_server import MAX_BODY_BYTES, JsonRpcEndpoint, render_jsonrpc_error
from agents.rest_server import REST_ROUTES, RestBoundary, RestEndpoint, is_rest_path, render_a2a_rest_error
from agents.task_waiters import DISCONNECT_GRACE_S
from agents.tasks import TaskRuntime
from protocol.a2a import AGENT_CARD_PATH, AgentCard, AgentExtension, AgentInterface
from protocol.access import PUBLIC, AccessPolicy, Rule, access_policy, check_rules
from protocol.auth import AuthSettings, SigningKey
from protocol.boundary import Boundary, BoundaryPolicy
from protocol.signing import sign_card

__all__ = [
    "ACCESS_RULES",
    "AgentApp",
    "AgentServer",
    "BEARER_SCHEME",
    "CALL_SCOPE",
    "CARD_MAX_AGE_S",
    "HTTP_JSON_BINDING",
    "JWKS_PATH",
    "PROTECTED_RESOURCE_PATH",
    "SKILL_SCHEMAS_EXTENSION",
    "create_app",
    "default_policy",
    "extended_card",
]

CARD_MAX_AGE_S = 300
HTTP_JSON_BINDING = "HTTP+JSON"  # the card's protocolBinding of the REST routes (agents.rest_server)
CALL_SCOPE = "agents:call"
BEARER_SCHEME = "bearer"
PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"
JWKS_PATH = "/.well-known/jwks.json"  # the public key the cards are signed with (docs/trust.md)
SKILL_SCHEMAS_EXTENSION = "urn:scaleout:a2a:skill-schemas:v1"

ACCESS_RULES: list[Rule] = [
    Rule.of("GET", AGENT_CARD_PATH, PUBLIC),
    Rule.of("GET", "/agents", PUBLIC),
    Rule.of("GET", "/agents/{name}" + AGENT_CARD_PATH, PUBLIC),
    Rule.of("GET", PROTECTED_RESOURCE_PATH, PUBLIC),
    Rule.of("GET", JWKS_PATH, PUBLIC),
    Rule.of("GET", PROTECTED_RESOURCE_PATH + "/{rest:path}", PUBLIC),
    Rule.of("POST", "/", CALL_SCOPE),
    Rule.of("POST", "/agents/{name}/", CALL_SCOPE),
    Rule.of("*", "/mcp", CALL_SCOPE),
    Rule.of("*", "/mcp/{rest:path}", CALL_SCOPE),
    Rule.of("*", "/agents/{name}/mcp", CALL_SCOPE),
    Rule.of("*", "/agents/{name}/mcp/{rest:path}", CALL_SCOPE),
    *(
        Rule.of(methods, prefix + path, CALL_SCOPE)
        for prefix in ("", "/agents/{name}")
        for methods, path in REST_ROUTES
    ),
]
"""The scope every route of an agent server needs (``protocol.access``); a route without one answers 404."""

GraceSetting = float | None | Mapping[str, float | None]
"""A server's ``disconnect_grace_s``: seconds (None: never cancel on disconnect), or such a value per agent name."""

_BEARER_SCHEMES = {BEARER_SCHEME: {"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}}}
_BEARER_REQUIREMENTS = [{"schemes": {BEARER_SCHEME: {"list": [CALL_SCOPE]}}}]


def extended_card(agent: Agent, card: AgentCard) -> dict[str, Any]:
    """The card ``GetExtendedAgentCard`` returns to authenticated callers: ``card`` plus, as the extension
    ``SKILL_SCHEMAS_EXTENSION``, each skill's input and output JSON schema (what the public card leaves out)."""
    schemas = {
        skill_id: {
            "input": skill.input_model.model_json_schema(),
            "output": skill.output_model.model_json_schema(mode="serialization"),
        }
        for skill_id, skill in agent.skills.items()
    }
    extension = AgentExtension(
        uri=SKILL_SCHEMAS_EXTENSION,
        description="the JSON schema of each skill's input (the message's data part) and output (its artifact)",
        params={"skills": schemas},
    )
    capabilities = card.capabilities.model_copy(update={"extensions": [*card.capabilities.extensions, extension]})
    return card.model_copy(update={"capabilities": capabilities}).wire()


class AgentServer:
    """The agents of one process, their runtimes and their public URLs.

    ``secured``: callers authenticate with bearer tokens (the cards say so, the extended card is served);
    ``issuer``: the token issuer, named as the authorization server in the protected-resource metadata when
    it is a URL. ``disconnect_grace_s`` (one value, or one per agent name) is each runtime's
    ``TaskRuntime.disconnect_grace_s``. ``v03_card``: also the A2A 0.3 card fields (None: ``$SCALEOUT_A2A_V03_CARD``).
    """

    def __init__(
        self,
        agents: Agent | Sequence[Agent],
        base_url: str = "http://127.0.0.1:8000",
        *,
        mcp_options: dict[str, Any] | None = None,
        secured: bool = False,
        issuer: str | None = None,
        disconnect_grace_s: GraceSetting = DISCONNECT_GRACE_S,
        signing_key: SigningKey | None = None,
        v03_card: bool | None = None,
    ) -> None:
        self.signing_key = signing_key
        self.v03_card = v03_card
        self.agents = [agents] if isinstance(agents, Agent) else list(agents)
        if not self.agents:
            raise ValueError("serve at least one agent")
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique in one server: {names}")
        self.base_url = base_url.rstrip("/")
        self.secured = secured
        self.issuer = issuer
        self.runtimes = {
            a.name: TaskRuntime(a, disconnect_grace_s=_grace_of(a.name, disconnect_grace_s)) for a in self.agents
        }
        self.mcp_apps = {a.name: _mcp_app(a, mcp_options or {}) for a in self.agents}

    def prefix(self, agent: Agent) -> str:
        return "" if len(self.agents) == 1 else f"/agents/{agent.name}"

    def url(self, agent: Agent) -> str:
        """The A2A endpoint URL of ``agent`` (also where its card's interface points)."""
        return f"{self.base_url}{self.prefix(agent)}/"

    def rest_url(self, agent: Agent) -> str:
        """The HTTP+JSON base URL of ``agent``, without a trailing slash (clients append ``/message:send`` ...)."""
        return f"{self.base_url}{self.prefix(agent)}"

    def card_url(self, agent: Agent) -> str:
        return f"{self.base_url}{self.prefix(agent)}{AGENT_CARD_PATH}"

    def mcp_url(self, agent: Agent) -> str:
        """The streamable-HTTP MCP endpoint of ``agent``."""
        return f"{self.base_url}{self.prefix(agent)}/mcp"

    def card(self, agent: Agent) -> AgentCard:
        """The public card of ``agent``: JSON-RPC at ``url(agent)``, then HTTP+JSON at ``rest_url(agent)``; with
        ``secured`` it declares the bearer scheme and the extended card."""
        if not self.secured:
            card = agent.card(self.url(agent))
        else:
            card = agent.card(
                self.url(agent),
                security_schemes=_BEARER_SCHEMES,
                security_requirements=_BEARER_REQUIREMENTS,
                extended_card=True,
            )
        rest = AgentInterface(url=self.rest_url(agent), protocol_binding=HTTP_JSON_BINDING)
        return card.model_copy(update={"supported_interfaces": [*card.supported_interfaces, rest]})

    def public_card(self, card: AgentCard) -> dict[str, Any]:
        """The card as served: signed with ``signing_key`` (JWS in ``signatures``, naming the JWKS URL) if set."""
        wire = served_card(card, legacy_fields=self.v03_card)  # with the A2A 0.3 interface (agents/a2a_v03_server.py)
        if self.signing_key is None:
            return wire
        return sign_card(wire, self.signing_key, jku=self.base_url + JWKS_PATH)

    def jwks_routes(self) -> list[BaseRoute]:
        """The JWKS of the card-signing key at ``JWKS_PATH`` (none without a key)."""
        if self.signing_key is None:
            return []
        return [Route(JWKS_PATH, _json_endpoint({"keys": [self.signing_key.jwk()]}), methods=["GET"])]

    def resource_metadata(self, resource: str) -> dict[str, Any]:
        """RFC 9728 protected-resource metadata for ``resource`` (an MCP endpoint URL, or the server's)."""
        issuer = self.issuer
        servers = [issuer] if issuer and issuer.startswith(("https://", "http://")) else []
        return {
            "resource": resource,
            "authorization_servers": servers,
            "bearer_methods_supported": ["header"],
            "scopes_supported": [CALL_SCOPE],
            "resource_name": self.agents[0].name if len(self.agents) == 1 else "scaleout agents",
        }

    def agent_routes(self, agent: Agent) -> list[BaseRoute]:
        """The card, JSON-RPC, HTTP+JSON and MCP routes of one agent, relative to its prefix."""
        card = self.card(agent)
        handlers = A2AHandlers(
            self.runtimes[agent.name], extended_card=extended_card(agent, card) if self.secured else None
        )
        endpoint = JsonRpcEndpoint(handlers.runtime, handlers=handlers)
        routes: list[BaseRoute] = [
            Route(AGENT_CARD_PATH, _card_endpoint(self.public_card(card)), methods=["GET"]),
            Route("/", v03_compatible(endpoint.handle), methods=["POST"]),  # 0.3 calls too: a2a_v03_server.py
            *RestEndpoint(handlers).routes(),
        ]
        mcp = self.mcp_apps[agent.name]
        if mcp is not None:  # "/mcp" and "/mcp/" both answer directly: MCP clients do not follow redirects
            routes += [Route("/mcp", mcp), Mount("/mcp", app=mcp)]
        return routes

    def metadata_routes(self) -> list[BaseRoute]:
        """RFC 9728 metadata of the MCP endpoints: at the root, and path-inserted for each ``/mcp``."""
        if all(mcp is None for mcp in self.mcp_apps.values()):
            return []
        if len(self.agents) == 1:
            document = self.resource_metadata(self.mcp_url(self.agents[0]))
            endpoint = _json_endpoint(document)
            return [
                Route(PROTECTED_RESOURCE_PATH, endpoint, methods=["GET"]),
                Route(PROTECTED_RESOURCE_PATH + "/mcp", endpoint, methods=["GET"]),
            ]
        documents = {a.name: self.resource_metadata(self.mcp_url(a)) for a in self.agents}

        async def of_agent(request: Request) -> Response:
            document = documents.get(request.path_params["name"])
            if document is None:
                return JSONResponse({"error": f"no agent named {request.path_params['name']!r}"}, 404)
            return JSONResponse(document)

        return [
            Route(PROTECTED_RESOURCE_PATH, _json_endpoint(self.resource_metadata(self.base_url)), methods=["GET"]),
            Route(PROTECTED_RESOURCE_PATH + "/agents/{name}/mcp", of_agent, methods=["GET"]),
        ]

    def routes(self) -> list[BaseRoute]:
        if len(self.agents) == 1:
            return self.agent_routes(self.agents[0]) + self.metadata_routes() + self.jwks_routes()
        # One mount for all agents, dispatched by name: a request costs one dict lookup, not a scan of every
        # agent's routes (a server may hold a thousand agents).
        routers = {a.name: Router(routes=self.agent_routes(a)) for a in self.agents}
        index = [{"name": a.name, "url": self.url(a), "card": self.card_url(a)} for a in self.agents]

        async def list_agents(_: Request) -> Response:
            return JSONResponse({"agents": index})

        return [
            Route("/agents", list_agents, methods=["GET"]),
            Mount("/agents/{name}", app=_AgentsByName(routers)),
            *self.metadata_routes(),
            *self.jwks_routes(),
        ]

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for runtime in self.runtimes.values():
                await stack.enter_async_context(runtime.running())
            for mcp in self.mcp_apps.values():
                if mcp is not None:  # the streamable-HTTP session manager needs its task group running
                    await stack.enter_async_context(mcp.running())
            yield


class _AgentsByName:
    """ASGI app behind ``/agents/{name}``: that agent's routes. ``routes`` lists one agent's routes (every agent
    has the same ones), so route listings (``protocol.access.route_paths``, ``check_rules``) see through it."""

    def __init__(self, routers: dict[str, Router]) -> None:
        self.routers = routers
        self.routes = next(iter(routers.values())).routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self.routers.get(scope["path_params"]["name"])
        if router is None:
            response = JSONResponse({"error": f"no agent named {scope['path_params']['name']!r}"}, 404)
            await response(scope, receive, send)
            return
        await router(scope, receive, send)


def _grace_of(name: str, setting: GraceSetting) -> float | None:
    if isinstance(setting, Mapping):
        return setting.get(name, DISCONNECT_GRACE_S)
    return setting


def _json_endpoint(document: dict[str, Any]) -> Callable[[Request], Awaitable[Response]]:
    body = json.dumps(document, separators=(",", ":")).encode()

    async def endpoint(_: Request) -> Response:
        return Response(body, media_type="application/json", headers={"Cache-Control": f"max-age={CARD_MAX_AGE_S}"})

    return endpoint


def _card_endpoint(card: dict[str, Any]) -> Callable[[Request], Awaitable[Response]]:
    """Serve a fixed card with caching headers (ETag, Last-Modified, max-age) and 304 on a matching ETag."""
    body = json.dumps(card, separators=(",", ":")).encode()
    headers = {
        "ETag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        "Last-Modified": formatdate(time.time(), usegmt=True),
        "Cache-Control": f"public, max-age={CARD_MAX_AGE_S}",
    }

    async def endpoint(request: Request) -> Response:
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    return endpoint


def _mcp_app(agent: Agent, options: dict[str, Any]) -> Any:
    """The agent's MCP streamable-HTTP app, or None where the MCP binding is not available."""
    try:
        from agents.mcp import mcp_http_app
    except ImportError:
        return None
    return mcp_http_app(agent, **options)


class AgentApp(Boundary):
    """The agents' ASGI app: the Starlette app behind the boundary; ``state.agent_server`` as on the inner app.

    Requests to the HTTP+JSON routes pass the same checks through ``RestBoundary`` (errors as google.rpc bodies)."""

    def __init__(
        self, app: Starlette, server: AgentServer, policy: BoundaryPolicy, access: AccessPolicy | None = None
    ) -> None:
        super().__init__(app, policy, render=render_jsonrpc_error, access=access)
        self.rest = RestBoundary(app, policy, render=render_a2a_rest_error, access=access)
        self.starlette = app
        self.agent_server = server
        self.state = app.state
        self._prefixed = len(server.agents) > 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_rest_path(_agent_path(scope["path"], self._prefixed)):
            await self.rest(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _agent_path(path: str, prefixed: bool) -> str:
    """``path`` relative to its agent's prefix (``/agents/{name}``, when the server holds several agents)."""
    if not prefixed or not path.startswith("/agents/"):
        return path
    rest = path[len("/agents/") :]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else ""


def default_policy(base_url: str, **limits: Any) -> BoundaryPolicy:
    """The boundary of an agent server at ``base_url``: its loopback names and its own host, 1 MB bodies."""
    parts = urlsplit(base_url)
    limits.setdefault("max_body_bytes", MAX_BODY_BYTES)
    return BoundaryPolicy.for_bind(parts.hostname or "127.0.0.1", parts.port, public_url=base_url, **limits)


def create_app(
    agents: Agent | Sequence[Agent],
    base_url: str = "http://127.0.0.1:8000",
    *,
    policy: BoundaryPolicy | None = None,
    mcp_sessions_per_client: int | None = None,
    mcp_idle_timeout_s: float | None = None,
    auth: AuthSettings | None = None,
    host: str = "127.0.0.1",
    disconnect_grace_s: GraceSetting = DISCONNECT_GRACE_S,
    signing_key: SigningKey | None = None,
    v03_card: bool | None = None,
) -> AgentApp:
    """An ASGI app serving ``agents`` behind the boundary; run it with uvicorn or ``scaleout agent serve``.

    ``policy`` defaults to ``default_policy(base_url)``; the MCP options override ``McpHttpApp``'s defaults.
    ``auth`` names the keys callers' tokens are checked against; ``host`` is the bind address: without keys,
    anything but loopback raises ``protocol.access.InsecureBind``. ``disconnect_grace_s``: how long a task whose
    waiting callers all disconnected runs on for one to come back before it is cancelled (None: never cancel);
    one value for every agent, or a mapping by agent name (agents it omits keep the default), see docs/a2a.md.
    ``signing_key`` signs the cards (A2A card signatures) and is published at ``JWKS_PATH`` (docs/trust.md).
    ``v03_card`` adds the A2A 0.3 card fields for 0.3-only clients (None: ``$SCALEOUT_A2A_V03_CARD``; docs/a2a.md).
    """
    auth = auth or AuthSettings()
    mcp_options: dict[str, Any] = {}
    if mcp_sessions_per_client is not None:
        mcp_options["max_sessions_per_client"] = mcp_sessions_per_client
    if mcp_idle_timeout_s is not None:
        mcp_options["session_idle_timeout_s"] = mcp_idle_timeout_s
    # The key set is read (and a bind beyond loopback without one refused) before anything else is built.
    several = not isinstance(agents, Agent) and len(agents) > 1
    metadata = f"{base_url.rstrip('/')}{PROTECTED_RESOURCE_PATH}{'' if several else '/mcp'}"
    access = access_policy(ACCESS_RULES, auth, host=host, resource_metadata=metadata)
    secured = access.verifier is not None
    server = AgentServer(
        agents,
        base_url,
        mcp_options=mcp_options,
        secured=secured,
        issuer=auth.issuer,
        disconnect_grace_s=disconnect_grace_s,
        signing_key=signing_key,
        v03_card=v03_card,
    )
    app = Starlette(routes=server.routes(), lifespan=server.lifespan)
    check_rules(app.routes, ACCESS_RULES)
    app.state.agent_server = server
    return AgentApp(app, server, policy or default_policy(base_url), access)
