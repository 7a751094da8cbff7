"""Access control on the orchestrator, over real HTTP on loopback: every route against every kind of bad token,
tenants that cannot see each other's runs, MCP tools that check their own scopes, the orchestrator calling
authenticated agents with its own token, TLS both ways, the owner column's migration, and the serve command
refusing an unauthenticated bind beyond loopback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
import sqlalchemy as sa
import trustme
from alembic import command
from alembic.config import Config

from agents.mcp_client import McpToolClient, McpToolError
from agents.negotiators import Negotiator, Preferences, negotiator_agent
from agents.serve import create_app as agent_app
from agents.testing import free_port, serve_in_thread
from orchestrator import tables
from orchestrator.api import ACCESS_RULES, create_app
from orchestrator.cli import build_parser, main, serve_parts
from orchestrator.client import OrchestratorClient, OrchestratorError
from orchestrator.credentials import AgentCredentials
from orchestrator.runs import _MIGRATIONS, RunStore
from orchestrator.service import Orchestrator, RunNotFound
from protocol.access import PUBLIC, AccessPolicy, route_paths
from protocol.auth import SCOPES, AuthSettings, SigningKey
from protocol.serving import TlsFiles
from tests.orchestrator.conftest import Behaviour, Platform, worker

pytestmark = pytest.mark.anyio

AUDIENCE = "orchestrator"
TASK = {"skill": "work", "input": {"text": "hi"}, "constraints": {"backoff_s": 0}}
MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
NEGOTIATION = {  # between two negotiators the matrix test registers (orchestrator.negotiation_api)
    "protocol": "alternating",
    "parties": [{"agent_id": "n1", "role": "buyer"}, {"agent_id": "n2", "role": "seller"}],
    "issues": [{"name": "price", "values": [1, 2]}],
    "max_rounds": 1,
}


@dataclass
class Keys:
    """A trusted signing key, a revoked one, and the JWKS file naming both (the second as revoked)."""

    key: SigningKey
    revoked: SigningKey
    jwks: Path

    def token(self, scopes: Any, sub: str = "alice", *, audience: str = AUDIENCE, **options: Any) -> str:
        return self.key.token(sub, scopes, issuer="test", audience=audience, ttl_s=600, **options)

    def auth(self, audience: str = AUDIENCE) -> AuthSettings:
        return AuthSettings(jwks_file=self.jwks, audience=audience)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    key, revoked = SigningKey.generate(), SigningKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk(), revoked.jwk()], "revoked": [revoked.kid]}))
    return Keys(key, revoked, jwks)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def orchestrator_server(p: Platform, keys: Keys, **options: Any) -> Iterator[str]:
    """An authenticated orchestrator on loopback over ``p`` with one in-process agent (``w1``); yields its URL."""
    p.add(worker("w1"))
    with serve_in_thread(create_app(p.orchestrator(), auth=keys.auth()), **options) as base:
        yield base


# -- every route, every kind of credential ----------------------------------------------------------------------


def _cases(keys: Keys, scope: str) -> list[tuple[str, dict[str, str], set[int]]]:
    """(case, headers, acceptable statuses): no token, malformed, expired, wrong audience, revoked, wrong scope,
    right scope -> 401 x5, 403, 2xx (a public route answers 2xx to all of them)."""
    ok = set(range(200, 300))
    needed = {scope} if scope != PUBLIC else set()
    others = sorted(set(SCOPES) - needed - {"admin"})
    expired = keys.key.token("alice", needed, issuer="test", audience=AUDIENCE, ttl_s=60, now=time.time() - 3600)
    revoked = keys.revoked.token("alice", needed, issuer="test", audience=AUDIENCE, ttl_s=600)
    public = scope == PUBLIC
    return [
        ("no token", {}, ok if public else {401}),
        ("malformed", {"Authorization": "Bearer not.a-jwt"}, ok if public else {401}),
        ("expired", bearer(expired), ok if public else {401}),
        ("wrong audience", bearer(keys.token(needed, audience="someone-else")), ok if public else {401}),
        ("revoked", bearer(revoked), ok if public else {401}),
        ("wrong scope", bearer(keys.token(others)), ok if public else {403}),
        ("right scope", bearer(keys.token(needed)), ok),
    ]


# A request that succeeds on each route, given the right scope; a new route fails the matrix until it has one.
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/runs"): {"json": TASK},
    ("GET", "/runs"): {},
    ("GET", "/runs/{run_id}"): {},
    ("GET", "/runs/{run_id}/events"): {},
    ("POST", "/runs/{run_id}/cancel"): {"json": {}},
    # past the access check, 409 NotWaiting: the matrix's run asks nothing (tests/orchestrator/test_orch_waiting.py)
    ("POST", "/runs/{run_id}/tasks/{task_id}/input"): {"json": {"input": {}}, "allowed": {409}},
    ("POST", "/runs/{run_id}/tasks/{task_id}/approval"): {"json": {"approve": True}, "allowed": {409}},
    ("POST", "/negotiations"): {"json": NEGOTIATION},
    ("GET", "/agents"): {},
    ("GET", "/health"): {},
    ("GET", "/openapi.json"): {},
    ("GET", "/ui"): {},
    ("GET", "/ui/{path:path}"): {},
    ("GET", "/.well-known/oauth-protected-resource"): {},
    ("GET", "/.well-known/oauth-protected-resource/mcp"): {},
    ("POST", "/mcp"): {"json": MCP_INIT, "headers": MCP_HEADERS},
}


async def test_every_route_refuses_bad_tokens_and_wrong_scopes(local_platform: Platform, keys: Keys) -> None:
    p = local_platform
    p.add(worker("w1"))
    for name in ("n1", "n2"):
        p.add(negotiator_agent(name, Negotiator(Preferences(weights={"price": 1.0}))))
    app = create_app(p.orchestrator(), auth=keys.auth())
    policy = AccessPolicy(ACCESS_RULES)
    routes = [
        ("POST" if method == "*" else method, path)
        for methods, path in route_paths(app.app.routes)
        for method in sorted(methods - {"HEAD"})
    ]
    missing = sorted(set(routes) - set(SAMPLES))
    assert not missing, f"add a sample request to SAMPLES for the new route(s) {missing}"
    assert set(SAMPLES) == set(routes), "SAMPLES names a route the app no longer has"
    seen: list[str] = []
    with serve_in_thread(app) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            with anyio.fail_after(120):
                made = await http.post("/runs", json=TASK, headers=bearer(keys.token(["runs:submit"])))
                assert made.status_code == 202, made.text
                run_id = made.json()["id"]
                async with OrchestratorClient(base, token=keys.token(["runs:read"])) as reader:
                    await reader.wait(run_id)
                for method, template in routes:
                    rule = policy.rule(method, template.replace("{run_id}", run_id))
                    assert rule is not None, (method, template)
                    path = template.replace("{run_id}", run_id)
                    for case, headers, expected in _cases(keys, rule.scope):
                        sample = SAMPLES[(method, template)]
                        expected = sample.get("allowed", expected) if case == "right scope" else expected
                        response = await http.request(
                            method, path, json=sample.get("json"), headers={**sample.get("headers", {}), **headers}
                        )
                        where = f"{method} {template} with {case} -> {response.status_code} {response.text[:200]}"
                        assert response.status_code in expected, where
                        if response.status_code == 401:
                            assert response.headers["www-authenticate"].startswith("Bearer "), where
                            assert response.json()["error"]["type"] == "Unauthorized", where
                        if response.status_code == 403:
                            assert rule.scope in response.json()["error"]["message"], where
                        seen.append(f"{method} {template} {case}")
    assert len(seen) == 7 * len(routes)


async def test_protected_resource_metadata_is_published(local_platform: Platform, keys: Keys) -> None:
    with orchestrator_server(local_platform, keys) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            refused = await http.post("/mcp", json=MCP_INIT, headers=MCP_HEADERS)
            metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert refused.status_code == 401
    assert 'resource_metadata="/.well-known/oauth-protected-resource/mcp"' in refused.headers["www-authenticate"]
    assert metadata["resource"] == base + "/mcp"
    assert {"runs:submit", "runs:read", "runs:cancel"} <= set(metadata["scopes_supported"])
    assert metadata["bearer_methods_supported"] == ["header"]


# -- tenants ------------------------------------------------------------------------------------------------------

ALL_RUNS = ["runs:submit", "runs:read", "runs:cancel"]


async def test_tenants_see_only_their_own_runs(local_platform: Platform, keys: Keys) -> None:
    p = local_platform
    slow = Behaviour(mode="slow", delay=30)
    p.add(worker("slow", slow, skill="slow"))
    alice, bob = bearer(keys.token(ALL_RUNS, "alice")), bearer(keys.token(ALL_RUNS, "bob"))
    carol, dave = (
        bearer(keys.token(ALL_RUNS, "carol", tenant="acme")),
        bearer(keys.token(ALL_RUNS, "dave", tenant="acme")),
    )
    admin = bearer(keys.token(["admin"], "root"))
    with orchestrator_server(p, keys) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            with anyio.fail_after(60):
                done = (await http.post("/runs", json=TASK, headers=alice)).json()["id"]
                async with OrchestratorClient(base, token=alice["Authorization"].removeprefix("Bearer ")) as client:
                    await client.wait(done)
                active = (
                    await http.post("/runs", json={"skill": "slow", "input": {"text": "x"}}, headers=alice)
                ).json()["id"]
                await slow.wait(slow.started)
                bobs = (await http.post("/runs", json=TASK, headers=bob)).json()["id"]
                acme = (await http.post("/runs", json=TASK, headers=carol)).json()["id"]
                unknown = "00000000-0000-4000-8000-000000000000"

                def listed(response: httpx.Response) -> set[str]:
                    assert response.status_code == 200, response.text
                    return {r["id"] for r in response.json()["runs"]}

                assert listed(await http.get("/runs", headers=alice)) == {done, active}
                assert listed(await http.get("/runs", headers=bob)) == {bobs}
                assert listed(await http.get("/runs", headers=dave)) == {acme}  # one tenant, two subjects
                assert listed(await http.get("/runs", headers=admin)) == {done, active, bobs, acme}
                assert (await http.get(f"/runs/{acme}", headers=dave)).status_code == 200

                for run_id in (done, active):  # a finished and an active run of alice's, as bob sees them
                    for method, path in (
                        ("GET", "/runs/{}"),
                        ("GET", "/runs/{}/events"),
                        ("POST", "/runs/{}/cancel"),
                    ):
                        theirs = await http.request(method, path.format(run_id), headers=bob, json={})
                        nobody = await http.request(method, path.format(unknown), headers=bob, json={})
                        assert theirs.status_code == nobody.status_code == 404, (method, path, theirs.text)
                        same = theirs.json()["error"]["message"].replace(run_id, unknown)
                        assert same == nobody.json()["error"]["message"]  # no existence leak: the same answer
                        assert theirs.json()["error"]["type"] == nobody.json()["error"]["type"] == "RunNotFound"
                assert (await http.get(f"/runs/{active}", headers=alice)).json()["status"] == "running"  # untouched
                assert (await http.get(f"/runs/{done}", headers=admin)).status_code == 200
                cancelled = await http.post(f"/runs/{active}/cancel", headers=admin, json={})
                assert cancelled.json() == {"cancelled": True}
                assert (await http.get(f"/runs/{active}", headers=alice)).json()["status"] == "cancelled"


async def test_the_python_api_filters_by_owner(local_platform: Platform) -> None:
    p = local_platform
    p.add(worker("w1"))
    async with p.orchestrator().running() as orch:
        with anyio.fail_after(30):
            mine = await orch.run(TASK, owner="alice")
            legacy = await orch.run(TASK)  # a trusted caller: no owner recorded, counts as "local"
            assert {r["id"] for r in await orch.list_runs(owner="alice")} == {mine["id"]}
            assert {r["id"] for r in await orch.list_runs(owner="local")} == {legacy["id"]}
            assert {r["id"] for r in await orch.list_runs()} == {mine["id"], legacy["id"]}
            with pytest.raises(RunNotFound):
                await orch.get_run(mine["id"], owner="bob")
            with pytest.raises(RunNotFound):
                await orch.cancel(mine["id"], owner="bob")
            with pytest.raises(RunNotFound):
                async for _ in orch.events(mine["id"], owner="bob"):
                    pass
            assert (await orch.get_run(mine["id"], owner="alice"))["owner"] == "alice"


# -- MCP tools check their own scopes ---------------------------------------------------------------------------


@asynccontextmanager
async def mcp_as(url: str, token: str) -> AsyncIterator[McpToolClient]:
    """The MCP python-sdk client on ``url`` sending ``token``."""
    import httpx2  # type: ignore[import-not-found]
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers=bearer(token), timeout=30) as http:
        async with McpToolClient(cast(Any, streamable_http_client(url, http_client=http))) as tools:
            yield tools


async def test_mcp_tools_refuse_a_missing_scope(local_platform: Platform, keys: Keys) -> None:
    with orchestrator_server(local_platform, keys) as base:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            bobs = (await http.post("/runs", json=TASK, headers=bearer(keys.token(ALL_RUNS, "bob")))).json()["id"]
        with anyio.fail_after(60):
            async with mcp_as(base + "/mcp", keys.token(["runs:read"])) as reader:
                for tool, arguments, scope in (
                    ("submit_task", {"skill": "work", "input": {"text": "x"}}, "runs:submit"),
                    ("submit_graph", {"graph": {"tasks": []}}, "runs:submit"),
                    ("cancel_run", {"run_id": bobs}, "runs:cancel"),
                    ("list_agents", {}, "registry:read"),
                ):
                    with pytest.raises(McpToolError, match=scope):
                        await reader.call_tool(tool, arguments)
                assert (await reader.call_tool("list_runs", {}))["runs"] == []  # bob's run is not alice's
                with pytest.raises(McpToolError, match="no run"):
                    await reader.call_tool("run_status", {"run_id": bobs})
            async with mcp_as(base + "/mcp", keys.token(["runs:read", "runs:submit", "registry:read"])) as user:
                result = await user.call_tool("submit_task", {"skill": "work", "input": {"text": "mcp"}})
                listed = await user.call_tool("list_runs", {})
                agents = await user.call_tool("list_agents", {})
            async with mcp_as(base + "/mcp", keys.token(["admin"], "root")) as admin:
                everything = await admin.call_tool("list_runs", {})
    assert result["status"] == "succeeded"
    assert [r["id"] for r in listed["runs"]] == [result["run_id"]]
    assert [a["name"] for a in agents["agents"]] == ["w1"]
    assert {r["id"] for r in everything["runs"]} == {result["run_id"], bobs}


# -- the orchestrator as a client of authenticated agents -------------------------------------------------------


def _serve_agent(
    p: Platform, keys: Keys, name: str, audience: str, *, skill: str = "work", tls: TlsFiles | None = None
) -> str:
    """``worker(name, skill=skill)`` served on loopback requiring tokens for ``audience``; returns its base URL."""
    port = free_port()
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    app = agent_app(worker(name, skill=skill), base_url=base, auth=keys.auth(audience))
    p.stack.enter_context(serve_in_thread(app, port=port, tls=tls))
    return base


async def test_orchestrator_calls_authenticated_agents_with_its_token(
    local_platform: Platform, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = local_platform
    a2a = _serve_agent(p, keys, "secured", "agent-a")
    p.registry.register_card(worker("secured").card(a2a + "/"), transport="a2a", url=a2a + "/")
    mcp = _serve_agent(p, keys, "tools", "agent-m", skill="tool")
    p.registry.register_card(
        worker("tools", skill="tool").card(f"mcp+{mcp}/mcp"), transport="mcp", url=f"mcp+{mcp}/mcp"
    )
    credentials = AgentCredentials(
        tokens={
            a2a: keys.token(["agents:call"], "orch", audience="agent-a"),
            mcp: keys.token(["agents:call"], "orch", audience="agent-m"),
        }
    )
    # the orchestrator's own $SCALEOUT_TOKEN is never sent to agents: only configured credentials are
    monkeypatch.setenv("SCALEOUT_TOKEN", keys.token(["agents:call"], "user", audience="agent-a"))
    with anyio.fail_after(60):
        async with p.orchestrator(agent_credentials=credentials).running() as orch:
            a2a_run = await orch.run(TASK)
            mcp_run = await orch.run({**TASK, "skill": "tool"})
        async with p.orchestrator().running() as orch:
            refused = await orch.run(TASK)
            refused_mcp = await orch.run({**TASK, "skill": "tool"})
        weak = AgentCredentials(keys.token(["runs:read"], "orch", audience="agent-a"))
        async with p.orchestrator(agent_credentials=weak).running() as orch:
            forbidden = await orch.run(TASK)
    assert a2a_run["status"] == "succeeded", a2a_run["attempts"]
    assert a2a_run["tasks"][0]["output"] == {"text": "HI", "by": "secured"}
    assert mcp_run["status"] == "succeeded", mcp_run["attempts"]
    for record in (refused, refused_mcp):
        error = record["attempts"][0]["error"]
        assert record["status"] == "failed" and error.startswith("AgentCallError:"), error
        assert "HTTP 401" in error and "unreachable" not in error.lower(), error
    error = forbidden["attempts"][0]["error"]
    assert "HTTP 403" in error and "agents:call" in error, error


def test_agent_credentials_match_whole_urls_and_longest_prefix() -> None:
    creds = AgentCredentials(
        "default",
        {"https://a.example": "host", "https://a.example/team/": "team", "http://b.example:8080/x": "bx"},
    )
    assert creds.token_for("https://a.example/") == "host"
    assert creds.token_for("https://A.example:443/team/agent/") == "team"  # longest prefix wins
    assert creds.token_for("https://a.example/teamwork/") == "host"  # whole path segments only
    assert creds.token_for("https://a.example.evil.com/") == "default"  # never a longer host name
    assert creds.token_for("http://a.example/") == "default"  # nor another scheme
    assert creds.token_for("http://b.example:8080/x/y") == "bx"
    assert creds.token_for("http://b.example:8081/x") == "default"  # nor another port
    assert creds.token_for("mcp+http://b.example:8080/x/mcp") == "bx"
    assert creds.token_for("local://w1") is None
    assert "host" not in repr(creds) and "default" not in repr(creds).replace("default=", "")
    with pytest.raises(ValueError, match="not an http"):
        AgentCredentials(tokens={"a.example": "t"})


def test_agent_credentials_from_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "agents.json"
    file.write_text(json.dumps({"http://127.0.0.1:9000": "nine"}))
    monkeypatch.setenv("SCALEOUT_AGENT_TOKEN", "from-env")
    creds = AgentCredentials.from_config(None, file)
    assert creds.token_for("http://127.0.0.1:9000/") == "nine"
    assert creds.token_for("http://127.0.0.1:9001/") == "from-env"
    assert AgentCredentials.from_config("flag").token_for("http://x.example/") == "flag"
    file.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        AgentCredentials.from_config(None, file)


# -- TLS ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> tuple[TlsFiles, str]:
    """A certificate for 127.0.0.1 from a CA made in the test, and that CA's file."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return TlsFiles(cert=str(tmp_path / "server.pem"), key=str(tmp_path / "server.pem")), str(tmp_path / "ca.pem")


