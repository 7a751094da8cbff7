"""Every route of every surface, generated from the apps' own routes (a new route cannot be forgotten), against
seven credentials: none, malformed, expired, wrong audience, revoked key, wrong scope, right scope ->
401, 401, 401, 401, 401, 403, and neither 401 nor 403 (nor a 5xx) with the right one."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agents.examples import echo_agent
from agents.serve import ACCESS_RULES as AGENT_RULES
from agents.serve import create_app as agent_app
from agents.testing import serve_in_thread
from orchestrator.api import ACCESS_RULES as ORCHESTRATOR_RULES
from orchestrator.api import create_app as orchestrator_app
from orchestrator.service import Orchestrator
from protocol.access import PUBLIC, AccessPolicy, Rule, route_paths
from protocol.auth import SCOPES, AuthSettings, SigningKey
from registry import Registry
from registry.api import ACCESS_RULES as REGISTRY_RULES
from registry.api import create_app as registry_app

AUDIENCE = "scaleout"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("access")
    key, revoked = SigningKey.generate(), SigningKey.generate()
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk(), revoked.jwk()], "revoked": [revoked.kid]}))
    auth = AuthSettings(jwks_file=jwks, audience=AUDIENCE)
    db = f"sqlite:///{tmp / 'scaleout.db'}"
    registry = Registry(db)
    apps = {
        "agent": (agent_app(echo_agent("echo"), auth=auth), AGENT_RULES),
        "registry": (registry_app(registry, auth=auth), REGISTRY_RULES),
        "orchestrator": (orchestrator_app(Orchestrator(registry, db), auth=auth), ORCHESTRATOR_RULES),
    }
    with serve_in_thread(apps["agent"][0]) as a, serve_in_thread(apps["registry"][0]) as r:
        with serve_in_thread(apps["orchestrator"][0]) as o:
            yield {"key": key, "revoked": revoked, "apps": apps, "urls": {"agent": a, "registry": r, "orchestrator": o}}
    registry.close()


def _cases() -> list[tuple[str, str, str, str]]:
    """(surface, method, concrete path, scope) for every non-public route of every surface."""
    cases = []
    for surface, rules in (("agent", AGENT_RULES), ("registry", REGISTRY_RULES), ("orchestrator", ORCHESTRATOR_RULES)):
        policy = AccessPolicy(rules)
        for methods, template in route_paths(_routes(surface)):
            path = re.sub(r"\{[^}]+:path\}", "", template)
            path = re.sub(r"\{[^}]+\}", "x", path) or "/"
            for method in sorted(methods - {"HEAD"}):
                method = "POST" if method == "*" else method
                rule = policy.rule(method, path)
                assert rule is not None, f"{surface}: {method} {template} has no access rule"
                if rule.scope != PUBLIC:
                    cases.append((surface, method, path, rule.scope))
    return cases


def _routes(surface: str) -> list[Any]:
    """The routes of a surface's app as built without keys (the same routes as with)."""
    if surface == "agent":
        app: Any = agent_app(echo_agent("echo"))
    elif surface == "registry":
        app = registry_app(Registry("sqlite://"))
    else:
        app = orchestrator_app(Orchestrator(Registry("sqlite://"), "sqlite://"))
    return list(app.app.routes)


CASES = _cases()
CREDENTIALS = ["none", "malformed", "expired", "wrong audience", "revoked", "wrong scope", "right scope"]


def _token(world: dict[str, Any], kind: str, scope: str) -> str | None:
    key: SigningKey = world["key"]
    other = next(s for s in SCOPES if s not in (scope, "admin"))
    now = time.time()
    match kind:
        case "none":
            return None
        case "malformed":
            return "not.a.jwt"
        case "expired":
            return key.token("u", [scope], issuer="scaleout", audience=AUDIENCE, ttl_s=60, now=now - 3600)
        case "wrong audience":
            return key.token("u", [scope], issuer="scaleout", audience="someone-else", ttl_s=600)
        case "revoked":
            return world["revoked"].token("u", [scope], issuer="scaleout", audience=AUDIENCE, ttl_s=600)
        case "wrong scope":
            return key.token("u", [other], issuer="scaleout", audience=AUDIENCE, ttl_s=600)
        case _:
            return key.token("u", [scope], issuer="scaleout", audience=AUDIENCE, ttl_s=600)


def test_every_surface_has_routes_under_rules() -> None:
    surfaces = {surface for surface, *_ in CASES}
    assert surfaces == {"agent", "registry", "orchestrator"}
    assert len(CASES) >= 15


@pytest.mark.parametrize(("surface", "method", "path", "scope"), CASES, ids=[f"{c[0]} {c[1]} {c[2]}" for c in CASES])
def test_credentials_on_every_route(world: dict[str, Any], surface: str, method: str, path: str, scope: str) -> None:
    base = world["urls"][surface]
    got = []
    with httpx.Client(timeout=30) as client:
        for kind in CREDENTIALS:
            token = _token(world, kind, scope)
            headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
            headers["A2A-Version"] = "1.0"
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            if method == "GET" and path.endswith("/events"):
                headers["Last-Event-ID"] = "0"
            resp = client.request(method, base + path, content=body, headers=headers)
            got.append(resp.status_code)
            if kind != "right scope" and resp.status_code == 401:
                assert resp.headers["www-authenticate"].startswith("Bearer"), resp.headers
    assert got[:6] == [401, 401, 401, 401, 401, 403], (surface, method, path, got)
    assert got[6] not in (401, 403) and got[6] < 500, (surface, method, path, got)


def test_rules_cover_what_the_docs_promise() -> None:
    scopes = {r.scope for r in [*AGENT_RULES, *REGISTRY_RULES, *ORCHESTRATOR_RULES]}
    assert {"agents:call", "registry:read", "registry:write", "registry:report"} <= scopes
    assert {"runs:submit", "runs:read", "runs:cancel"} <= scopes
    assert all(isinstance(r, Rule) for r in AGENT_RULES)
