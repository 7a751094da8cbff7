"""Registry records are data from the network: a stdio command starts only when this host's allowlist names it,
and agent URLs are reached only where the egress policy allows (a recording backend proves no connection was
tried). Over the orchestrator's HTTP API on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from agents.serve import create_app as agent_app
from agents.testing import free_port, no_network, serve_in_thread
from orchestrator import transports as orch_transports
from orchestrator.api import create_app
from orchestrator.cli import build_parser, serve_parts
from orchestrator.client import OrchestratorClient
from orchestrator.service import Orchestrator
from protocol.auth import SigningKey
from protocol.egress import EgressPolicy, GuardedBackend, guard_transport
from registry.models import StdioRegistration
from registry.stdio import StdioAllowlist
from tests.orchestrator.conftest import Platform, worker

pytestmark = pytest.mark.anyio

GOOD = {"skill": "work", "input": {"text": "ok"}}
NO_RETRY = {"backoff_s": 0}


class Recorder:
    """A network backend under the orchestrator's egress guard: records every connection the guard let through;
    passes loopback on to the real backend and refuses everything else (so no packet leaves the machine)."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.attempts: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **options: Any) -> Any:
        self.attempts.append((host, port))
        if self.inner is None or host not in ("127.0.0.1", "::1"):
            raise OSError(f"recording backend: no connection to {host}:{port} in tests")
        return await self.inner.connect_tcp(host, port, **options)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def record_connections(orchestrator: Orchestrator) -> Recorder:
    """Slide a Recorder under the egress guard of the orchestrator's A2A connection pool."""
    transports = orchestrator._transports
    assert transports is not None
    guard = transports._http._transport._pool._network_backend  # type: ignore[attr-defined]
    assert isinstance(guard, GuardedBackend), "the orchestrator's HTTP pool is not behind the egress guard"
    recorder = guard.inner = Recorder(guard.inner)
    return recorder


@pytest.fixture
def mcp_recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """A Recorder under the egress guard of every MCP HTTP client the orchestrator opens."""
    recorder = Recorder()

    def guarded(transport: Any, policy: EgressPolicy, inner: Any = None) -> Any:
        return guard_transport(transport, policy, recorder)

    monkeypatch.setattr(orch_transports, "guard_transport", guarded)
    return recorder


@pytest.fixture
def offline() -> Iterator[None]:
    """Any socket connection to a non-loopback address raises (a second net under the recorders)."""
    with no_network():
        yield


def _register(p: Platform, name: str, skill: str, url: str, transport: str = "a2a") -> None:
    p.registry.register_card(worker(name, skill=skill).card(url), transport=transport, url=url)  # type: ignore[arg-type]


async def test_private_and_metadata_addresses_are_never_contacted(
    any_platform: Platform, mcp_recorder: Recorder, offline: None
) -> None:
    p = any_platform
    p.add(worker("w1"))
    _register(p, "metadata", "probe", "http://169.254.169.254/")
    _register(p, "lan", "probe", "http://10.1.2.3:8080/")
    _register(p, "mcp-metadata", "probe", "mcp+http://169.254.169.254/mcp", transport="mcp")
    orchestrator = p.orchestrator()
    recorder = record_connections(orchestrator)
    with serve_in_thread(create_app(orchestrator)) as base:
        async with OrchestratorClient(base) as client:
            with anyio.fail_after(60):
                record = await client.run({"skill": "probe", "input": {"text": "x"}, "constraints": NO_RETRY})
                after = await client.run(GOOD)
    errors = {a["agent_url"]: a["error"] for a in record["attempts"]}
    assert record["status"] == "failed" and len(errors) == 3, errors
    for url, error in errors.items():
        assert "egress refused" in error, (url, error)
    assert "link-local" in errors["http://169.254.169.254/"] and "private" in errors["http://10.1.2.3:8080/"]
    assert recorder.attempts == [] and mcp_recorder.attempts == []  # refused before any connection
    assert after["status"] == "succeeded"


async def test_configured_ranges_are_reached_and_loopback_follows_the_bind(
    local_platform: Platform, offline: None
) -> None:
    p = local_platform
    _register(p, "lan", "probe", "http://10.1.2.3:8080/")
    _register(p, "metadata", "probe", "http://169.254.169.254/")
    lan_allowed = p.orchestrator(egress=EgressPolicy.for_bind("127.0.0.1", ["10.0.0.0/8"]))
    lan_recorder = record_connections(lan_allowed)
    public = p.orchestrator(egress=EgressPolicy.for_bind("0.0.0.0"))  # a public bind does not reach loopback
    port = free_port()
    near_base = f"http://127.0.0.1:{port}"
    with serve_in_thread(agent_app(worker("near", skill="near"), base_url=near_base), port=port):  # on loopback
        _register(p, "near", "near", near_base + "/")
        async with lan_allowed.running():  # one at a time: SQLite allows one orchestrator
            with anyio.fail_after(60):
                lan = await lan_allowed.run({"skill": "probe", "input": {"text": "x"}, "constraints": NO_RETRY})
        async with public.running():
            with anyio.fail_after(60):
                near = await public.run({"skill": "near", "input": {"text": "x"}, "constraints": NO_RETRY})
    assert set(lan_recorder.attempts) == {("10.1.2.3", 8080)}  # allowed: the checked address is the one dialled
    metadata = next(a["error"] for a in lan["attempts"] if "169.254" in a["agent_url"])
    assert "egress refused" in metadata  # link-local stays refused whatever is allowed
    assert near["status"] == "failed" and "loopback" in near["attempts"][0]["error"]