async def test_tls_both_ways(local_platform: Platform, keys: Keys, tls: tuple[TlsFiles, str]) -> None:
    p = local_platform
    files, ca = tls
    agent = _serve_agent(p, keys, "secured", "agent-a", tls=files)
    p.registry.register_card(worker("secured").card(agent + "/"), transport="a2a", url=agent + "/")
    token = keys.token(["agents:call"], "orch", audience="agent-a")
    orchestrator = p.orchestrator(agent_credentials=AgentCredentials(token, ca_file=ca))
    with serve_in_thread(create_app(orchestrator, auth=keys.auth()), tls=files) as base:
        assert base.startswith("https://")
        with anyio.fail_after(60):
            async with OrchestratorClient(base, token=keys.token(ALL_RUNS), ca_file=ca) as client:
                record = await client.run(TASK)
            async with OrchestratorClient(base, token=keys.token(ALL_RUNS)) as untrusting:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await untrusting.list_runs()
    # one orchestrator at a time on SQLite: these start after the served one stopped
    untrusted = p.orchestrator(agent_credentials=AgentCredentials(token))  # system CAs: the agent's is not one
    tokenless = p.orchestrator(agent_credentials=AgentCredentials(ca_file=ca))  # trusts the agent, no token
    async with untrusted.running() as orch:
        with anyio.fail_after(60):
            refused = await orch.run(TASK)
    async with tokenless.running() as orch2:
        with anyio.fail_after(60):
            unauthenticated = await orch2.run(TASK)
    assert record["status"] == "succeeded", record["attempts"]
    assert refused["status"] == "failed" and "CERTIFICATE_VERIFY_FAILED" in refused["attempts"][0]["error"]
    assert "HTTP 401" in unauthenticated["attempts"][0]["error"], unauthenticated["attempts"]


