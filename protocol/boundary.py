"""The one HTTP boundary every scaleout surface sits behind (agents' A2A and MCP, registry, orchestrator).

``Boundary`` is ASGI middleware wrapped around a whole app, so no route can skip it. Per request it checks, in
order: the ``Host`` header (421 for a host this server does not answer to: DNS rebinding), the ``Origin`` header
(403 for a foreign web page), the content type of every POST/PUT/PATCH (415 unless JSON: a cross-site
``text/plain`` form cannot reach a handler), the body size (413, streamed, never buffered past the cap), the
body's arrival time (408), and the JSON itself (400 for bad JSON, bad UTF-8 or nesting past the depth limit).
The parsed body is handed to the app; ``request_json`` reads it without a second parse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import from_json, to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol.access import PRINCIPAL_SCOPE_KEY, PUBLIC, AccessPolicy
from protocol.auth import AuthError, Principal
from protocol.hosts import loopback_host

__all__ = [
    "BoundaryPolicy",
    "Boundary",
    "BoundaryRejection",
    "ErrorRenderer",
    "JSON_SCOPE_KEY",
    "NO_BODY",
    "json_depth",
    "loopback_host",
    "render_rest_error",
    "request_json",
]

JSON_SCOPE_KEY = "scaleout.json"
NO_BODY: Any = object()  # what request_json returns for an empty body
_HUGE_NUMBER = re.compile(rb"[0-9](?:[eE]\+?[0-9]{3}|[0-9]{299})")  # what could parse to an infinite float
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class BoundaryRejection(Exception):
    """A request refused at the boundary: HTTP status, a short kind and a message saying how to fix it."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers or {}


ErrorRenderer = Callable[[BoundaryRejection], bytes]


def render_rest_error(rejection: BoundaryRejection) -> bytes:
    """The REST surfaces' error body: ``{"error": {"type": ..., "message": ...}}``."""
    return to_json({"error": {"type": rejection.kind, "message": rejection.message}})


class BoundaryPolicy(BaseModel):
    """Limits and allow-lists of one HTTP surface. ``for_bind`` derives the lists from the bind address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_hosts: tuple[str, ...] = Field(
        default=tuple(f"{h}:*" for h in _LOOPBACK_NAMES),
        description="Host header values answered: 'host:port', 'host:*' (any port) or 'host'; '*' allows any",
    )
    allowed_origins: tuple[str, ...] = Field(
        default=(),
        description="Origin values accepted besides http(s):// of each allowed host; '*' allows any",
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1, le=1 << 31)
    max_json_depth: int = Field(default=64, ge=1, le=190)

    @classmethod
    def for_bind(
        cls,
        host: str,
        port: int | None = None,
        *,
        public_url: str | None = None,
        allow_hosts: Iterable[str] = (),
        allow_origins: Iterable[str] = (),
        **limits: Any,
    ) -> BoundaryPolicy:
        """The policy of a server bound to ``host``: its loopback names, the bind host and the public URL's host."""
        hosts = [f"{h}:*" for h in _LOOPBACK_NAMES]
        if host and host not in ("0.0.0.0", "::", "") and not loopback_host(host):
            hosts.append(f"{_bracket(host)}:{port}" if port else f"{_bracket(host)}:*")
        if public_url:
            from urllib.parse import urlsplit

            parts = urlsplit(public_url)
            if parts.hostname:
                hosts.append(f"{_bracket(parts.hostname)}:{parts.port or '*'}")
                if parts.port is None:
                    hosts.append(_bracket(parts.hostname))
        hosts.extend(allow_hosts)
        return cls(allowed_hosts=tuple(dict.fromkeys(hosts)), allowed_origins=tuple(allow_origins), **limits)

    def host_allowed(self, host: str | None) -> bool:
        """True when this server answers to ``host`` (a Host header value)."""
        if not host:
            return False
        name, port = _split_host(host)
        for allowed in self.allowed_hosts:
            if allowed == "*":
                return True
            allowed_name, allowed_port = _split_host(allowed)
            if allowed_name == name and allowed_port in ("*", port):
                return True
        return False

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.lower()
        if "*" in self.allowed_origins or origin in (o.lower() for o in self.allowed_origins):
            return True
        scheme, sep, rest = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and "/" not in rest and self.host_allowed(rest)


def _split_host(value: str) -> tuple[str, str]:
    """('name', 'port') of 'name:port', '[v6]:port' or 'name' (port '' when absent)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[: end + 1], value[end + 1 :]
        return name, rest[1:] if rest.startswith(":") else ""
    name, _, port = value.partition(":")
    return name, port


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, counting stops one past ``limit`` (an iterative walk)."""
    return _scan(value, limit)[0]


def _scan(value: Any, limit: int) -> tuple[int, bool]:
    """(nesting depth, stopping one past ``limit``; whether a number is infinite, as ``1e400`` parses)."""
    if not isinstance(value, dict | list):
        return 0, type(value) is float and not math.isfinite(value)
    deepest, infinite = 0, False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any] = item.values() if isinstance(item, dict) else item
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest, infinite
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif type(child) is float and not math.isfinite(child):
                infinite = True
    return deepest, infinite


def request_json(request: Any) -> Any:
    """The JSON body the boundary parsed for ``request`` (a Starlette Request or an ASGI scope), or NO_BODY."""
    scope = request if isinstance(request, dict) else request.scope
    if JSON_SCOPE_KEY not in scope:
        raise RuntimeError("this app is not behind protocol.boundary.Boundary; wrap it so bodies are checked")
    return scope[JSON_SCOPE_KEY]