async def test_stdio_command_not_in_the_allowlist_is_never_started(any_platform: Platform, tmp_path: Path) -> None:
    p = any_platform
    p.add(worker("w1"))
    marker = tmp_path / "started"
    url = "mcp+stdio:" + shlex.join(["touch", str(marker)])
    p.registry.register(StdioRegistration(card=worker("toucher", skill="touch").card(url), transport="mcp", url=url))
    # No stdio_allowlist given: the default file ($SCALEOUT_STDIO_ALLOWLIST here, see conftest), which lacks it.
    with serve_in_thread(create_app(p.orchestrator())) as base:
        async with OrchestratorClient(base) as client:
            with anyio.fail_after(60):
                record = await client.run({"skill": "touch", "input": {"text": "x"}, "constraints": NO_RETRY})
                after = await client.run(GOOD)
    assert record["status"] == "failed"
    error = record["attempts"][0]["error"]
    assert error.startswith("AgentCallError: refused to start") and "stdio allowlist" in error, error
    assert "add-stdio" in error
    assert not marker.exists()  # the command never ran
    assert after["status"] == "succeeded"


async def test_allowlisted_stdio_command_runs_and_the_file_is_reread(local_platform: Platform, tmp_path: Path) -> None:
    p = local_platform
    command = [sys.executable, "-m", "agents.mcp", "tests.orchestrator.served_agent:stdio_worker"]
    url = "mcp+stdio:" + shlex.join(command)
    p.registry.register(
        StdioRegistration(card=worker("stdio-worker", skill="shout").card(url), transport="mcp", url=url)
    )
    allow_file = tmp_path / "allow"
    orchestrator = p.orchestrator(stdio_allowlist=StdioAllowlist.load(allow_file))
    spec = {"skill": "shout", "input": {"text": "hi"}, "constraints": {"max_attempts": 1}}
    async with orchestrator.running():
        with anyio.fail_after(90):
            refused = await orchestrator.run(spec)
            StdioAllowlist.load(allow_file).add(command)  # what 'scaleout registry add-stdio' does
            allowed = await orchestrator.run(spec)
    assert refused["status"] == "failed" and "stdio allowlist" in refused["attempts"][0]["error"]
    assert allowed["status"] == "succeeded", allowed["attempts"]
    assert allowed["tasks"][0]["output"] == {"text": "HI", "by": "stdio-worker"}


def test_serve_flags_build_the_policies(tmp_path: Path) -> None:
    allow = tmp_path / "allow"
    allow.write_text("my-tool --stdio\n")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [SigningKey.generate().jwk()]}))
    args = build_parser().parse_args(
        [
            "orchestrator", "serve", "--host", "0.0.0.0", "--port", "8123", "--db", str(tmp_path / "o.db"),
            "--jwks", str(tmp_path / "jwks.json"),
            "--allow-stdio", str(allow), "--allow-fetch", "10.0.0.0/8", "--allow-host", "orch.example.com",
            "--allow-origin", "https://ui.example.com", "--max-body-bytes", "5000", "--header-timeout", "3",
            "--max-tasks", "7", "--max-concurrency", "3", "--max-active-runs", "2", "--max-input-bytes", "900",
        ]
    )  # fmt: skip
    app, server = serve_parts(args)
    orchestrator: Orchestrator = app.app.state.orchestrator
    transports = orchestrator._transports
    assert transports is not None
    assert server.header_timeout_s == 3
    assert app.policy.max_body_bytes == 5000
    assert app.policy.host_allowed("orch.example.com") and not app.policy.host_allowed("evil.example.com")
    assert app.policy.origin_allowed("https://ui.example.com") and not app.policy.origin_allowed("http://evil.com")
    assert orchestrator.limits.model_dump() == {
        "max_tasks": 7,
        "max_concurrency": 3,
        "max_active_runs": 2,
        "max_queued_runs": 10_000,
        "max_input_bytes": 900,
    }
    assert transports.egress.refusal("10.1.2.3") is None and transports.egress.refusal("127.0.0.1") is not None
    assert transports.stdio_allowlist.allows(["my-tool", "--stdio"])
    orchestrator.store.close()
    for bad in (["--allow-fetch", "not-a-cidr"], ["--max-tasks", "0"]):
        with pytest.raises(SystemExit, match="error"):
            serve_parts(build_parser().parse_args(["orchestrator", "serve", "--db", str(tmp_path / "o.db"), *bad]))