# -- the owner column ---------------------------------------------------------------------------------------------


def test_migration_keeps_old_runs_as_local(any_db_url: str) -> None:
    old = RunStore(any_db_url, migrate=False)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", any_db_url.replace("%", "%%"))
    runs_0001 = sa.Table(  # orch_runs as revision orch_0001 left it: no owner column
        "orch_runs",
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in tables.runs.columns if c.name != "owner"),
    )
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    with old.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "orch_0001")
        row = {"id": "old-run", "name": "before", "status": "succeeded", "spec": {"tasks": []}}
        connection.execute(runs_0001.insert(), [{**row, "created_at": stamp, "updated_at": stamp}])
    old.close()
    store = RunStore(any_db_url)  # upgrades to head
    try:
        stored = store.get_run("old-run")
        assert stored is not None and stored["owner"] is None and stored["name"] == "before"
        assert stored["kind"] == "graph" and stored["output"] is None  # orch_0004: every older run is a graph run
        assert [r["id"] for r in store.list_runs(owner="local")] == ["old-run"]
        assert store.list_runs(owner="alice") == []
        assert [r["id"] for r in store.list_runs()] == ["old-run"]
        with store.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM orchestrator_alembic_version")).scalar()
        assert version == "orch_0005"
    finally:
        store.close()


