"""The platform as separate processes with auth and TLS on loopback: a registry, an orchestrator and two agents,
each its own ``scaleout ... serve``; a run goes through end to end with the user's and the orchestrator's tokens;
an orchestrator without its agent token gets 401 from the agent, recorded on the attempt."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from agents.testing import free_port
from protocol.a2a import AgentCard
from protocol.auth import SigningKey
from registry.models import Registration

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60.0


@contextmanager
def _serve(log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``scaleout ARGS`` as a child process; killed (SIGKILL) at the end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SCALEOUT_TOKEN", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def _wait(url: str, ca: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=2) as client:
        for _ in range(int(STARTUP_S / 0.25)):
            if proc.poll() is not None:
                raise AssertionError(f"{url} exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                client.get(url)
                return
            except httpx.TransportError:
                try:
                    proc.wait(timeout=0.25)  # a bounded pause that also notices an early exit
                except subprocess.TimeoutExpired:
                    pass
    raise AssertionError(f"{url} did not answer within {STARTUP_S} s: {log.read_text()[-2000:]}")


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(paths["cert"]), append=True)
    cert.private_key_pem.write_to_path(str(paths["key"]))
    key = SigningKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk()]}))

    def token(subject: str, *scopes: str) -> str:
        return key.token(subject, scopes, issuer="scaleout", audience="scaleout", ttl_s=600)

    return {**{k: str(v) for k, v in paths.items()}, "jwks": str(jwks), "token": token}


def test_a_run_across_processes_with_auth_and_tls(tmp_path: Path, pki: dict[str, Any]) -> None:
    db = f"sqlite:///{tmp_path / 'platform.db'}"
    tls = ["--jwks", pki["jwks"], "--tls-cert", pki["cert"], "--tls-key", pki["key"]]
    ports = {name: free_port() for name in ("registry", "orch", "orch2", "a", "b")}
    url = {name: f"https://127.0.0.1:{port}" for name, port in ports.items()}
    admin = pki["token"]("ops", "registry:write", "registry:read")
    user = pki["token"]("alice", "runs:submit", "runs:read")
    orch_token = pki["token"]("orchestrator", "agents:call")
    with ExitStack() as stack:
        logs = {name: tmp_path / f"{name}.log" for name in ports}
        for name, target in (("a", "first"), ("b", "second")):
            proc = stack.enter_context(
                _serve(
                    logs[name],
                    "agent",
                    "serve",
                    f"tests.security.e2e_agents:{target}",
                    "--port",
                    str(ports[name]),
                    "--public-url",
                    url[name],
                    *tls,
                )
            )
            _wait(f"{url[name]}/.well-known/agent-card.json", pki["ca"], proc, logs[name])
        registry = stack.enter_context(
            _serve(logs["registry"], "registry", "serve", "--db", db, "--port", str(ports["registry"]), *tls)
        )
        _wait(f"{url['registry']}/healthz", pki["ca"], registry, logs["registry"])
        with httpx.Client(verify=ssl.create_default_context(cafile=pki["ca"]), timeout=30) as http:
            for name in ("a", "b"):
                card = AgentCard.model_validate(http.get(f"{url[name]}/.well-known/agent-card.json").json())
                body = Registration(card=card, url=url[name] + "/").model_dump(mode="json", by_alias=True)
                anonymous = http.post(f"{url['registry']}/agents", json=body)
                assert anonymous.status_code == 401, anonymous.text
                resp = http.post(f"{url['registry']}/agents", json=body, headers={"Authorization": f"Bearer {admin}"})
                assert resp.status_code == 201, resp.text
        orch = stack.enter_context(
            _serve(
                logs["orch"],
                "orchestrator",
                "serve",
                "--db",
                db,
                "--port",
                str(ports["orch"]),
                "--agent-token",
                orch_token,
                "--ca-file",
                pki["ca"],
                *tls,
            )
        )
        _wait(f"{url['orch']}/health", pki["ca"], orch, logs["orch"])
        record = _run(url["orch"], pki["ca"], user)
        assert record["status"] == "succeeded", record
        assert record["tasks"][0]["output"] == {"text": "hi", "length": 2}
        with httpx.Client(
            verify=ssl.create_default_context(cafile=pki["ca"]), timeout=30
        ) as http:  # nobody else's token reads it
            other = pki["token"]("mallory", "runs:read")
            seen = http.get(f"{url['orch']}/runs/{record['id']}", headers={"Authorization": f"Bearer {other}"})
            assert seen.status_code == 404
        orch.send_signal(signal.SIGKILL)
        orch.wait(timeout=10)
        # the same run through an orchestrator that has no token for the agents: 401 at the agent, on the attempt
        orch2 = stack.enter_context(
            _serve(
                logs["orch2"],
                "orchestrator",
                "serve",
                "--db",
                db,
                "--port",
                str(ports["orch2"]),
                "--ca-file",
                pki["ca"],
                *tls,
            )
        )
        _wait(f"{url['orch2']}/health", pki["ca"], orch2, logs["orch2"])
        failed = _run(url["orch2"], pki["ca"], user)
        assert failed["status"] == "failed"
        errors = [a["error"] or "" for a in failed["attempts"]]
        assert errors and all("401" in e for e in errors), errors


def _run(base: str, ca: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(verify=ssl.create_default_context(cafile=ca), timeout=60, headers=headers) as http:
        spec = {"skill": "echo", "input": {"text": "hi"}, "constraints": {"max_attempts": 2, "deadline_s": 20}}
        submitted = http.post(f"{base}/runs", json=spec)
        assert submitted.status_code == 202, submitted.text
        run_id = submitted.json()["id"]
        with http.stream("GET", f"{base}/runs/{run_id}/events") as events:  # ends when the run does
            for _ in events.iter_lines():
                pass
        record = http.get(f"{base}/runs/{run_id}").json()
        assert isinstance(record, dict)
        return record
