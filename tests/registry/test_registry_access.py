"""Access control of the registry over real loopback HTTP: every route against every kind of credential (the
matrix is generated from the app's routes), ownership of records (nobody takes, drains, heartbeats or removes
another principal's agent; admins may), call statistics only from ``registry:report``, the owner migration,
TLS, and the serve command's refusal to run unauthenticated beyond loopback."""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme
from alembic import command
from alembic.config import Config
from mcp.server.mcpserver import MCPServer
from sqlalchemy import create_engine, text

from agents.examples import echo_agent
from agents.serve import create_app as agent_app
from agents.testing import free_port, serve_in_thread
from protocol.access import PUBLIC, AccessPolicy, InsecureBind, route_paths
from protocol.auth import SCOPES, AuthSettings, SigningKey
from protocol.serving import TlsFiles
from registry import (
    HealthStatus,
    InsufficientScope,
    NameConflict,
    NotOwner,
    Registration,
    Registry,
    RegistryUnavailable,
    Unauthorized,
)
from registry.api import ACCESS_RULES, create_app
from registry.cli import add_parser, run
from registry.client import RegistryClient
from registry.db import MIGRATIONS
from tests.registry.conftest import make_card

READ, WRITE, REPORT = "registry:read", "registry:write", "registry:report"
CASES = ("no token", "malformed", "expired", "wrong audience", "revoked", "wrong scope", "right scope")


@dataclass
class Keys:
    """A key set on disk with one trusted key and one revoked key."""

    jwks: Path
    key: SigningKey
    revoked: SigningKey

    @property
    def settings(self) -> AuthSettings:
        return AuthSettings(jwks_file=self.jwks)

    def token(
        self,
        subject: str,
        *scopes: str,
        tenant: str | None = None,
        audience: str = "scaleout",
        key: SigningKey | None = None,
        now: float | None = None,
    ) -> str:
        signer = key or self.key
        return signer.token(subject, scopes, issuer="scaleout", audience=audience, ttl_s=600, tenant=tenant, now=now)

    def headers(self, case: str, scope: str) -> dict[str, str]:
        """The Authorization header of one column of the matrix, for a route that needs ``scope``."""
        scope = READ if scope == PUBLIC else scope  # a public route ignores whatever is sent
        wrong = [s for s in SCOPES if s not in (scope, "admin")]
        tokens = {
            "no token": None,
            "malformed": "not.a.jwt",
            "expired": self.token("alice", scope, now=time.time() - 7200),
            "wrong audience": self.token("alice", scope, audience="another-server"),
            "revoked": self.token("alice", scope, key=self.revoked),
            "wrong scope": self.token("alice", *wrong),
            "right scope": self.token("alice", scope),
        }
        token = tokens[case]
        return {} if token is None else {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    key, revoked = SigningKey.generate(), SigningKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk(), revoked.jwk()], "revoked": [revoked.kid]}))
    return Keys(jwks, key, revoked)


def registration(name: str, *, url: str | None = None, agent_id: str | None = None) -> dict[str, Any]:
    reg = Registration(card=make_card(name, url=url), agent_id=agent_id)
    return reg.model_dump(mode="json", exclude={"card"}) | {"card": reg.card.wire()}


@pytest.fixture
def mcp_base() -> Iterator[str]:
    server = MCPServer("calc", version="0.3.0", instructions="Adds numbers")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    with serve_in_thread(server.streamable_http_app()) as base:
        yield base


@pytest.fixture
def agent_base() -> Iterator[str]:
    port = free_port()
    with serve_in_thread(agent_app(echo_agent("echo"), f"http://127.0.0.1:{port}"), port) as base:
        yield base


def _snapshot(reg: Registry) -> list[Any]:
    return [(r.model_dump(), len(reg.history(r.id))) for r in reg.list(status=None)]


