"""Which scope each route needs, and who the caller is: the access-control half of the HTTP boundary.

A surface declares one ``Rule`` per route (method, path template, scope; ``PUBLIC`` for none). The boundary
resolves the caller's ``Principal`` from its bearer token before the app runs, and refuses: no or bad token 401
(with ``WWW-Authenticate``), missing scope 403 naming it, a route with no rule 404 (deny by default). Handlers read
the principal with ``request_principal``. ``check_rules`` proves at start-up that every route of an app has a rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Mount, Route, compile_path

from protocol.auth import LOCAL_PRINCIPAL, AuthError, AuthSettings, Principal, TokenVerifier
from protocol.hosts import loopback_host

__all__ = [
    "PUBLIC",
    "PRINCIPAL_SCOPE_KEY",
    "Rule",
    "AccessPolicy",
    "request_principal",
    "check_rules",
    "route_paths",
    "access_policy",
    "InsecureBind",
]

PUBLIC = "public"
PRINCIPAL_SCOPE_KEY = "scaleout.principal"
ANY_METHOD = frozenset({"*"})


@dataclass(frozen=True)
class Rule:
    """``methods`` on ``path`` (a Starlette template; a trailing ``/{rest:path}`` covers a subtree) need ``scope``."""

    methods: frozenset[str]
    path: str
    scope: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", compile_path(self.path)[0])

    @classmethod
    def of(cls, methods: str, path: str, scope: str) -> Rule:
        """``Rule.of("GET POST", "/runs", "runs:read")``; ``"*"`` for any method."""
        return cls(frozenset(methods.upper().split()), path, scope)

    def matches(self, method: str, path: str) -> bool:
        return (self.methods is ANY_METHOD or "*" in self.methods or method in self.methods) and bool(
            self._regex.match(path)
        )


class AccessPolicy:
    """Rules of one surface, and how callers authenticate (a token verifier, or anonymous on loopback)."""

    def __init__(
        self,
        rules: Sequence[Rule],
        verifier: TokenVerifier | None = None,
        *,
        anonymous: Principal | None = None,
        realm: str = "scaleout",
        resource_metadata: str | None = None,
    ) -> None:
        if verifier is None and anonymous is None:
            anonymous = LOCAL_PRINCIPAL
        self.rules = list(rules)
        self.verifier = verifier
        self.anonymous = anonymous
        self.realm = realm
        self.resource_metadata = resource_metadata

    def rule(self, method: str, path: str) -> Rule | None:
        method = "GET" if method == "HEAD" else method
        return next((r for r in self.rules if r.matches(method, path)), None)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller of a request with this ``Authorization`` header; AuthError (401) when it proves nobody."""
        if self.verifier is None and self.anonymous is not None:
            return self.anonymous  # no keys: a token proves nothing here, and is not needed
        if not authorization:
            if self.anonymous is not None:
                return self.anonymous
            raise AuthError("this server needs a bearer token: send 'Authorization: Bearer <token>'", error="")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("send the token as 'Authorization: Bearer <token>'", error="invalid_request")
        if self.verifier is None:
            raise AuthError("this server has no keys configured and accepts no tokens")
        return self.verifier.verify(token.strip())

    def challenge(self, error: AuthError) -> str:
        """The ``WWW-Authenticate`` value for a 401 (RFC 6750; RFC 9728 resource metadata when configured)."""
        parts = [f'realm="{self.realm}"']
        if error.error:
            parts.append(f'error="{error.error}"')
            parts.append('error_description="' + str(error).replace('"', "'")[:200] + '"')
        if self.resource_metadata:
            parts.append(f'resource_metadata="{self.resource_metadata}"')
        return "Bearer " + ", ".join(parts)


def request_principal(request: Any) -> Principal:
    """Who made ``request`` (a Starlette Request or an ASGI scope), as the boundary resolved it."""
    scope = request if isinstance(request, dict) else request.scope
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        return LOCAL_PRINCIPAL  # an app served without access control: the trusted, local mode
    return principal  # type: ignore[no-any-return]


def route_paths(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[frozenset[str], str]]:
    """(methods, path template) of every route of an app, mounts included (a mount's own path stands for it)."""
    found: list[tuple[frozenset[str], str]] = []
    for route in routes:
        if isinstance(route, Route):
            found.append((frozenset(route.methods or {"*"}), prefix + route.path))
        elif isinstance(route, Mount):
            inner = getattr(route, "routes", None) or []
            if inner:
                found.extend(route_paths(inner, prefix + route.path))
            else:
                found.append((ANY_METHOD, prefix + route.path))
    return found


def check_rules(routes: Iterable[BaseRoute], rules: Sequence[Rule]) -> None:
    """Raise ValueError naming every route of an app that no rule covers (so none is left open by mistake)."""
    policy = AccessPolicy(rules)
    missing = []
    for methods, path in route_paths(routes):
        sample = re.sub(r"\{[^}:]+(:path)?\}", "x", path) or "/"
        for method in methods - {"HEAD"}:
            if policy.rule("POST" if method == "*" else method, sample) is None:
                missing.append(f"{method} {path}")
    if missing:
        raise ValueError(f"routes without an access rule: {', '.join(sorted(missing))}")


class InsecureBind(ValueError):
    """A server asked to listen beyond loopback with no keys to authenticate callers."""


def access_policy(
    rules: Sequence[Rule], auth: AuthSettings, *, host: str, resource_metadata: str | None = None
) -> AccessPolicy:
    """The access policy of a server bound to ``host``: tokens checked against ``auth``'s keys; with no keys,
    anonymous callers get every scope on loopback only, and any other bind address is refused."""
    verifier = auth.verifier()
    if verifier is None and not loopback_host(host):
        raise InsecureBind(
            f"refusing to serve on {host} without authentication: anyone who can reach it could do anything. "
            "Pass --jwks FILE (make keys with 'scaleout auth keygen'), or bind to 127.0.0.1"
        )
    return AccessPolicy(rules, verifier, resource_metadata=resource_metadata)
