"""Access control on the agents' surfaces, over real HTTP on loopback with keys made in the test.

Every route of an agent server, listed from the app's own routes (so a new route cannot be left out), answers
no token, a malformed, expired, wrong-audience or revoked token, a token without ``agents:call``, and a right
one with 401, 401, 401, 401, 401, 403, 2xx; the card, the agent index and the protected-resource metadata stay
public. A2A tasks belong to their caller; the official a2a-sdk and MCP python-sdk clients call with a bearer
token and fail cleanly without; TLS with a certificate made by ``trustme``; the ``serve`` command's guards.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import trustme
from a2a.client import ClientConfig, create_client
from a2a.client.auth import AuthInterceptor, CredentialService
from a2a.client.errors import A2AClientError
from a2a.types import GetExtendedAgentCardRequest, Role, TaskState
from a2a.types import Message as SdkMessage
from a2a.types import Part as SdkPart
from a2a.types import SendMessageRequest as SdkSendMessageRequest
from google.protobuf import json_format, struct_pb2
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.client import AgentAccessError, HttpAgentClient, skill_message
from agents.examples import EchoIn, EchoOut, echo_agent
from agents.rest_server import is_rest_path
from agents.serve import ACCESS_RULES, SKILL_SCHEMAS_EXTENSION, AgentApp, create_app
from agents.testing import free_port, serve_in_thread
from protocol.a2a import AGENT_CARD_PATH, PROTOCOL_VERSION, VERSION_HEADER
from protocol.access import PUBLIC, AccessPolicy, InsecureBind, route_paths
from protocol.auth import AuthSettings, SigningKey
from protocol.jsonrpc import ExtendedAgentCardNotConfiguredError, TaskNotFoundError, UnsupportedOperationError
from protocol.serving import TlsFiles

HEADERS = {VERSION_HEADER: PROTOCOL_VERSION}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}
SEND = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "SendMessage",
    "params": {
        "message": {
            "role": "ROLE_USER",
            "messageId": "m-1",
            "metadata": {"skill": "echo"},
            "parts": [{"data": {"text": "hi"}}],
        }
    },
}
CASES = ["no token", "malformed", "expired", "wrong audience", "revoked", "wrong scope", "right scope"]
EXPECTED = [401, 401, 401, 401, 401, 403, 200]


def _cli(*args: str) -> int:
    from orchestrator.cli import main

    return main(list(args))


@dataclass(frozen=True)
class Keys:
    jwks: Path
    key: SigningKey
    revoked: SigningKey  # listed in the JWKS file's "revoked" by `scaleout auth revoke`

    def token(
        self,
        subject: str = "caller",
        scopes: tuple[str, ...] = ("agents:call",),
        *,
        tenant: str | None = None,
        audience: str = "scaleout",
        signer: SigningKey | None = None,
        now: float | None = None,
    ) -> str:
        return (signer or self.key).token(
            subject, scopes, issuer="scaleout", audience=audience, ttl_s=600, tenant=tenant, now=now
        )

    def auth(self) -> AuthSettings:
        return AuthSettings(jwks_file=self.jwks)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Two keys made with `scaleout auth keygen`; the second revoked with `scaleout auth revoke`."""
    where = tmp_path_factory.mktemp("keys")
    jwks = str(where / "jwks.json")
    assert _cli("auth", "keygen", "--key", str(where / "signing-key.pem"), "--jwks", jwks) == 0
    assert _cli("auth", "keygen", "--key", str(where / "old-key.pem"), "--jwks", jwks) == 0
    old = SigningKey.load(where / "old-key.pem")
    assert _cli("auth", "revoke", old.kid, "--jwks", jwks) == 0
    assert json.loads(Path(jwks).read_text())["revoked"] == [old.kid]
    return Keys(Path(jwks), SigningKey.load(where / "signing-key.pem"), old)


def _credentials(keys: Keys, case: str) -> dict[str, str]:
    token = {
        "no token": None,
        "malformed": "not.a.jwt",
        "expired": keys.token(now=time.time() - 3600),
        "wrong audience": keys.token(audience="another-server"),
        "revoked": keys.token(signer=keys.revoked),
        "wrong scope": keys.token(scopes=("runs:read", "registry:write", "runs:submit")),
        "right scope": keys.token(),
    }[case]
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    scope: str
    body: dict[str, Any] | None
    headers: dict[str, str]
    rest: bool = False  # an HTTP+JSON route: its errors are google.rpc bodies, its right answer may be an A2A error