def test_every_route_against_every_credential(registry: Registry, keys: Keys, agent_base: str, mcp_base: str) -> None:
    for agent_id in ("kept", "doomed"):
        registry.register(Registration(card=make_card(agent_id), agent_id=agent_id), owner="user:alice")
    samples: dict[tuple[str, str], tuple[str, Any, int]] = {
        ("GET", "/healthz"): ("/healthz", None, 200),
        ("GET", "/openapi.json"): ("/openapi.json", None, 200),
        ("GET", "/agents"): ("/agents", None, 200),
        ("POST", "/agents"): ("/agents", registration("fresh"), 201),
        ("POST", "/agents/register-url"): ("/agents/register-url", {"url": agent_base}, 201),
        ("POST", "/agents/register-mcp"): ("/agents/register-mcp", {"url": f"{mcp_base}/mcp"}, 201),
        ("GET", "/agents/{agent_id}"): ("/agents/kept", None, 200),
        ("DELETE", "/agents/{agent_id}"): ("/agents/doomed", None, 204),
        ("POST", "/agents/{agent_id}/heartbeat"): ("/agents/kept/heartbeat", None, 204),
        ("PUT", "/agents/{agent_id}/status"): ("/agents/kept/status", {"status": "draining"}, 204),
        ("POST", "/agents/{agent_id}/calls"): ("/agents/kept/calls", {"success": True, "latency_s": 0.1}, 204),
        ("GET", "/agents/{agent_id}/history"): ("/agents/kept/history", None, 200),
        ("GET", "/search"): ("/search", None, 200),
    }
    app = create_app(registry, auth=keys.settings)
    routes = {(m, path) for methods, path in route_paths(app.app.routes) for m in methods - {"HEAD"}}
    assert routes == set(samples), "every route of the registry needs a sample request here"
    policy = AccessPolicy(ACCESS_RULES)
    seen: list[tuple[str, str, str, int]] = []
    with serve_in_thread(app) as api, httpx.Client(base_url=api, timeout=60) as http:
        for (method, template), (path, body, ok) in sorted(samples.items()):
            rule = policy.rule(method, path)
            assert rule is not None
            before = _snapshot(registry)
            for case in CASES:
                if case == "right scope" and rule.scope != PUBLIC:
                    assert _snapshot(registry) == before, f"a refused {method} {template} changed the registry"
                headers = keys.headers(case, rule.scope) | {"Content-Type": "application/json"}
                resp = http.request(method, path, json=body, headers=headers)
                seen.append((method, template, case, resp.status_code))
                if rule.scope == PUBLIC or case == "right scope":
                    assert resp.status_code == ok, (method, template, case, resp.text)
                elif case == "wrong scope":
                    assert resp.status_code == 403, (method, template, case, resp.text)
                    assert rule.scope in resp.json()["error"]["message"]
                else:
                    assert resp.status_code == 401, (method, template, case, resp.text)
                    assert resp.headers["www-authenticate"].startswith("Bearer ")
                    assert resp.json()["error"]["type"] == "Unauthorized"
    assert len(seen) == len(samples) * len(CASES)
    assert registry.find("kept").stats.calls == 1 and registry.find("kept").status is HealthStatus.DRAINING
    assert registry.find("fresh").owner == "user:alice" and registry.find("echo").owner == "user:alice"
    assert {r.name for r in registry.list(status=None)} == {"kept", "fresh", "echo", "calc"}


def test_rules_cover_exactly_the_scopes_asked_for() -> None:
    policy = AccessPolicy(ACCESS_RULES)
    expected = {
        ("GET", "/healthz"): PUBLIC,
        ("GET", "/agents"): READ,
        ("GET", "/agents/x"): READ,
        ("GET", "/agents/x/history"): READ,
        ("GET", "/search"): READ,
        ("POST", "/agents"): WRITE,
        ("POST", "/agents/register-url"): WRITE,
        ("POST", "/agents/register-mcp"): WRITE,
        ("DELETE", "/agents/x"): WRITE,
        ("PUT", "/agents/x/status"): WRITE,
        ("POST", "/agents/x/heartbeat"): WRITE,
        ("POST", "/agents/x/calls"): REPORT,
    }
    for (method, path), scope in expected.items():
        rule = policy.rule(method, path)
        assert rule is not None and rule.scope == scope, (method, path)
    assert policy.rule("PATCH", "/agents/x") is None and policy.rule("GET", "/admin") is None  # deny by default


