"""Discovery: read an A2A Agent Card from a URL, or list an MCP server's tools, and register the result.

Every fetch of a URL connects through ``protocol.egress`` (``http_client`` / ``mcp_http_client`` below, the one
place the registry opens outbound HTTP connections): the host is resolved and its address checked against an
``EgressPolicy`` before any connection. Card fetches follow at most ``MAX_REDIRECTS`` redirects, only within the
same scheme, host and port; the whole fetch is bounded by its timeout and the card by ``MAX_CARD_BYTES``. A stdio
MCP server is started only when its command is in the caller's ``StdioAllowlist``. Failures become
CardFetchError / CardValidationError / McpDiscoveryError with the URL and a hint how to fix it.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx
import httpx2  # type: ignore[import-not-found]  # the MCP SDK's HTTP client
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError
from pydantic_core import from_json

from protocol.a2a import AGENT_CARD_PATH, AgentCard, AgentInterface, AgentSkill
from protocol.a2a_v03_card import card_from_v03
from protocol.egress import EgressPolicy, guard_transport, guarded_client
from protocol.signing import SignatureError, verify_card
from protocol.validation import describe_validation_error
from registry.errors import CardFetchError, CardValidationError, McpDiscoveryError
from registry.models import AgentRecord, CardTrust, CostHints, ModelInfo, Registration, StdioRegistration
from registry.stdio import STDIO_SCHEME, StdioAllowlist, StdioNotAllowed
from registry.store import Registry

__all__ = [
    "MAX_CARD_BYTES",
    "MAX_MCP_RESPONSE_BYTES",
    "MAX_REDIRECTS",
    "card_url_for",
    "parse_card",
    "http_client",
    "mcp_http_client",
    "fetch_card",
    "fetch_verified_card",
    "verify_fetched_card",
    "mcp_target",
    "describe_mcp",
    "probe_mcp",
    "ping_mcp",
    "register_url",
    "register_mcp",
]

MAX_CARD_BYTES = 1_000_000
MAX_MCP_RESPONSE_BYTES = 10_000_000
MAX_REDIRECTS = 3
McpTarget = str | Sequence[str] | StdioServerParameters


def http_client(egress: EgressPolicy, timeout_s: float) -> httpx.AsyncClient:
    """The HTTP client of every card fetch: connects only where ``egress`` allows and follows no redirect itself."""
    return guarded_client(egress, timeout_s=timeout_s)


def mcp_http_client(egress: EgressPolicy, timeout_s: float, statuses: list[int] | None = None) -> Any:
    """The MCP SDK's HTTP client (httpx2) for MCP discovery and probes: guarded by ``egress`` the same way, and
    each response capped at MAX_MCP_RESPONSE_BYTES (the SDK reads JSON responses whole). ``statuses`` collects
    the HTTP status of every response (the SDK turns a 401 into a plain error without it)."""
    transport = _CappedTransport(guard_transport(httpx2.AsyncHTTPTransport(), egress), MAX_MCP_RESPONSE_BYTES)
    hooks: dict[str, list[Any]] = {}
    if statuses is not None:

        async def record(response: Any) -> None:
            statuses.append(response.status_code)

        hooks["response"] = [record]
    return httpx2.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False, event_hooks=hooks)


class _CappedTransport(httpx2.AsyncBaseTransport):  # type: ignore[misc]
    """An httpx2 transport whose response bodies end in an error past ``limit`` bytes."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner, self.limit = inner, limit

    async def handle_async_request(self, request: Any) -> Any:
        response = await self.inner.handle_async_request(request)
        response.stream = _CappedStream(response.stream, self.limit, str(request.url))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> _CappedTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)