def _calls(app: AgentApp) -> list[Call]:
    """One request per route of ``app`` (from its routes, not from a list kept here), with the rule's scope."""
    policy = AccessPolicy(ACCESS_RULES)
    name = app.agent_server.agents[-1].name
    calls: list[Call] = []
    for methods, template in sorted(set(route_paths(app.starlette.routes)), key=lambda r: (r[1], sorted(r[0]))):
        path = template.replace("{name}", name)
        for method in sorted(methods - {"HEAD"}):
            verb = "POST" if method == "*" else method
            if verb == "GET":
                shapes = [(path, None, {})]
            elif verb == "POST" and path.endswith("/mcp"):
                shapes = [(path, INITIALIZE, MCP_HEADERS), (path + "/", INITIALIZE, MCP_HEADERS)]  # and its subtree
            elif verb == "POST" and path.endswith("/"):
                shapes = [(path, SEND, HEADERS)]
            elif is_rest_path(path.removeprefix(f"/agents/{name}")):
                concrete = path.replace("{id}", "t-1").replace("{config_id}", "c-1")
                shapes = [(concrete, SEND["params"] if concrete.endswith(":send") else None, HEADERS)]
            else:
                pytest.fail(f"the access matrix does not know how to call {method} {template}: teach it")
            for concrete, body, headers in shapes:
                rule = policy.rule(verb, concrete)
                assert rule is not None, f"{verb} {concrete} has no access rule"
                rest = is_rest_path(concrete.removeprefix(f"/agents/{name}"))
                calls.append(Call(verb, concrete, rule.scope, body, headers, rest))
    return calls


@pytest.fixture(scope="module", params=["one agent", "several agents"])
def secured(request: pytest.FixtureRequest, keys: Keys) -> Iterator[tuple[AgentApp, str]]:
    port = free_port()
    agents = echo_agent() if request.param == "one agent" else [echo_agent("a"), echo_agent("b")]
    app = create_app(agents, f"http://127.0.0.1:{port}", auth=keys.auth())
    with serve_in_thread(app, port) as url:
        yield app, url


def test_every_route_answers_each_credential_as_its_rule_says(secured: tuple[AgentApp, str], keys: Keys) -> None:
    app, url = secured
    calls = _calls(app)
    assert {c.scope for c in calls} == {PUBLIC, "agents:call"}
    assert any(c.path.endswith("/mcp/") for c in calls) and any(c.path.endswith(AGENT_CARD_PATH) for c in calls)
    metadata = app.access.resource_metadata if app.access else None
    assert metadata and metadata.startswith(url + "/.well-known/oauth-protected-resource")
    wrong: list[str] = []
    with httpx.Client(base_url=url, timeout=20) as http:
        for case, status in zip(CASES, EXPECTED, strict=True):
            credentials = _credentials(keys, case)
            for call in calls:
                reply = http.request(call.method, call.path, json=call.body, headers={**call.headers, **credentials})
                expected = 200 if call.scope == PUBLIC else status
                if call.rest and expected == 200 and reply.status_code in (400, 404):  # an A2A error: not refused
                    assert "boundary" not in reply.json()["error"]["details"][0]["metadata"], reply.text
                    continue
                if reply.status_code != expected:
                    wrong.append(f"{case}: {call.method} {call.path} -> {reply.status_code}, not {expected}")
                    continue
                challenge = reply.headers.get("www-authenticate", "")
                if expected == 401:
                    assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata}"' in challenge
                    error = reply.json()["error"]
                    assert (error["details"] if call.rest else error["data"])[0]["reason"] == "UNAUTHENTICATED"
                elif expected == 403:
                    assert 'error="insufficient_scope"' in challenge
                    assert "'agents:call'" in reply.json()["error"]["message"]
                elif call.body is SEND:
                    assert reply.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert not wrong, "\n".join(wrong)