@pytest.mark.anyio
async def test_nobody_takes_drains_or_removes_another_principals_agent(registry: Registry, keys: Keys) -> None:
    writer = (READ, WRITE)
    home = "http://127.0.0.1:9/victim/"
    evil = f"http://127.0.0.1:{free_port()}"
    alice_token = keys.token("alice", *writer)
    with serve_in_thread(create_app(registry, auth=keys.settings)) as api:
        alice = RegistryClient(api, token=alice_token)
        mallory = RegistryClient(api, token=keys.token("mallory", *writer))
        root = RegistryClient(api, token=keys.token("root", "admin"))
        with anyio.fail_after(60):
            victim = await alice.register_card(make_card("victim", url=home), agent_id="victim-1")
            assert victim.owner == "user:alice" and victim.url == home
            before = await alice.get("victim-1")

            # the attack: re-register the victim's name with another URL, by card and by the attacker's own agent
            with pytest.raises(NameConflict, match="belongs to another principal"):
                await mallory.register_card(make_card("victim", url=f"{evil}/"))
            with pytest.raises(NameConflict, match="belongs to another principal"):
                await mallory.register_card(make_card("victim", url=f"{evil}/"), agent_id="victim-1")
            with pytest.raises(NameConflict, match="belongs to another principal"):
                await mallory.register_card(make_card("renamed", url=f"{evil}/"), agent_id="victim-1")
            port = free_port()
            with serve_in_thread(agent_app(echo_agent("victim"), f"http://127.0.0.1:{port}"), port) as fake:
                with pytest.raises(NameConflict, match="belongs to another principal"):
                    await mallory.register_url(fake)
            with pytest.raises(NotOwner, match="only its owner or an admin"):
                await mallory.set_status("victim-1", HealthStatus.DRAINING)
            with pytest.raises(NotOwner):
                await mallory.heartbeat("victim-1")
            with pytest.raises(NotOwner):
                await mallory.deregister("victim-1")
            after = await mallory.get("victim-1")  # reads stay open to registry:read
            assert after == before and after.url == home and after.status is HealthStatus.HEALTHY
            assert [v.version for v in await alice.history("victim-1")] == ["1.0.0"]
            assert await alice.search(text="renamed", status=None) == []

            async with httpx.AsyncClient(base_url=api, timeout=30) as http:  # the statuses on the wire
                bearer = {
                    "Authorization": f"Bearer {keys.token('mallory', *writer)}",
                    "Content-Type": "application/json",
                }
                resp = await http.post("/agents", json=registration("victim", url=f"{evil}/"), headers=bearer)
                assert resp.status_code == 409 and resp.json()["error"]["type"] == "NameConflict"
                resp = await http.put("/agents/victim-1/status", json={"status": "draining"}, headers=bearer)
                assert resp.status_code == 403 and resp.json()["error"]["type"] == "NotOwner"
                assert (await http.delete("/agents/victim-1", headers=bearer)).status_code == 403
                assert (await http.post("/agents/victim-1/heartbeat", headers=bearer)).status_code == 403

            # the owner may, and the owner stays alice whoever changes the record
            moved = await alice.register_card(make_card("victim", url="http://127.0.0.1:9/moved/", version="2"))
            assert moved.url == "http://127.0.0.1:9/moved/" and moved.owner == "user:alice"
            await alice.set_status("victim-1", HealthStatus.DRAINING)
            await alice.heartbeat("victim-1")
            # an admin may do anything
            taken = await root.register_card(make_card("victim", url=f"{evil}/", version="3"))
            assert taken.url == f"{evil}/" and taken.owner == "user:alice"
            await root.set_status("victim-1", HealthStatus.HEALTHY)
            await root.heartbeat("victim-1")
            await root.deregister("victim-1")
            assert await alice.list(status=None) == []
            mine = await mallory.register_card(make_card("victim", url=f"{evil}/"))  # a free name again
            assert mine.owner == "user:mallory"
            await alice.aclose()
            await mallory.aclose()
            await root.aclose()
    assert alice_token not in json.dumps([r.model_dump(mode="json") for r in registry.list(status=None)])
    with registry.engine.connect() as conn:  # no token is stored anywhere
        for table in ("registry_agents", "registry_agent_versions"):
            assert alice_token not in str(conn.execute(text(f"SELECT * FROM {table}")).all())


