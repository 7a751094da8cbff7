"""Every program in examples/ runs as a user would run it: agents served by ``scaleout agent serve`` from the
examples folder, called with ``scaleout agent call``, through an orchestrator by the Python and the curl client,
and the scenario script on its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from agents import LocalAgentClient, skill_message
from agents.testing import free_port
from protocol.a2a import TaskState

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCALEOUT = [sys.executable, "-m", "orchestrator.cli"]
STARTUP_S = 60.0

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    env.pop("SCALEOUT_TOKEN", None)
    return env


@contextmanager
def _served(logs: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``scaleout ARGS --port P`` started in examples/ (as a user would, from that folder); its base URL once it
    answers. Killed with SIGKILL at the end."""
    port = free_port()
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SCALEOUT, *args, "--port", str(port)], cwd=EXAMPLES, env=env or _env(), stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=2) as client:
            for _ in range(int(STARTUP_S / 0.25)):
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited {proc.returncode}: {log.read_text()[-2000:]}")
                try:
                    client.get(url + "/health" if "orchestrator" in args else url + "/.well-known/agent-card.json")
                    break
                except httpx.TransportError:
                    try:
                        proc.wait(timeout=0.25)  # a bounded pause that also notices an early exit
                    except subprocess.TimeoutExpired:
                        pass
            else:
                raise AssertionError(f"{name} did not answer within {STARTUP_S} s: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def _run(*command: str, cwd: Path = EXAMPLES, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=120)


def test_an_agent_that_calls_another_agent(tmp_path: Path) -> None:
    with ExitStack() as stack:
        quotes = stack.enter_context(_served(tmp_path, "quotes", "agent", "serve", "quote_agent:agent"))
        env = _env(QUOTE_AGENT_URL=quotes + "/")
        buyer = stack.enter_context(_served(tmp_path, "buyer", "agent", "serve", "purchasing_agent:agent", env=env))

        call = [*SCALEOUT, "agent", "call", buyer + "/", "purchase"]
        fits = _run(*call, '{"product": "pump", "quantity": 120, "budget": 10000}')
        assert fits.returncode == 0, fits.stderr
        decision = json.loads(fits.stdout)["artifacts"][0]["parts"][0]["data"]
        assert decision == {"buy": True, "total": 9576.0, "reason": "ships in 10 days"}  # 120 x 84.00 less 5 %

        over = _run(*call, '{"product": "pump", "quantity": 120, "budget": 500}')
        assert json.loads(over.stdout)["artifacts"][0]["parts"][0]["data"]["buy"] is False

        unknown = _run(*SCALEOUT, "agent", "call", quotes + "/", "quote", '{"product": "boiler", "quantity": 1}')
        task = json.loads(unknown.stdout)
        assert task["status"]["state"] == "TASK_STATE_REJECTED"  # a caller mistake, said plainly
        assert "we sell gearbox, pump, valve" in json.dumps(task["status"])


def test_the_scenario_written_from_scratch() -> None:
    result = _run(sys.executable, "restock_scenario.py", "--quantity", "120", "--budget", "12000")
    assert result.returncode == 0, result.stderr
    assert "approved - 120 pumps at 79.80, ships in 10 days" in result.stdout
    refused = _run(sys.executable, "restock_scenario.py", "--quantity", "500", "--budget", "100")
    assert "not approved - over budget (100.00)" in refused.stdout


def test_the_orchestrator_api_from_python_and_curl(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/platform.db"
    with ExitStack() as stack:
        quotes = stack.enter_context(_served(tmp_path, "quotes", "agent", "serve", "quote_agent:agent"))
        added = _run(*SCALEOUT, "registry", "add", quotes + "/", "--db", db)
        assert added.returncode == 0, added.stderr
        orchestrator = stack.enter_context(_served(tmp_path, "orchestrator", "orchestrator", "serve", "--db", db))
        order = '{"product": "valve", "quantity": 100}'

        python = _run(sys.executable, "api_client.py", orchestrator, "quote", order)
        assert python.returncode == 0, python.stdout + python.stderr
        assert "run.succeeded" in python.stdout
        assert python.stdout.strip().splitlines()[-1].startswith('succeeded: {"product": "valve", "quantity": 100')

        curl = _run("bash", "api_curl.sh", orchestrator, "quote", order)
        assert curl.returncode == 0, curl.stdout + curl.stderr
        assert "event: run.succeeded" in curl.stdout
        assert curl.stdout.strip().splitlines()[-1].startswith('succeeded {"product": "valve", "quantity": 100')


@pytest.mark.model
def test_the_model_agent_reads_an_order() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from order_reader_agent import order_reader_agent
    finally:
        sys.path.remove(str(EXAMPLES))

    async def read(text: str) -> dict[str, object]:
        async with LocalAgentClient(order_reader_agent()) as client:
            task = await client.send_message(skill_message("read_order", {"text": text}))
        assert task.status.state == TaskState.COMPLETED, task.status
        return dict(task.artifacts[0].parts[0].data or {})

    order = anyio.run(read, "Hello, please send us 40 valves, thanks")
    assert order["product"] == "valve"
    assert order["quantity"] == 40