def test_the_card_declares_the_bearer_scheme_and_the_metadata_names_the_mcp_resource(
    secured: tuple[AgentApp, str],
) -> None:
    app, url = secured
    server = app.agent_server
    with httpx.Client(timeout=10) as http:
        for agent in server.agents:
            card = http.get(server.card_url(agent)).json()
            assert card["securitySchemes"] == {
                "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}}
            }
            assert card["securityRequirements"] == [{"schemes": {"bearer": {"list": ["agents:call"]}}}]
            assert card["capabilities"]["extendedAgentCard"] is True
            mcp = server.mcp_url(agent)
            document = http.get(url + "/.well-known/oauth-protected-resource" + mcp.removeprefix(url)).json()
            assert document == {
                "resource": mcp,
                "authorization_servers": [],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["agents:call"],
                "resource_name": agent.name if len(server.agents) == 1 else "scaleout agents",
            }
        root = http.get(url + "/.well-known/oauth-protected-resource").json()
    assert root["resource"] == (server.mcp_url(server.agents[0]) if len(server.agents) == 1 else url)


def test_without_keys_the_card_declares_nothing_and_there_is_no_extended_card() -> None:
    port = free_port()
    with serve_in_thread(create_app(echo_agent(), f"http://127.0.0.1:{port}"), port) as url:
        card = httpx.get(url + AGENT_CARD_PATH).json()
        assert card["securitySchemes"] == {} and card["securityRequirements"] == []
        assert card["capabilities"]["extendedAgentCard"] is False

        envelope = {"jsonrpc": "2.0", "id": 7, "method": "GetExtendedAgentCard", "params": {}}
        error = httpx.post(url + "/", json=envelope, headers=HEADERS).json()["error"]
    assert error["code"] == ExtendedAgentCardNotConfiguredError.code and "--jwks" in error["message"]


def test_authenticated_callers_get_the_extended_card_with_the_skill_schemas(
    secured: tuple[AgentApp, str], keys: Keys
) -> None:
    app, url = secured
    agent = app.agent_server.agents[0]
    envelope = {"jsonrpc": "2.0", "id": 7, "method": "GetExtendedAgentCard", "params": {}}
    headers = {**HEADERS, **_credentials(keys, "right scope")}
    reply = httpx.post(app.agent_server.url(agent), json=envelope, headers=headers, timeout=10)
    card = reply.json()["result"]
    (extension,) = card["capabilities"]["extensions"]
    assert extension["uri"] == SKILL_SCHEMAS_EXTENSION
    assert extension["params"]["skills"]["echo"] == {
        "input": EchoIn.model_json_schema(),
        "output": EchoOut.model_json_schema(mode="serialization"),
    }
    assert card["name"] == agent.name and card["securitySchemes"]


def test_a_key_revoked_while_the_server_runs_is_refused_within_seconds(tmp_path: Path) -> None:
    jwks, pem = str(tmp_path / "jwks.json"), str(tmp_path / "key.pem")
    assert _cli("auth", "keygen", "--key", pem, "--jwks", jwks) == 0
    key = SigningKey.load(pem)
    token = key.token("soon-revoked", ["agents:call"], issuer="scaleout", audience="scaleout", ttl_s=600)
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    port = free_port()
    app = create_app(echo_agent(), f"http://127.0.0.1:{port}", auth=AuthSettings(jwks_file=Path(jwks)))
    with serve_in_thread(app, port) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/", json=SEND, headers=headers).status_code == 200  # verified, and now cached
        assert _cli("auth", "revoke", key.kid, "--jwks", jwks) == 0
        deadline = time.monotonic() + 10  # the key set is re-read at most once a second
        while (status := http.post("/", json=SEND, headers=headers).status_code) == 200:
            assert time.monotonic() < deadline, "the revocation was not picked up"
        assert status == 401
        assert "revoked" in http.post("/", json=SEND, headers=headers).json()["error"]["message"]


# -- tenancy: A2A tasks belong to their caller -------------------------------------------------------------------


class Key(BaseModel):
    key: str