@pytest.mark.anyio
async def test_a_tenant_owns_what_its_principals_register(registry: Registry, keys: Keys) -> None:
    with serve_in_thread(create_app(registry, auth=keys.settings)) as api, anyio.fail_after(60):
        async with (
            RegistryClient(api, token=keys.token("bob", READ, WRITE, tenant="acme")) as bob,
            RegistryClient(api, token=keys.token("carol", READ, WRITE, tenant="acme")) as carol,
            RegistryClient(api, token=keys.token("erin", READ, WRITE, tenant="other")) as erin,
        ):
            rec = await bob.register_card(make_card("shared"))
            assert rec.owner == "tenant:acme"
            await carol.set_status(rec.id, HealthStatus.DRAINING)  # same tenant
            with pytest.raises(NotOwner):
                await erin.set_status(rec.id, HealthStatus.HEALTHY)
            assert (await erin.get(rec.id)).status is HealthStatus.DRAINING


@pytest.mark.anyio
async def test_call_statistics_only_from_registry_report(registry: Registry, keys: Keys) -> None:
    agent = registry.register(Registration(card=make_card("worker")), owner="user:alice")
    with serve_in_thread(create_app(registry, auth=keys.settings)) as api, anyio.fail_after(60):
        async with (
            RegistryClient(api, token=keys.token("alice", READ, WRITE)) as owner,
            RegistryClient(api, token=keys.token("orchestrator", REPORT)) as reporter,
        ):
            with pytest.raises(InsufficientScope, match="registry:report"):
                await owner.record_call(agent.id, success=True, latency_s=0.5, tokens=3)
            assert registry.get(agent.id).stats.calls == 0
            await reporter.record_call(agent.id, success=False, latency_s=0.5, tokens=3)
            stats = registry.get(agent.id).stats
            assert (stats.calls, stats.successes, stats.tokens) == (1, 0, 3)
            with pytest.raises(InsufficientScope, match="registry:read"):
                await reporter.get(agent.id)  # reporting is all a reporter may do
            with pytest.raises(InsufficientScope, match="registry:write"):
                await reporter.register_card(make_card("sneaky"))
        async with RegistryClient(api) as anonymous:
            with pytest.raises(Unauthorized, match="bearer token"):
                await anonymous.list()


def test_store_checks_the_owner(registry: Registry) -> None:
    rec = registry.register(Registration(card=make_card("a")), owner="alice")
    assert rec.owner == "alice"
    with pytest.raises(NameConflict, match="belongs to another principal"):
        registry.register(Registration(card=make_card("a", url="http://127.0.0.1:9/x/")), owner="bob")
    with pytest.raises(NameConflict, match="belongs to another principal"):
        registry.register_many([make_card("b"), make_card("a", version="9")], owner="bob")
    assert [r.name for r in registry.list()] == ["a"]  # the whole batch was refused
    for change in (
        lambda: registry.set_status(rec.id, HealthStatus.DRAINING, owner="bob"),
        lambda: registry.heartbeat(rec.id, owner="bob"),
        lambda: registry.deregister(rec.id, owner="bob"),
    ):
        with pytest.raises(NotOwner):
            change()
    assert registry.get(rec.id) == rec
    # admins and trusted local callers (owner None) may; neither takes the record over
    assert registry.register_card(make_card("a", version="2"), owner="root", admin=True).owner == "alice"
    registry.set_status(rec.id, HealthStatus.DRAINING)
    assert registry.register_card(make_card("a", version="3")).owner == "alice"
    assert registry.register_many([make_card("c")], owner="bob") == 1 and registry.find("c").owner == "bob"
    assert registry.register_card(make_card("d")).owner == "local"  # trusted local caller
    registry.heartbeat(rec.id, owner="alice")
    registry.deregister(rec.id, owner="alice")
    assert {r.name for r in registry.list(status=None)} == {"c", "d"}


