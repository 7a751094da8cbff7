"""Every program in examples/ runs as a user would run it: agents served by ``scaleout agent serve`` from the
examples folder, called with ``scaleout agent call``, through an orchestrator by the Python and the curl client,
and the scenario script on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import anyio
import pytest

from agents import LocalAgentClient, skill_message
from protocol.a2a import TaskState
from tests.processes import ROOT, SCALEOUT, command_env, run_command, served

EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow
_env = command_env


def _served(logs: Path, name: str, *args: str, env: dict[str, str] | None = None) -> AbstractContextManager[str]:
    """``scaleout ARGS --port P`` started in examples/ (as a user would, from that folder); its base URL."""
    return served(logs, name, *args, cwd=EXAMPLES, env=env)


def _run(*command: str, cwd: Path = EXAMPLES, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_command(*command, cwd=cwd, env=env)


def test_an_agent_that_calls_another_agent(tmp_path: Path) -> None:
    with ExitStack() as stack:
        quotes = stack.enter_context(_served(tmp_path, "quotes", "agent", "serve", "quote_agent:agent"))
        env = _env(QUOTE_AGENT_URL=quotes + "/")
        buyer = stack.enter_context(_served(tmp_path, "buyer", "agent", "serve", "purchasing_agent:agent", env=env))

        call = [*SCALEOUT, "agent", "call", "--json", buyer + "/", "purchase"]
        fits = _run(*call, '{"product": "pump", "quantity": 120, "budget": 10000}')
        assert fits.returncode == 0, fits.stderr
        decision = json.loads(fits.stdout)["artifacts"][0]["parts"][0]["data"]
        assert decision == {"buy": True, "total": 9576.0, "reason": "ships in 10 days"}  # 120 x 84.00 less 5 %

        over = _run(*call, '{"product": "pump", "quantity": 120, "budget": 500}')
        assert json.loads(over.stdout)["artifacts"][0]["parts"][0]["data"]["buy"] is False

        quote = [*SCALEOUT, "agent", "call", "--json", quotes + "/", "quote"]
        unknown = _run(*quote, '{"product": "boiler", "quantity": 1}')
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