def _gated_agent() -> Agent:
    agent = echo_agent("gated")
    gates: dict[str, anyio.Event] = {}

    @agent.skill()
    async def hold(ctx: SkillContext, req: Key) -> Key:
        """Run until ``release`` with the same key."""
        await gates.setdefault(req.key, anyio.Event()).wait()
        return req

    @agent.skill()
    async def release(ctx: SkillContext, req: Key) -> Key:
        """Let ``hold`` with this key finish."""
        gates.setdefault(req.key, anyio.Event()).set()
        return req

    return agent


@pytest.fixture(scope="module")
def gated_url(keys: Keys) -> Iterator[str]:
    port = free_port()
    with serve_in_thread(create_app(_gated_agent(), f"http://127.0.0.1:{port}", auth=keys.auth()), port) as url:
        yield url


def _not_found_text(exc: BaseException, task_id: str) -> str:
    return str(exc).replace(task_id, "ID")


@pytest.mark.anyio
async def test_tasks_of_one_principal_are_not_found_by_another_and_admin_sees_all(gated_url: str, keys: Keys) -> None:
    alice_token, bob_token = keys.token("alice"), keys.token("bob")
    admin_token = keys.token("root", ("admin",))
    with anyio.fail_after(30):
        async with (
            HttpAgentClient(gated_url, token=alice_token) as alice,
            HttpAgentClient(gated_url, token=bob_token) as bob,
            HttpAgentClient(gated_url, token=admin_token) as admin,
        ):
            done = await alice.send_message(skill_message("echo", {"text": "mine"}))
            held = await alice.send_message(skill_message("hold", {"key": "k1"}), return_immediately=True)
            theirs = await bob.send_message(skill_message("echo", {"text": "bob's"}))
            with pytest.raises(TaskNotFoundError) as unknown:
                await bob.get_task("no-such-task")
            follow_up = skill_message("echo", {"text": "x"}).model_copy(update={"task_id": done.id})
            attempts: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                (done.id, lambda: bob.get_task(done.id)),
                (held.id, lambda: bob.cancel_task(held.id)),
                (done.id, lambda: bob.send_message(follow_up)),  # continuing someone else's task
            ]
            for task_id, attempt in attempts:
                with pytest.raises(TaskNotFoundError) as refused:
                    await attempt()
                assert _not_found_text(refused.value, task_id) == _not_found_text(unknown.value, "no-such-task")
            with pytest.raises(TaskNotFoundError):
                async for _ in bob.subscribe(held.id):
                    pass
            assert [t.id for t in (await bob.list_tasks()).tasks] == [theirs.id]
            assert {t.id for t in (await alice.list_tasks()).tasks} == {done.id, held.id}
            # the owner is told more than "not found": a finished task cannot take another turn
            with pytest.raises(UnsupportedOperationError):
                await alice.send_message(follow_up)
            assert (await admin.get_task(done.id)).id == done.id
            assert {t.id for t in (await admin.list_tasks()).tasks} == {done.id, held.id, theirs.id}
            assert (await alice.cancel_task(held.id)).status.state.value == "TASK_STATE_CANCELED"


@pytest.mark.anyio
async def test_principals_of_one_tenant_share_its_tasks_and_a_subject_named_like_it_does_not(
    gated_url: str, keys: Keys
) -> None:
    with anyio.fail_after(20):
        async with (
            HttpAgentClient(gated_url, token=keys.token("carol", tenant="acme")) as carol,
            HttpAgentClient(gated_url, token=keys.token("dave", tenant="acme")) as dave,
            HttpAgentClient(gated_url, token=keys.token("acme")) as impostor,  # subject "acme", no tenant
        ):
            task = await carol.send_message(skill_message("echo", {"text": "shared"}))
            assert (await dave.get_task(task.id)).id == task.id
            assert task.id in {t.id for t in (await dave.list_tasks()).tasks}
            with pytest.raises(TaskNotFoundError):
                await impostor.get_task(task.id)
            assert (await impostor.list_tasks()).tasks == []