@pytest.mark.anyio
async def test_without_keys_on_loopback_callers_are_local(registry: Registry) -> None:
    with serve_in_thread(create_app(registry)) as api, anyio.fail_after(30):
        async with RegistryClient(api) as client:
            rec = await client.register_card(make_card("mine"))
            assert rec.owner == "local"
            await client.set_status(rec.id, HealthStatus.DRAINING)
            await client.deregister(rec.id)
        async with RegistryClient(api, token="unexpected") as client:  # no keys: a token is neither needed nor checked
            assert [r.name for r in await client.list()] == []
    with pytest.raises(InsecureBind, match="--jwks"):
        create_app(registry, host="0.0.0.0")
    with pytest.raises(InsecureBind):
        create_app(registry, host="192.168.1.20")


def test_owner_migration_keeps_rows(db_url: str) -> None:
    with Registry(db_url) as reg:
        old = reg.register_card(make_card("old"), agent_id="old-1")
        reg.record_call(old.id, success=True, latency_s=0.2, tokens=5)
        reg.register(Registration(card=make_card("tenant-owned")), owner="tenant:acme")
    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    with engine.connect() as conn:  # the previous schema, with its rows
        assert "owner" not in conn.execute(text("SELECT * FROM registry_agents")).keys()
        assert conn.execute(text("SELECT version_num FROM registry_alembic_version")).scalar_one() == "0002"
    with Registry(db_url) as reg:  # upgrades to head
        with reg.engine.connect() as conn:
            rows = conn.execute(text("SELECT name, owner, calls FROM registry_agents ORDER BY name")).all()
        assert [tuple(r) for r in rows] == [("old", None, 1), ("tenant-owned", None, 0)]
        rec = reg.get("old-1")
        assert rec.owner == "local" and rec.stats.tokens == 5 and rec.skills[0].id == "echo"
        assert [r.name for r in reg.search(text="old")] == ["old"]
        with pytest.raises(NotOwner):  # an old row belongs to "local", nobody else
            reg.set_status("old-1", HealthStatus.DRAINING, owner="acme")
        with pytest.raises(NameConflict):
            reg.register_card(make_card("old", version="2"), owner="acme")
        reg.set_status("old-1", HealthStatus.DRAINING, owner="local")
    engine.dispose()


# -- TLS and the command line ---------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> tuple[TlsFiles, str]:
    ca = trustme.CA()
    pem, ca_file = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(cert=str(pem), key=str(pem)), str(ca_file)


def cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="scaleout")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    return run(args, out), out.getvalue()


