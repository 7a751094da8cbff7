"""A new user's first hour, scripted: from a folder outside the repository, with only documented commands of the
real ``scaleout`` CLI (subprocesses): scaffold an agent, run its test, serve it, register it, serve an
orchestrator, run a task through it from the CLI and over HTTP, and run an example scenario."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.processes import ROOT, SCALEOUT, run_command, served

pytestmark = [pytest.mark.slow, pytest.mark.model]  # the scaffolded agent answers with the bundled model

DEPARTMENTS = {"sales", "support", "billing"}


def test_a_new_user_scaffolds_serves_registers_and_runs(tmp_path: Path) -> None:
    home = tmp_path / "work"
    home.mkdir()
    assert not home.resolve().is_relative_to(ROOT)
    logs = tmp_path / "logs"
    logs.mkdir()

    created = run_command(*SCALEOUT, "init", "triage-desk", cwd=home)
    assert created.returncode == 0, created.stderr
    project = home / "triage-desk"

    tested = run_command(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 passed" in tested.stdout

    db = f"sqlite:///{home / 'platform.db'}"
    with ExitStack() as stack:
        agent = stack.enter_context(served(logs, "agent", "agent", "serve", "triage_desk:agent", cwd=project))
        card = httpx.get(agent + "/.well-known/agent-card.json", timeout=10).json()
        assert [s["id"] for s in card["skills"]] == ["route"]

        added = run_command(*SCALEOUT, "registry", "add", agent + "/", "--db", db, cwd=home)
        assert added.returncode == 0, added.stdout + added.stderr
        assert "triage-desk" in added.stdout

        orchestrator = stack.enter_context(served(logs, "orchestrator", "orchestrator", "serve", "--db", db, cwd=home))
        message = '{"text": "My invoice charges me twice, please fix it today"}'
        ran = run_command(*SCALEOUT, "run", "route", "--input", message, "--json", "--url", orchestrator, cwd=home)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        brief = json.loads(ran.stdout[ran.stdout.index("{\n") :])
        assert brief["status"] == "succeeded"
        [route] = brief["tasks"].values()
        assert route["department"] in DEPARTMENTS and isinstance(route["urgent"], bool)

        with httpx.Client(base_url=orchestrator, timeout=120) as api:
            submitted = api.post("/runs", json={"skill": "route", "input": {"text": "Do you sell pumps?"}})
            assert submitted.status_code == 202, submitted.text
            run_id = submitted.json()["id"]
            with api.stream("GET", f"/runs/{run_id}/events") as events:  # closes itself when the run ends
                kinds = [line.removeprefix("event: ") for line in events.iter_lines() if line.startswith("event: ")]
            assert kinds[-1] == "run.succeeded", kinds
            record = api.get(f"/runs/{run_id}").json()
            assert record["status"] == "succeeded"
            assert record["tasks"][0]["output"]["department"] in DEPARTMENTS

    scenario = run_command(sys.executable, str(ROOT / "examples" / "restock_scenario.py"), cwd=home)
    assert scenario.returncode == 0, scenario.stdout + scenario.stderr
    assert "approved - 120 pumps at 79.80, ships in 10 days" in scenario.stdout
