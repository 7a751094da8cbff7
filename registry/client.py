"""Async Python client of the registry HTTP API (httpx); raises the same RegistryError subclasses.

Errors map by their ``type`` (``InvalidRequest``, ``InvalidQuery``, ``NameConflict``, ``NotOwner``,
``Unauthorized``, ``InsufficientScope``, ...); other refusals of the server's HTTP boundary (415, 413, 421, 403
origin, 400 bad JSON) come back as ``RegistryError`` with the server's message.

Credentials: the client sends ``Authorization: Bearer <token>`` with ``token``, else $SCALEOUT_TOKEN, else the
token file (``protocol.auth.client_token``); over https it verifies the server against ``ca_file`` (or ``verify``).
"""

from __future__ import annotations

import ssl
from collections.abc import Collection, Sequence
from typing import Any

import httpx
from pydantic import TypeAdapter

from protocol.a2a import AgentCard
from protocol.auth import bearer_headers, tls_verify
from registry import errors
from registry.errors import RegistryError, RegistryUnavailable
from registry.models import AgentRecord, AgentVersion, CostHints, HealthStatus, ModelInfo, Registration, Transport

__all__ = ["RegistryClient"]

Records = list[AgentRecord]
Versions = list[AgentVersion]
Params = list[tuple[str, Any]]

_RECORDS = TypeAdapter(list[AgentRecord])
_VERSIONS = TypeAdapter(list[AgentVersion])


def _opt(model: Any) -> Any:
    return None if model is None else model.model_dump(mode="json")