@pytest.mark.anyio
async def test_tls_with_a_verifying_client(registry: Registry, keys: Keys, pki: tuple[TlsFiles, str]) -> None:
    tls, ca_file = pki
    writer = keys.token("alice", READ, WRITE)
    with serve_in_thread(create_app(registry, auth=keys.settings), tls=tls) as api, anyio.fail_after(60):
        assert api.startswith("https://")
        async with RegistryClient(api, token=writer, ca_file=ca_file) as client:
            rec = await client.register_card(make_card("secure"))
            assert rec.owner == "user:alice" and [r.name for r in await client.list()] == ["secure"]
        async with RegistryClient(api, token=writer) as unverified:  # the test CA is not trusted by default
            with pytest.raises(RegistryUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await unverified.list()
        async with RegistryClient(api.replace("https://", "http://"), token=writer, timeout=5) as plain:
            with pytest.raises(RegistryUnavailable):
                await plain.list()
    with pytest.raises(RegistryUnavailable, match="CA file"):
        RegistryClient("https://127.0.0.1:1", ca_file=str(Path(ca_file).with_name("missing.pem")))


def test_cli_through_api_sends_the_token(
    registry: Registry,
    keys: Keys,
    pki: tuple[TlsFiles, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tls, ca_file = pki
    registry.register(Registration(card=make_card("theirs")), owner="user:alice")
    with serve_in_thread(create_app(registry, auth=keys.settings), tls=tls) as api:
        remote = ("--api", api, "--ca-file", ca_file)
        code, _ = cli("registry", "list", *remote)
        assert code == 1 and "bearer token" in capsys.readouterr().err
        monkeypatch.setenv("SCALEOUT_TOKEN", keys.token("mallory", READ, WRITE))
        code, out = cli("registry", "list", *remote, "--json")
        assert code == 0 and [r["name"] for r in json.loads(out)] == ["theirs"]
        code, _ = cli("registry", "remove", "theirs", *remote)
        assert code == 1 and "belongs to another principal" in capsys.readouterr().err
        code, _ = cli("registry", "show", "theirs", "--api", api)  # no --ca-file: the server is not trusted
        assert code == 1 and "cannot reach the registry" in capsys.readouterr().err
        monkeypatch.delenv("SCALEOUT_TOKEN")
        token_file = Path(ca_file).with_name("token")
        token_file.write_text(keys.token("alice", READ, WRITE) + "\n")
        monkeypatch.setenv("SCALEOUT_TOKEN_FILE", str(token_file))
        code, out = cli("registry", "show", "theirs", *remote)
        assert code == 0 and "theirs" in out
        code, _ = cli("registry", "remove", "theirs", *remote, "--token", keys.token("mallory", READ, WRITE))
        assert code == 1 and "belongs to another principal" in capsys.readouterr().err
        code, out = cli("registry", "remove", "theirs", *remote)
        assert code == 0 and "removed theirs" in out
    assert registry.count() == 0


def _serve_args(tmp_path: Path, *extra: str) -> tuple[str, ...]:
    return ("registry", "serve", "--db", f"sqlite:///{tmp_path}/r.db", *extra)


def test_serve_refuses_to_run_unauthenticated_beyond_loopback(
    tmp_path: Path, keys: Keys, pki: tuple[TlsFiles, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import protocol.serving

    served: list[dict[str, Any]] = []

    def fake_serve(app: Any, host: str, port: int, limits: Any, **options: Any) -> None:
        served.append({"app": app, "host": host, **options})

    monkeypatch.setattr(protocol.serving, "serve", fake_serve)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        code, _ = cli(*_serve_args(tmp_path, "--host", host))
        err = capsys.readouterr().err
        assert code == 2 and f"refusing to serve on {host} without authentication" in err and "--jwks" in err
    assert served == []
    code, _ = cli(*_serve_args(tmp_path))  # loopback without keys: serves, and says so
    err = capsys.readouterr().err
    assert code == 0 and "callers are not authenticated" in err and served[-1]["tls"] is None
    assert served[-1]["app"].access.verifier is None
    tls, _ = pki
    secured = ("--host", "0.0.0.0", "--jwks", str(keys.jwks), "--audience", "registry", "--issuer", "ops")
    code, _ = cli(*_serve_args(tmp_path, *secured, "--tls-cert", tls.cert, "--tls-key", tls.key))
    err = capsys.readouterr().err
    assert code == 0 and "not authenticated" not in err and "https://0.0.0.0" in err
    assert served[-1]["tls"] == tls and served[-1]["host"] == "0.0.0.0"
    verifier = served[-1]["app"].access.verifier
    assert (verifier.audience, verifier.issuer) == ("registry", "ops")
    bad: Iterable[tuple[str, ...]] = (
        ("--jwks", str(tmp_path / "missing.json")),
        ("--tls-cert", tls.cert),
        ("--tls-cert", tls.cert, "--tls-key", str(tmp_path / "missing.pem")),
    )
    for flags in bad:
        code, _ = cli(*_serve_args(tmp_path, *flags))
        assert code == 2 and f"error: {flags[-2]}" in capsys.readouterr().err, flags  # names the flag at fault
    (tmp_path / "broken.json").write_text("{not json")
    code, _ = cli(*_serve_args(tmp_path, "--jwks", str(tmp_path / "broken.json")))
    assert code == 2 and "cannot read the key set" in capsys.readouterr().err
