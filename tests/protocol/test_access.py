"""Access control at the boundary: 401 with a challenge, 403 naming the scope, 404 for a route with no rule."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from protocol.access import PUBLIC, AccessPolicy, InsecureBind, Rule, access_policy, check_rules, request_principal
from protocol.auth import AuthError, AuthSettings, KeySet, SigningKey, TokenVerifier
from protocol.boundary import Boundary

pytestmark = pytest.mark.anyio

RULES = [
    Rule.of("GET", "/health", PUBLIC),
    Rule.of("GET", "/runs/{run_id}", "runs:read"),
    Rule.of("POST", "/runs", "runs:submit"),
]


async def _who(request: Request) -> JSONResponse:
    principal = request_principal(request)
    return JSONResponse({"subject": principal.subject, "owner": principal.owner})


ROUTES = [
    Route("/health", _who, methods=["GET"]),
    Route("/runs/{run_id}", _who, methods=["GET"]),
    Route("/runs", _who, methods=["POST"]),
    Route("/hidden", _who, methods=["GET"]),  # no rule: denied by default
]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[SigningKey, KeySet]:
    key = SigningKey.generate()
    return key, KeySet({key.kid: key.key.public_key()})


def _client(access: AccessPolicy) -> httpx.AsyncClient:
    app = Boundary(Starlette(routes=ROUTES), access=access)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")


async def test_tokens_scopes_and_unknown_routes(keys: tuple[SigningKey, KeySet]) -> None:
    key, keyset = keys
    access = AccessPolicy(RULES, TokenVerifier(keyset, audience="orch"), resource_metadata="http://x/meta")
    reader = key.token("alice", ["runs:read"], issuer="i", audience="orch", ttl_s=60, tenant="acme")
    async with _client(access) as client:
        assert (await client.get("/health")).json()["subject"] == "anonymous"
        missing = await client.get("/runs/r1")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith('Bearer realm="scaleout"')
        assert 'resource_metadata="http://x/meta"' in missing.headers["www-authenticate"]
        bad = await client.get("/runs/r1", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
        basic = await client.get("/runs/r1", headers={"Authorization": "Basic dTpw"})
        assert basic.status_code == 401
        auth = {"Authorization": f"Bearer {reader}"}
        ok = await client.get("/runs/r1", headers=auth)
        assert ok.json() == {"subject": "alice", "owner": "tenant:acme"}
        denied = await client.post("/runs", headers={**auth, "content-type": "application/json"}, content=b"{}")
        assert denied.status_code == 403
        assert "runs:submit" in denied.json()["error"]["message"]
        assert (await client.get("/hidden", headers=auth)).status_code == 404


async def test_without_keys_callers_are_the_local_principal() -> None:
    async with _client(access_policy(RULES, AuthSettings(), host="127.0.0.1")) as client:
        assert (await client.get("/runs/r1")).json() == {"subject": "local", "owner": "local"}
        with_token = await client.get("/runs/r1", headers={"Authorization": "Bearer anything"})
        assert with_token.json()["owner"] == "local"  # no keys: a token is neither needed nor checked
        assert (await client.get("/hidden")).status_code == 404


def test_no_keys_beyond_loopback_is_refused() -> None:
    with pytest.raises(InsecureBind, match="--jwks"):
        access_policy(RULES, AuthSettings(), host="0.0.0.0")


def test_every_route_needs_a_rule() -> None:
    with pytest.raises(ValueError, match="GET /hidden"):
        check_rules(ROUTES, RULES)
    check_rules(ROUTES[:3], RULES)
    mounted: list[Any] = [Mount("/mcp", app=_who)]
    with pytest.raises(ValueError, match="/mcp"):
        check_rules(mounted, RULES)
    check_rules(mounted, [Rule.of("*", "/mcp{rest:path}", "agents:call")])


def _scaleout(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "orchestrator.cli", "auth", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_keygen_token_revoke(tmp_path: Path) -> None:
    made = _scaleout("keygen", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    kid = json.loads((tmp_path / "jwks.json").read_text())["keys"][0]["kid"]
    assert kid in made.stdout
    token = _scaleout("token", "--sub", "orch", "--scope", "runs:read", "--aud", "reg", "--ttl", "60", cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    verifier = TokenVerifier(KeySet.load(tmp_path / "jwks.json"), audience="reg", issuer="scaleout")
    assert verifier.verify(token.stdout.strip()).subject == "orch"
    assert _scaleout("revoke", kid, cwd=tmp_path).returncode == 0
    assert kid in KeySet.load(tmp_path / "jwks.json").revoked
    assert _scaleout("revoke", "nope", cwd=tmp_path).returncode == 2
    assert _scaleout("keygen", cwd=tmp_path).returncode == 2  # never overwrites a private key


def test_a_running_verifier_picks_up_a_revocation(tmp_path: Path) -> None:
    assert _scaleout("keygen", cwd=tmp_path).returncode == 0
    key = SigningKey.load(tmp_path / "signing-key.pem")
    verifier = TokenVerifier(KeySet.load(tmp_path / "jwks.json"), audience="scaleout")
    token = key.token("orch", ["runs:read"], issuer="scaleout", audience="scaleout", ttl_s=600)
    assert verifier.verify(token).subject == "orch"
    assert _scaleout("revoke", key.kid, cwd=tmp_path).returncode == 0
    verifier.keys.refresh(now=time.monotonic() + 5)  # the once-a-second check, without waiting a second
    with pytest.raises(AuthError, match="revoked"):
        verifier.verify(token)