class RegistryClient:
    """Talks to a registry server (``scaleout registry serve``); use as ``async with RegistryClient(url)``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        verify: ssl.SSLContext | bool | None = None,
    ) -> None:
        """``token``: the bearer token to send (default $SCALEOUT_TOKEN or the token file; none without one).
        ``ca_file``: PEM certificates to verify an https server against (default: the system's); ``verify``
        instead gives an SSL context (or False). Both apply only to the HTTP client this one opens."""
        self.base_url = base_url.rstrip("/")
        self._own = client is None
        self._auth = bearer_headers(token)
        try:
            trust = tls_verify(ca_file, verify)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryUnavailable(f"cannot read the CA file {ca_file}: {exc}") from None
        self._http = client or httpx.AsyncClient(timeout=timeout, verify=trust)

    def __repr__(self) -> str:  # never shows the token
        return f"RegistryClient({self.base_url!r}, token={'set' if self._auth else 'none'})"

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (only those this client opened)."""
        if self._own:
            await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs["headers"] = {**self._auth, **kwargs.get("headers", {})}
        if method in ("POST", "PUT", "PATCH"):  # the server takes JSON only, bodyless requests included
            kwargs["headers"] = {"Content-Type": "application/json", **kwargs["headers"]}
        try:
            resp = await self._http.request(method, f"{self.base_url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(
                f"cannot reach the registry at {self.base_url}: {exc.__class__.__name__}: {exc}; "
                "is `scaleout registry serve` running there?"
            ) from None
        if resp.status_code == 204:
            return None
        try:
            payload = resp.json()
        except ValueError:
            raise RegistryError(
                f"the registry at {self.base_url} answered HTTP {resp.status_code}: {resp.text[:200]}"
            ) from None
        if resp.is_error:
            err = payload.get("error", {}) if isinstance(payload, dict) else {}
            cls = getattr(errors, str(err.get("type")), None)
            if not (isinstance(cls, type) and issubclass(cls, RegistryError)):
                cls = RegistryError
            raise cls(err.get("message") or f"HTTP {resp.status_code} from {path}")
        return payload

    async def register_url(
        self,
        url: str,
        *,
        model: ModelInfo | None = None,
        cost: CostHints | None = None,
        agent_id: str | None = None,
        fetch_timeout_s: float = 10.0,
    ) -> AgentRecord:
        """Ask the registry to fetch the card at ``url`` and register it."""
        body = {"url": url, "model": _opt(model), "cost": _opt(cost), "agent_id": agent_id, "timeout": fetch_timeout_s}
        return AgentRecord.model_validate(await self._call("POST", "/agents/register-url", json=body))

    async def register_mcp(
        self, url: str, *, name: str | None = None, model: ModelInfo | None = None, cost: CostHints | None = None
    ) -> AgentRecord:
        """Ask the registry to list the tools of the MCP server at ``url`` and register it."""
        body = {"url": url, "name": name, "model": _opt(model), "cost": _opt(cost)}
        return AgentRecord.model_validate(await self._call("POST", "/agents/register-mcp", json=body))

    async def register_card(
        self,
        card: AgentCard,
        *,
        model: ModelInfo | None = None,
        cost: CostHints | None = None,
        transport: Transport = "a2a",
        skill_schemas: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] | None = None,
        agent_id: str | None = None,
        url: str | None = None,
    ) -> AgentRecord:
        """Register an agent card given as data."""
        reg = Registration(
            card=card,
            model=model,
            cost=cost,
            transport=transport,
            skill_schemas=skill_schemas,
            agent_id=agent_id,
            url=url,
        )
        return await self.register(reg)

    async def register(self, registration: Registration) -> AgentRecord:
        """Register one agent from a full Registration."""
        body = registration.model_dump(mode="json", exclude={"card"}) | {"card": registration.card.wire()}
        return AgentRecord.model_validate(await self._call("POST", "/agents", json=body))

    async def deregister(self, agent_id: str) -> None:
        """Remove an agent."""
        await self._call("DELETE", f"/agents/{agent_id}")

    async def heartbeat(self, agent_id: str) -> None:
        """Report that an agent is alive."""
        await self._call("POST", f"/agents/{agent_id}/heartbeat")

    async def set_status(self, agent_id: str, status: HealthStatus) -> None:
        """Set an agent's health status by hand."""
        await self._call("PUT", f"/agents/{agent_id}/status", json={"status": HealthStatus(status).value})

    async def record_call(self, agent_id: str, *, success: bool, latency_s: float, tokens: int = 0) -> None:
        """Report one observed call of an agent."""
        body = {"success": success, "latency_s": latency_s, "tokens": tokens}
        await self._call("POST", f"/agents/{agent_id}/calls", json=body)

    async def get(self, agent_id: str) -> AgentRecord:
        """The agent with this id (or name)."""
        return AgentRecord.model_validate(await self._call("GET", f"/agents/{agent_id}"))

    async def list(
        self, limit: int = 100, offset: int = 0, *, status: Collection[HealthStatus] | None = None
    ) -> Records:
        """Agents ordered by name, a page at a time."""
        params: Params = [("limit", limit), ("offset", offset)]
        params += [("status", HealthStatus(s).value) for s in status or ()]
        return _RECORDS.validate_python(await self._call("GET", "/agents", params=params))

    async def history(self, agent_id: str) -> Versions:
        """The versions seen for an agent, oldest first."""
        return _VERSIONS.validate_python(await self._call("GET", f"/agents/{agent_id}/history"))

    async def search(
        self,
        skill: str | None = None,
        tags: Sequence[str] | None = None,
        text: str | None = None,
        *,
        status: Collection[HealthStatus] | None = frozenset({HealthStatus.HEALTHY}),
        max_cost: float | None = None,
        max_latency_ms: float | None = None,
        all_tags: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> Records:
        """Ranked search, as ``Registry.search``."""
        params: Params = [("limit", limit), ("offset", offset), ("all_tags", str(all_tags).lower())]
        if skill is not None:
            params.append(("skill", skill))
        params += [("tag", t) for t in tags or ()]
        if text is not None:
            params.append(("q", text))
        params += [("status", HealthStatus(s).value) for s in status] if status is not None else [("status", "any")]
        if max_cost is not None:
            params.append(("max_cost", max_cost))
        if max_latency_ms is not None:
            params.append(("max_latency_ms", max_latency_ms))
        return _RECORDS.validate_python(await self._call("GET", "/search", params=params))