class _CappedStream(httpx2.AsyncByteStream):  # type: ignore[misc]
    def __init__(self, inner: Any, limit: int, url: str) -> None:
        self.inner, self.limit, self.url = inner, limit, url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.inner:
            seen += len(chunk)
            if seen > self.limit:
                raise httpx2.ReadError(f"the response of {self.url} is larger than {self.limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


def card_url_for(url: str) -> str:
    """Where the card of the agent at ``url`` is served (``url`` itself when it already names a .json)."""
    if url.split("?", 1)[0].endswith(".json"):
        return url
    return url.rstrip("/") + AGENT_CARD_PATH


def parse_card(payload: bytes | str | dict[str, Any], source: str = "the request") -> AgentCard:
    """Validate an Agent Card (JSON text or dict); raises CardValidationError naming the bad fields."""
    try:
        data = from_json(payload) if isinstance(payload, bytes | str) else payload
    except ValueError as exc:
        raise CardValidationError(f"the agent card from {source} is not JSON: {exc}") from None
    try:
        return AgentCard.model_validate(card_from_v03(data) if isinstance(data, dict) else data)  # 0.3 cards too
    except ValidationError as exc:
        details = describe_validation_error(exc, limit=8)
        raise CardValidationError(
            f"the agent card from {source} is not a valid A2A 1.0 (or 0.3) Agent Card: {details}"
        ) from None


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        return None


async def _get_card(client: httpx.AsyncClient, url: str) -> tuple[bytes, str]:
    """GET the card at ``url``, following up to MAX_REDIRECTS redirects on the same origin; body and final URL."""
    where = url
    for hop in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", where, headers={"Accept": "application/json"}) as resp:
            if resp.is_redirect:
                target = urljoin(where, resp.headers["location"])
                if _origin(target) is None or _origin(target) != _origin(url):
                    raise CardFetchError(
                        f"GET {where} redirected to {target[:300]}, another scheme, host or port; the registry "
                        f"follows redirects only on the same origin: register {target[:300]} itself if you trust it"
                    )
                if hop == MAX_REDIRECTS:
                    raise CardFetchError(f"GET {url} redirected more than {MAX_REDIRECTS} times; register the end URL")
                where = target
                continue
            if resp.status_code != 200:
                raise CardFetchError(
                    f"GET {where} answered HTTP {resp.status_code}; an A2A agent serves its card at "
                    f"<base URL>{AGENT_CARD_PATH}"
                )
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_CARD_BYTES:
                    raise CardValidationError(f"the agent card at {where} is larger than 1 MB")
            return bytes(body), where
    raise AssertionError("unreachable")


async def fetch_card(url: str, *, timeout_s: float = 10.0, egress: EgressPolicy | None = None) -> tuple[AgentCard, str]:
    """Fetch and validate the card of the agent at ``url``; returns the card and the URL it came from.

    ``egress`` says which addresses may be reached (default ``EgressPolicy()``: public and loopback addresses).
    """
    body, where = await _fetch_body(url, timeout_s, egress)
    return parse_card(body, where), where


async def fetch_verified_card(
    url: str, *, timeout_s: float = 10.0, egress: EgressPolicy | None = None
) -> tuple[AgentCard, str, CardTrust]:
    """Fetch, validate and verify the card of the agent at ``url``: the card, where it came from, and what its
    signature proves (``CardTrust.verified`` false with the reason in ``error`` when it has none or none holds)."""
    body, where = await _fetch_body(url, timeout_s, egress)
    card = parse_card(body, where)
    return card, where, await verify_fetched_card(from_json(body), where, timeout_s=timeout_s, egress=egress)


async def verify_fetched_card(
    raw: Any, where: str, *, timeout_s: float = 10.0, egress: EgressPolicy | None = None
) -> CardTrust:
    """Verify the signatures of a card as fetched from ``where`` (its JSON, not a re-serialised model: fields
    the registry does not model are signed too). A signature naming a JWKS (``jku``) on the card's own origin
    must verify with a key published there; otherwise the key in its protected header is used."""
    if not isinstance(raw, dict) or not raw.get("signatures"):
        return CardTrust(error="the card is not signed")
    published: dict[str, dict[str, Any] | None] = {}
    for entry in raw["signatures"][:16] if isinstance(raw["signatures"], list) else []:
        jku = _jku_of(entry)
        if jku is not None and jku not in published and _origin(jku) == _origin(where):
            published[jku] = await _fetch_jwks(jku, timeout_s, egress)

    def resolve(kid: str | None, jku: str | None) -> dict[str, Any] | None:
        if jku is None or jku not in published:
            return None
        document = published[jku]
        if document is None:
            raise SignatureError(f"the signature names the key set {jku}, which could not be read")
        keys = [k for k in document.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
        if not keys:
            raise SignatureError(f"the key {kid!r} the signature names is not published at {jku}")
        return keys[0]

    try:
        verified = verify_card(raw, resolve)
    except SignatureError as exc:
        return CardTrust(error=str(exc))
    return CardTrust(verified=True, kid=verified.kid, fingerprint=verified.fingerprint)


def _jku_of(entry: Any) -> str | None:
    try:
        protected = entry["protected"]
        header = from_json(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    except (KeyError, TypeError, ValueError):
        return None
    jku = header.get("jku") if isinstance(header, dict) else None
    return jku if isinstance(jku, str) and jku.startswith(("http://", "https://")) else None


async def _fetch_jwks(url: str, timeout_s: float, egress: EgressPolicy | None) -> dict[str, Any] | None:
    """The JWKS document at ``url`` (same origin as the card, checked by the caller), or None if unreadable."""
    try:
        with anyio.fail_after(timeout_s):
            async with http_client(egress or EgressPolicy(), timeout_s) as client:
                body, _ = await _get_card(client, url)
        document = from_json(body)
    except (TimeoutError, httpx.HTTPError, OSError, ValueError, CardFetchError, CardValidationError):
        return None
    return document if isinstance(document, dict) else None


async def _fetch_body(url: str, timeout_s: float, egress: EgressPolicy | None) -> tuple[bytes, str]:
    where = card_url_for(url)
    if not where.startswith(("http://", "https://")):
        raise CardFetchError(f"{url!r} is not an http(s) URL; pass the agent's base URL or its card URL")
    try:
        with anyio.fail_after(timeout_s):
            async with http_client(egress or EgressPolicy(), timeout_s) as client:
                body, where = await _get_card(client, where)
    except (TimeoutError, httpx.TimeoutException):
        raise CardFetchError(
            f"timed out after {timeout_s:g} s fetching {where}; is the agent running and reachable?"
        ) from None
    except (httpx.HTTPError, OSError) as exc:
        if "egress refused" in str(exc):
            raise CardFetchError(f"refused to fetch {where}: {exc}") from None
        raise CardFetchError(
            f"cannot fetch {where}: {exc.__class__.__name__}: {exc}; check the URL and that the agent is up"
        ) from None
    return body, where


def mcp_target(target: McpTarget) -> tuple[str | StdioServerParameters, str]:
    """What the MCP client connects to, and the registry URL for it (mcp+http://... or mcp+stdio:...)."""
    if isinstance(target, StdioServerParameters):
        return target, STDIO_SCHEME + shlex.join([target.command, *target.args])
    if isinstance(target, str):
        plain = target.removeprefix("mcp+")
        if plain.startswith(("http://", "https://")):
            return plain, "mcp+" + plain
        if plain.startswith("stdio:"):
            try:
                target = shlex.split(plain.removeprefix("stdio:"))
            except ValueError as exc:
                raise McpDiscoveryError(f"cannot read the command line {target!r}: {exc}") from None
        else:
            raise McpDiscoveryError(
                f"unknown MCP target {target!r}; use http(s)://host/mcp, or stdio:'command args' "
                "(or a list of command words)"
            )
    words = list(target)
    if not words:
        raise McpDiscoveryError("an MCP stdio command needs at least the program to run")
    return StdioServerParameters(command=words[0], args=words[1:]), STDIO_SCHEME + shlex.join(words)


@asynccontextmanager
async def _connect(
    server: str | StdioServerParameters,
    timeout_s: float,
    egress: EgressPolicy | None,
    allow: StdioAllowlist | None,
    statuses: list[int] | None = None,
) -> AsyncIterator[Client]:
    """An MCP client session: over guarded HTTP, or a stdio process started only when ``allow`` names it."""
    if isinstance(server, StdioServerParameters):
        try:
            (allow if allow is not None else StdioAllowlist()).check([server.command, *server.args])
        except StdioNotAllowed as exc:
            raise McpDiscoveryError(str(exc)) from None
        async with Client(server, read_timeout_seconds=timeout_s) as client:
            yield client
        return
    async with mcp_http_client(egress or EgressPolicy(), timeout_s, statuses) as http:
        transport = streamable_http_client(server, http_client=http)
        async with Client(transport, read_timeout_seconds=timeout_s) as client:  # type: ignore[arg-type]
            yield client


async def describe_mcp(
    target: McpTarget,
    *,
    name: str | None = None,
    timeout_s: float = 20.0,
    egress: EgressPolicy | None = None,
    stdio_allowlist: StdioAllowlist | None = None,
) -> Registration:
    """Connect to an MCP server, list its tools, and describe it as a Registration (tools become skills).

    An HTTP server is reached only where ``egress`` allows; a stdio command is started only when
    ``stdio_allowlist`` names it (none is, without one), and its description is a ``StdioRegistration``.
    """
    server, url = mcp_target(target)
    tools: list[Any] = []
    try:
        with anyio.fail_after(timeout_s):
            async with _connect(server, timeout_s, egress, stdio_allowlist) as client:
                info = client.server_info
                instructions = client.instructions
                cursor: str | None = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools += page.tools
                    cursor = page.next_cursor
                    if not cursor or len(tools) > 1000:
                        break
    except McpDiscoveryError:
        raise
    except TimeoutError:
        raise McpDiscoveryError(
            f"the MCP server {url} did not list its tools within {timeout_s:g} s; is it running?"
        ) from None
    except Exception as exc:  # noqa: BLE001 - transport errors come in many shapes (OSError, groups, MCPError)
        raise McpDiscoveryError(f"cannot list the tools of the MCP server {url}: {_reason(exc)}") from None
    server_name = name or (info.name if info and info.name else None)
    if not server_name:
        raise McpDiscoveryError(f"the MCP server {url} did not give a name; pass name=...")
    description = (info.description if info else None) or instructions or f"MCP server {server_name}"
    kind = Registration if isinstance(server, str) else StdioRegistration
    try:
        card = AgentCard(
            name=server_name[:200],
            description=description[:10_000],
            version=((info.version if info else None) or "0")[:100],
            supported_interfaces=[AgentInterface(url=url, protocol_binding="MCP")],
            skills=[
                AgentSkill(
                    id=t.name,
                    name=(t.title or t.name)[:200],
                    description=(t.description or "")[:10_000],
                    tags=["mcp"],
                )
                for t in tools
            ],
        )
        schemas = {t.name: (t.input_schema, t.output_schema) for t in tools}
        return kind(card=card, transport="mcp", url=url, skill_schemas=schemas)
    except ValidationError as exc:
        raise CardValidationError(
            f"the MCP server {url} describes itself in a way the registry cannot store: "
            f"{describe_validation_error(exc)}"
        ) from None


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{exc.__class__.__name__}: {exc}"


async def probe_mcp(
    url: str,
    *,
    timeout_s: float = 10.0,
    egress: EgressPolicy | None = None,
    stdio_allowlist: StdioAllowlist | None = None,
) -> str | None:
    """None when the MCP server registered under ``url`` answers within ``timeout_s``, else why not.

    The probe connects and lists the first page of tools (``ping`` is gone from the 2026-07-28 protocol). A
    server that answers 401 or 403 is up: it refused the registry, which holds no token for it (liveness is
    what the sweep checks; who may call the tools is the server's business).
    """
    statuses: list[int] = []
    try:
        server, _ = mcp_target(url)
        with anyio.fail_after(timeout_s):
            async with _connect(server, timeout_s, egress, stdio_allowlist, statuses) as client:
                await client.list_tools()
        return None
    except McpDiscoveryError as exc:
        return str(exc)
    except TimeoutError:
        return f"the MCP server {url} did not answer within {timeout_s:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure is a failed probe
        if statuses and statuses[-1] in (401, 403):
            return None  # it answered, and asks for credentials
        return f"the MCP server {url} does not answer: {_reason(exc)}"


async def ping_mcp(
    url: str,
    *,
    timeout_s: float = 10.0,
    egress: EgressPolicy | None = None,
    stdio_allowlist: StdioAllowlist | None = None,
) -> bool:
    """True when the MCP server registered under ``url`` answers within ``timeout_s`` (see probe_mcp)."""
    reason = await probe_mcp(url, timeout_s=timeout_s, egress=egress, stdio_allowlist=stdio_allowlist)
    return reason is None


async def register_url(
    registry: Registry,
    url: str,
    *,
    model: ModelInfo | None = None,
    cost: CostHints | None = None,
    agent_id: str | None = None,
    timeout_s: float = 10.0,
    egress: EgressPolicy | None = None,
    owner: str | None = None,
    admin: bool = False,
) -> AgentRecord:
    """Fetch the agent card at ``url``, validate it and register it (idempotent; ``owner`` and ``admin`` as for
    ``Registry.register``). The card's signature is verified on every call (add or refresh) and recorded: see
    ``Registry.register``'s ``trust``."""
    card, where, trust = await fetch_verified_card(url, timeout_s=timeout_s, egress=egress)
    try:
        reg = Registration(card=card, model=model, cost=cost, agent_id=agent_id, card_url=where)
    except ValidationError as exc:
        raise CardValidationError(
            f"the agent card at {where} cannot be registered: {describe_validation_error(exc)}"
        ) from None
    return await anyio.to_thread.run_sync(partial(registry.register, reg, owner=owner, admin=admin, trust=trust))


async def register_mcp(
    registry: Registry,
    target: McpTarget,
    *,
    name: str | None = None,
    model: ModelInfo | None = None,
    cost: CostHints | None = None,
    timeout_s: float = 20.0,
    egress: EgressPolicy | None = None,
    stdio_allowlist: StdioAllowlist | None = None,
    owner: str | None = None,
    admin: bool = False,
) -> AgentRecord:
    """List an MCP server's tools and register it, each tool a skill with its input/output schemas (``owner``
    and ``admin`` as for ``Registry.register``)."""
    reg = await describe_mcp(target, name=name, timeout_s=timeout_s, egress=egress, stdio_allowlist=stdio_allowlist)
    reg = reg.model_copy(update={"model": model, "cost": cost})
    return await anyio.to_thread.run_sync(partial(registry.register, reg, owner=owner, admin=admin))