@pytest.mark.anyio
async def test_http_client_raises_access_errors_with_the_status(gated_url: str, keys: Keys) -> None:
    with anyio.fail_after(20):
        async with HttpAgentClient(gated_url, token="") as anonymous:
            with pytest.raises(AgentAccessError) as missing:
                await anonymous.send_message(skill_message("echo", {"text": "x"}))
        async with HttpAgentClient(gated_url, token=keys.token(scopes=("runs:read",))) as scoped:
            with pytest.raises(AgentAccessError) as forbidden:
                async for _ in scoped.stream_message(skill_message("echo", {"text": "x"})):
                    pass
    assert missing.value.http_status == 401 and "bearer token" in str(missing.value)
    assert forbidden.value.http_status == 403 and "agents:call" in str(forbidden.value)


def test_the_client_sends_scaleout_token_by_default(
    gated_url: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALEOUT_TOKEN", keys.token("from-env"))

    async def call() -> str:
        async with HttpAgentClient(gated_url) as client:
            return (await client.send_message(skill_message("echo", {"text": "env"}))).status.state.value

    assert anyio.run(call) == "TASK_STATE_COMPLETED"


# -- the official clients: a2a-sdk 1.3 and the MCP python-sdk -------------------------------------------------------


class _Credentials(CredentialService):
    """Hands the a2a-sdk's AuthInterceptor our token for the card's "bearer" scheme."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.asked: list[str] = []

    async def get_credentials(self, security_scheme_name: str, context: Any) -> str | None:
        self.asked.append(security_scheme_name)
        return self.token


def _sdk_request(text: str) -> SdkSendMessageRequest:
    value = struct_pb2.Value()
    json_format.ParseDict({"text": text}, value)
    message = SdkMessage(role=Role.ROLE_USER, message_id=f"sdk-{text}", parts=[SdkPart(data=value)])
    message.metadata.update({"skill": "echo"})
    return SdkSendMessageRequest(message=message)


@pytest.mark.anyio
@pytest.mark.parametrize("streaming", [False, True], ids=["SendMessage", "SendStreamingMessage"])
async def test_the_a2a_sdk_client_calls_with_a_bearer_token_and_fails_cleanly_without(
    gated_url: str, keys: Keys, streaming: bool
) -> None:
    credentials = _Credentials(keys.token("sdk-user"))
    config = ClientConfig(streaming=streaming)
    with anyio.fail_after(30):
        client = await create_client(gated_url, client_config=config, interceptors=[AuthInterceptor(credentials)])
        async with client:
            events = [event async for event in client.send_message(_sdk_request("with token"))]
            extended = await client.get_extended_agent_card(GetExtendedAgentCardRequest())
        bare = await create_client(gated_url, client_config=config)
        async with bare:
            with pytest.raises(A2AClientError, match="401"):
                async for _ in bare.send_message(_sdk_request("without")):
                    pass
    assert credentials.asked and set(credentials.asked) == {"bearer"}  # read from our card's security fields
    states = [e.task.status.state for e in events if e.HasField("task")]
    states += [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    uris = [extension.uri for extension in extended.capabilities.extensions]
    assert uris == [SKILL_SCHEMAS_EXTENSION]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_mcp_sdk_client_calls_with_a_bearer_token_and_fails_cleanly_without(
    gated_url: str, keys: Keys, mode: str
) -> None:
    headers = {"Authorization": f"Bearer {keys.token('mcp-user')}"}
    with anyio.fail_after(30):
        async with httpx2.AsyncClient(headers=headers, timeout=20) as http:
            async with McpClient(streamable_http_client(gated_url + "/mcp", http_client=http), mode=mode) as client:
                tools = (await client.list_tools()).tools
                result = await client.call_tool("echo", {"text": "over mcp"})
        async with httpx2.AsyncClient(timeout=20) as http:
            with pytest.raises(BaseException) as refused:  # noqa: PT011 - the SDK's own error type, checked below
                async with McpClient(streamable_http_client(gated_url + "/mcp", http_client=http), mode=mode):
                    pass
    assert "echo" in [t.name for t in tools]
    assert result.structured_content == {"text": "over mcp", "length": 8}
    (error,) = _leaves(refused.value)  # one clear error (in the SDK's task groups), carrying our reason
    assert isinstance(error, MCPError) and "bearer token" in str(error)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    inner = getattr(exc, "exceptions", None)
    return [leaf for e in inner for leaf in _leaves(e)] if inner else [exc]


# -- TLS ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    files: TlsFiles
    ca_file: str


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    where = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(where / "server.pem"))
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    return Tls(TlsFiles(cert=str(where / "server.pem"), key=str(where / "server.pem")), str(where / "ca.pem"))


def test_an_agent_over_tls_is_called_by_a_client_that_trusts_its_ca_and_refused_by_others(tls: Tls, keys: Keys) -> None:
    port = free_port()
    app = create_app(echo_agent(), f"https://127.0.0.1:{port}", auth=keys.auth())

    async def call(**options: Any) -> str:
        async with HttpAgentClient(url, token=keys.token(), **options) as client:
            assert (await client.get_card()).url == f"https://127.0.0.1:{port}/"
            return (await client.send_message(skill_message("echo", {"text": "tls"}))).status.state.value

    with serve_in_thread(app, port, tls=tls.files) as url:
        assert url.startswith("https://")
        assert anyio.run(lambda: call(ca_file=tls.ca_file)) == "TASK_STATE_COMPLETED"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            anyio.run(lambda: call())  # the system's CAs do not know the test CA
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + AGENT_CARD_PATH, verify=True, timeout=10)


# -- the command line ----------------------------------------------------------------------------------------------


def test_serve_beyond_loopback_without_keys_refuses_to_start(keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    # 192.0.2.1 (TEST-NET) is no address of this machine: nothing could listen there, with or without the check.
    assert _cli("agent", "serve", "agents.examples:echo_agent", "--host", "192.0.2.1", "--port", "8000") == 2
    error = capsys.readouterr().err
    assert error.startswith("error: refusing to serve on 192.0.2.1") and "--jwks" in error
    assert error.count("\n") == 1
    with pytest.raises(InsecureBind, match="0.0.0.0"):
        create_app(echo_agent(), host="0.0.0.0")
    secured = create_app(echo_agent(), host="0.0.0.0", auth=keys.auth())  # with keys it may (nothing binds here)
    assert secured.access is not None and secured.access.verifier is not None


def test_serve_with_keys_and_tls_and_call_with_token_and_ca_file(
    tls: Tls, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    command = [sys.executable, "-c", "import sys; from orchestrator.cli import main; sys.exit(main())"]
    command += ["agent", "serve", "agents.examples:echo_agent", "--port", str(port), "--jwks", str(keys.jwks)]
    command += ["--tls-cert", tls.files.cert, "--tls-key", tls.files.key]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    url = f"https://127.0.0.1:{port}/"
    try:
        assert server.stderr is not None
        assert server.stderr.readline().strip() == f"echo: {url.rstrip('/')}{AGENT_CARD_PATH}"
        context = ssl.create_default_context(cafile=tls.ca_file)
        transport = httpx.HTTPTransport(retries=20, verify=context)
        with httpx.Client(timeout=10, transport=transport) as http:  # waits for the server to listen
            assert http.get(url.rstrip("/") + AGENT_CARD_PATH).json()["securitySchemes"]
        capsys.readouterr()
        call = ["agent", "call", "--json", url, "echo", '{"text": "cli"}', "--ca-file", tls.ca_file]
        assert _cli(*call, "--token", keys.token("cli")) == 0
        assert json.loads(capsys.readouterr().out)["status"]["state"] == "TASK_STATE_COMPLETED"
        assert _cli(*call, "--token", keys.token("cli", ("runs:read",))) == 1
        assert "HTTP 403" in capsys.readouterr().err
        assert _cli(*call[:-2], "--token", keys.token("cli")) == 1  # no --ca-file: the certificate is not trusted
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    finally:
        server.terminate()
        _, rest = server.communicate(timeout=10)
    assert "not authenticated" not in rest


def test_serve_refuses_half_a_tls_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("agent", "serve", "agents.examples:echo_agent", "--port", "1", "--tls-cert", "x.pem") == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


def test_call_without_a_token_says_401(
    gated_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCALEOUT_TOKEN", raising=False)
    monkeypatch.setenv("SCALEOUT_TOKEN_FILE", "/nonexistent/token")
    assert _cli("agent", "call", gated_url, "echo", '{"text": "x"}') == 1
    error = capsys.readouterr().err
    assert error.startswith("error: HTTP 401: ") and "bearer token" in error and error.count("\n") == 1