# -- the serve command and the CLI ------------------------------------------------------------------------------


def test_serve_refuses_an_unauthenticated_public_bind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, keys: Keys
) -> None:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr("protocol.serving.serve", lambda app, host, port, limits, **kw: served.append(kw))
    db = ["--db", str(tmp_path / "o.db")]
    assert main(["orchestrator", "serve", "--host", "0.0.0.0", *db]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0" in err and "--jwks" in err and not served
    assert main(["orchestrator", "serve", *db]) == 0  # loopback without keys: allowed, and it says so
    assert "not authenticated" in capsys.readouterr().err
    assert main(["orchestrator", "serve", "--host", "0.0.0.0", "--jwks", str(keys.jwks), *db]) == 0
    assert "not authenticated" not in capsys.readouterr().err
    assert served == [{"tls": None, "log_config": None}, {"tls": None, "log_config": None}]
    with pytest.raises(SystemExit, match="--tls-cert and --tls-key"):
        main(["orchestrator", "serve", "--tls-cert", "c.pem", *db])


def test_serve_flags_configure_the_agent_credentials(
    tmp_path: Path, keys: Keys, tls: tuple[TlsFiles, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCALEOUT_AGENT_TOKEN", raising=False)
    per_agent = tmp_path / "agents.json"
    per_agent.write_text(json.dumps({"https://a.example/": "token-a"}))
    base = ["orchestrator", "serve", "--db", str(tmp_path / "o.db"), "--jwks", str(keys.jwks), "--audience", "o"]
    flags = ["--agent-token", "every", "--agent-credentials", str(per_agent), "--ca-file", tls[1]]
    app, _ = serve_parts(build_parser().parse_args([*base, *flags]))
    orchestrator: Orchestrator = app.app.state.orchestrator
    assert orchestrator._transports is not None
    credentials = orchestrator._transports.credentials
    assert credentials.token_for("https://a.example/x/") == "token-a"
    assert credentials.token_for("https://b.example/") == "every"
    assert credentials.ca_file == tls[1] and not isinstance(credentials.verify(), bool)
    assert app.access.verifier is not None and app.access.verifier.audience == "o"
    assert app.access.resource_metadata == "http://127.0.0.1:8100/.well-known/oauth-protected-resource/mcp"
    orchestrator.store.close()
    monkeypatch.setenv("SCALEOUT_AGENT_TOKEN", "from-env")
    app, _ = serve_parts(build_parser().parse_args(base))
    assert app.app.state.orchestrator._transports.credentials.token_for("https://b.example/") == "from-env"
    app.app.state.orchestrator.store.close()
    for bad, message in (
        (["--ca-file", str(tmp_path / "missing.pem")], "error"),
        (["--agent-credentials", str(tmp_path / "missing.json")], "agent credentials"),
        (["--jwks", str(tmp_path / "missing.json")], "key set"),
    ):
        with pytest.raises(SystemExit, match=message):
            serve_parts(build_parser().parse_args([*base, *bad]))


def test_cli_sends_the_token(
    local_platform: Platform, keys: Keys, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCALEOUT_TOKEN", raising=False)
    monkeypatch.setenv("SCALEOUT_TOKEN_FILE", "/nonexistent/token")
    with orchestrator_server(local_platform, keys) as base:
        assert main(["runs", "list", "--url", base]) == 2
        assert "HTTP 401" in capsys.readouterr().err
        assert main(["run", "work", "--input", '{"text": "cli"}', "--url", base, "--token", keys.token(ALL_RUNS)]) == 0
        assert '"text": "CLI"' in capsys.readouterr().out
        monkeypatch.setenv("SCALEOUT_TOKEN", keys.token(["runs:read"]))
        assert main(["runs", "list", "--url", base]) == 0
        assert "succeeded" in capsys.readouterr().out
        assert main(["run", "work", "--url", base]) == 2  # runs:read alone may not submit
        assert "runs:submit" in capsys.readouterr().err


async def test_client_errors_name_the_refusal(local_platform: Platform, keys: Keys) -> None:
    with orchestrator_server(local_platform, keys) as base:
        async with OrchestratorClient(base, token=keys.token(["runs:read"])) as client:
            with pytest.raises(OrchestratorError) as caught:
                await client.submit(TASK)
    assert caught.value.status == 403 and "runs:submit" in caught.value.message


def test_orchestrator_with_keys_has_no_anonymous_caller(local_platform: Platform, keys: Keys) -> None:
    local_platform.add(worker("w1"))
    orch: Orchestrator = local_platform.orchestrator()
    app = create_app(orch, auth=keys.auth())
    assert app.access is not None and app.access.anonymous is None and app.access.verifier is not None
