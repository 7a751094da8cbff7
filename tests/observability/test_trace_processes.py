"""One trace across three processes over real HTTP: ``scaleout orchestrator serve`` -> ``scaleout agent serve``
(alpha, whose skill calls beta over A2A) -> ``scaleout agent serve`` (beta).

Each process exports its spans with the standard variables (``OTEL_TRACES_EXPORTER=console``: one JSON span per
line on its stdout, written to a file the test reads). The test checks one trace id across all three processes,
every parent link (run -> task -> attempt -> A2A call -> A2A server -> skill -> model generation, and the hop from
alpha to beta), and the GenAI attributes of the (Scripted) model spans.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from agents.testing import free_port
from protocol.telemetry import GENAI_OPERATION, SPAN_A2A, SPAN_ATTEMPT, SPAN_RUN, SPAN_SKILL, SPAN_TASK
from registry import Registry
from tests.observability.trace_agents import BETA_URL_ENV, alpha

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60.0  # three Python servers importing at once on a loaded machine


@contextmanager
def _serve(tmp: Path, name: str, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``scaleout ARGS`` as a child process: spans (stdout) to ``<name>.spans``, logs (stderr) to ``<name>.log``;
    stopped with SIGTERM (a clean exit), killed if it does not go."""
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": name,
        **env,
    }
    for variable in ("SCALEOUT_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        environ.pop(variable, None)
    with (tmp / f"{name}.spans").open("wb") as spans, (tmp / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, env=environ, stdout=spans, stderr=log
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url`` until it answers (the server is up), failing early if the process exits."""
    async with httpx.AsyncClient(timeout=2) as http:
        with anyio.fail_after(STARTUP_S):
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"{url} exited {proc.returncode}: {_read(log)[-2000:]}")
                try:
                    await http.get(url)
                    return
                except httpx.TransportError:
                    await anyio.sleep(0.1)


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def _spans(path: Path) -> list[dict[str, Any]]:
    spans = []
    for line in _read(path).splitlines():
        if line.startswith("{"):
            spans.append(json.loads(line))
    return spans


async def _run(orch: str, spec: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=orch, timeout=30) as http:
        created = await http.post("/runs", json=spec)
        assert created.status_code in (200, 201, 202), created.text
        run_id = created.json()["id"]
        with anyio.fail_after(60):
            while True:
                record = (await http.get(f"/runs/{run_id}")).json()
                if record["status"] in ("succeeded", "failed", "cancelled"):
                    return dict(record)
                await anyio.sleep(0.1)


async def _until_exported(path: Path, name: str) -> None:
    """Wait (bounded) until the span ``name`` is in the file: spans are written as they end."""
    with anyio.fail_after(30):
        while True:
            if any(s["name"] == name for s in _spans(path)):
                return
            await anyio.sleep(0.05)


async def test_one_trace_spans_the_orchestrator_and_two_agents(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'platform.db'}"
    ports = {name: free_port() for name in ("orch", "alpha", "beta")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    target = "tests.observability.trace_agents"
    with ExitStack() as stack:
        beta = stack.enter_context(
            _serve(tmp_path, "beta", {}, "agent", "serve", f"{target}:beta", "--port", str(ports["beta"]))
        )
        alpha_proc = stack.enter_context(
            _serve(
                tmp_path,
                "alpha",
                {BETA_URL_ENV: url["beta"] + "/"},
                "agent",
                "serve",
                f"{target}:alpha",
                "--port",
                str(ports["alpha"]),
                "--log-format",
                "json",
            )
        )
        Registry(db).register_card(alpha.card(url["alpha"] + "/"), url=url["alpha"] + "/")
        orch = stack.enter_context(
            _serve(tmp_path, "orchestrator", {}, "orchestrator", "serve", "--db", db, "--port", str(ports["orch"]))
        )
        await _ready(f"{url['beta']}/.well-known/agent-card.json", beta, tmp_path / "beta.log")
        await _ready(f"{url['alpha']}/.well-known/agent-card.json", alpha_proc, tmp_path / "alpha.log")
        await _ready(f"{url['orch']}/health", orch, tmp_path / "orchestrator.log")

        record = await _run(url["orch"], {"skill": "relay", "input": {"text": "hi"}})
        assert record["status"] == "succeeded", record
        assert record["tasks"][0]["output"] == {"text": "relayed+LOUD"}
        await _until_exported(tmp_path / "orchestrator.spans", SPAN_RUN)

    by_service = {name: _spans(tmp_path / f"{name}.spans") for name in ("orchestrator", "alpha", "beta")}
    for name, spans in by_service.items():
        assert spans, f"{name} exported no spans: {_read(tmp_path / f'{name}.log')[-2000:]}"
        assert {s["resource"]["attributes"]["service.name"] for s in spans} == {name}
    spans = [span for spans in by_service.values() for span in spans]
    assert len({s["context"]["trace_id"] for s in spans}) == 1, "one trace across all three processes"

    by_id = {s["context"]["span_id"]: s for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == [SPAN_RUN]
    for span in spans:
        assert span["parent_id"] is None or span["parent_id"] in by_id, f"{span['name']}: parent not exported"

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        return by_id[span["parent_id"]]

    def one(service: str, name: str, kind: str | None = None) -> dict[str, Any]:
        found = [s for s in by_service[service] if s["name"] == name and (kind is None or s["kind"].endswith(kind))]
        assert len(found) == 1, f"{service}: {[s['name'] for s in by_service[service]]}"
        return found[0]

    send = f"{SPAN_A2A} SendMessage"
    run, task, attempt = (
        one("orchestrator", SPAN_RUN),
        one("orchestrator", SPAN_TASK),
        one("orchestrator", SPAN_ATTEMPT),
    )
    call_alpha = one("orchestrator", send, "CLIENT")
    assert parent(task) is run and parent(attempt) is task and parent(call_alpha) is attempt
    assert task["attributes"]["scaleout.routing.ranked"] == ["alpha"]
    assert attempt["attributes"]["scaleout.agent.name"] == "alpha"
    assert any(event["name"] == "routing.candidate" for event in task["events"])

    served_alpha, skill_alpha = one("alpha", send, "SERVER"), one("alpha", SPAN_SKILL)
    call_beta = one("alpha", send, "CLIENT")
    assert parent(served_alpha) is call_alpha and parent(skill_alpha) is served_alpha
    assert parent(call_beta) is skill_alpha
    served_beta, skill_beta = one("beta", send, "SERVER"), one("beta", SPAN_SKILL)
    assert parent(served_beta) is call_beta and parent(skill_beta) is served_beta

    for service, skill, model in (("alpha", skill_alpha, "scripted-alpha"), ("beta", skill_beta, "scripted-beta")):
        generation = one(service, f"{GENAI_OPERATION} {model}")
        assert parent(generation) is skill
        attributes = generation["attributes"]
        assert attributes["gen_ai.operation.name"] == GENAI_OPERATION
        assert attributes["gen_ai.request.model"] == model
        assert attributes["gen_ai.usage.input_tokens"] > 0 and attributes["gen_ai.usage.output_tokens"] > 0