def _json_content_type(raw: str) -> bool:
    media = raw.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class Boundary:
    """ASGI middleware enforcing a ``BoundaryPolicy`` on every HTTP request before the app sees it."""

    def __init__(
        self,
        app: ASGIApp,
        policy: BoundaryPolicy | None = None,
        *,
        render: ErrorRenderer = render_rest_error,
        access: AccessPolicy | None = None,
    ) -> None:
        self.app = app
        self.policy = policy or BoundaryPolicy()
        self.render = render
        self.access = access
        self._verdicts: dict[tuple[str, str], bool] = {}  # (header, value) -> allowed; bounded below

    def _allowed(self, header: str, value: str) -> bool:
        verdict = self._verdicts.get((header, value))
        if verdict is None:
            check = self.policy.host_allowed if header == "host" else self.policy.origin_allowed
            verdict = check(value)
            if len(self._verdicts) < 1024:
                self._verdicts[(header, value)] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            headers = _headers(scope)
            self._check_headers(scope, headers)
            if self.access is not None:
                scope[PRINCIPAL_SCOPE_KEY] = self._authorize(self.access, scope, headers)
            if scope["method"] in _BODY_METHODS:
                body = await self._read_body(headers, receive)
                scope[JSON_SCOPE_KEY] = self._parse(body)
                receive = _replay(body, receive)
            else:
                scope[JSON_SCOPE_KEY] = NO_BODY
        except BoundaryRejection as rejection:
            await self._reject(rejection, send)
            return
        await self.app(scope, receive, send)

    def _authorize(self, access: AccessPolicy, scope: Scope, headers: dict[str, str]) -> Principal:
        method, path = scope["method"], scope["path"]
        rule = access.rule(method, path)
        if rule is None:  # deny by default: a route nobody gave a rule to does not exist for callers
            raise BoundaryRejection(404, "NotFound", f"no route {method} {path[:200]}")
        authorization = headers.get("authorization")
        if rule.scope == PUBLIC:
            try:
                return access.authenticate(authorization)
            except AuthError:
                return Principal(subject="anonymous", authenticated=False)
        try:
            principal = access.authenticate(authorization)
        except AuthError as exc:
            challenge = {"www-authenticate": access.challenge(exc)}
            raise BoundaryRejection(401, "Unauthorized", str(exc), challenge) from None
        if not principal.has(rule.scope):
            raise BoundaryRejection(
                403,
                "InsufficientScope",
                f"{method} {path[:200]} needs the scope {rule.scope!r}, which the caller's token does not hold",
                {"www-authenticate": f'Bearer error="insufficient_scope", scope="{rule.scope}"'},
            )
        return principal

    def _check_headers(self, scope: Scope, headers: dict[str, str]) -> None:
        host = headers.get("host")
        if host is None or not self._allowed("host", host):
            raise BoundaryRejection(
                421,
                "MisdirectedRequest",
                f"this server does not answer to Host {str(host)[:100]!r}; "
                "add it to the server's allowed hosts (--allow-host) if it is really this server's name",
            )
        origin = headers.get("origin")
        if origin is not None and not self._allowed("origin", origin):
            raise BoundaryRejection(
                403,
                "ForbiddenOrigin",
                f"requests from web pages at {origin[:100]!r} are not accepted; "
                "allow that origin in the server's configuration (--allow-origin) if it is trusted",
            )
        if scope["method"] in _BODY_METHODS and not _json_content_type(headers.get("content-type", "")):
            got = headers.get("content-type") or "none"
            raise BoundaryRejection(
                415,
                "UnsupportedMediaType",
                f"Content-Type {got[:100]!r} is not accepted; send the body as JSON with "
                "'Content-Type: application/json'",
            )

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.policy.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit, int(declared))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BoundaryRejection(400, "ClientDisconnected", "the client went away before sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, None)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _parse(self, body: bytes) -> Any:
        if not body.strip():
            return NO_BODY
        try:
            value = from_json(body.removeprefix(b"\xef\xbb\xbf"), allow_inf_nan=False)
        except ValueError as exc:
            reason = str(exc)
            if "recursion limit" in reason:
                raise _too_deep(self.policy.max_json_depth) from None
            raise BoundaryRejection(400, "InvalidJSON", f"the body is not valid UTF-8 JSON: {reason}") from None
        limit = self.policy.max_json_depth
        if body.count(b"[") + body.count(b"{") <= limit and not _HUGE_NUMBER.search(body):
            return value  # it cannot nest deeper than it has brackets, and holds no number that overflows
        depth, infinite = _scan(value, limit)
        if depth > limit:
            raise _too_deep(self.policy.max_json_depth)
        if infinite:
            raise BoundaryRejection(400, "InvalidJSON", "the body holds a number too large for a float (e.g. 1e400)")
        return value

    async def _reject(self, rejection: BoundaryRejection, send: Send) -> None:
        body = self.render(rejection)
        await send(
            {
                "type": "http.response.start",
                "status": rejection.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    *((k.encode(), v.encode()) for k, v in rejection.headers.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _too_large(limit: int, declared: int | None) -> BoundaryRejection:
    what = f"{declared} bytes" if declared is not None else "the body"
    return BoundaryRejection(
        413, "PayloadTooLarge", f"{what} is over this server's limit of {limit} bytes; send less, or split the request"
    )


def _too_deep(limit: int) -> BoundaryRejection:
    return BoundaryRejection(400, "JSONTooDeep", f"the JSON body nests deeper than {limit} levels; flatten it")


_WANTED = frozenset({b"host", b"origin", b"content-type", b"content-length", b"authorization"})


def _headers(scope: Scope) -> dict[str, str]:
    """The headers the boundary reads (ASGI servers give names in lower case); the first of repeats counts."""
    out: dict[str, str] = {}
    for key, value in scope["headers"]:
        if key in _WANTED:
            out.setdefault(key.decode(), value.decode("latin-1"))
    return out


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
