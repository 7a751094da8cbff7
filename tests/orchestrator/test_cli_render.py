"""The CLI's readable output: `runs show` summarises a run (status, usage, tasks, errors, outputs) and `--json` gives
the raw record; `runs watch` and `scaleout run` show progress (live on a terminal, one line per event otherwise)
and the outputs at the end."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console

from agents.testing import serve_in_thread
from orchestrator.api import create_app
from orchestrator.cli import main
from orchestrator.client import OrchestratorClient
from orchestrator.render import RunProgress, progress_bar, run_summary, watch_run
from tests.orchestrator.conftest import Behaviour, Platform, worker

GRAPH = {
    "name": "render demo",
    "tasks": [
        {"id": "a", "skill": "work", "input": {"text": "hello"}},
        {"id": "b", "skill": "broken", "input": {"text": "x"}, "constraints": {"max_attempts": 1}},
    ],
}


@pytest.fixture
def server(local_platform: Platform) -> Iterator[str]:
    local_platform.add(worker("w1"))
    local_platform.add(worker("broken", Behaviour(mode="fail"), skill="broken"))
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        yield url


def text_of(renderable: Any, *, terminal: bool = False) -> str:
    console = Console(file=io.StringIO(), width=140, force_terminal=terminal, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


async def finished_run(server: str) -> dict[str, Any]:
    async with OrchestratorClient(server) as client:
        with anyio.fail_after(20):
            return await client.run(GRAPH)


@pytest.mark.anyio
async def test_summary_shows_status_usage_tasks_errors_and_outputs(server: str) -> None:
    record = await finished_run(server)
    text = text_of(run_summary(record))
    assert "render demo" in text and record["id"] in text and "failed" in text
    assert "tasks 2/2 ended" in text and "w1" in text and "energy" in text and "attempts" in text
    outputs = " ".join(text.split("outputs", 1)[1].split())
    assert '"text": "HELLO"' in outputs  # task a's output, as JSON
    assert "b failed: attempt 1 on broken" in outputs and "broken fails on purpose" in outputs


def test_runs_show_is_readable_and_json_is_raw(server: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps(GRAPH))
    assert main(["run", str(graph), "--url", server, "--no-wait"]) == 0
    run_id = capsys.readouterr().out.strip()
    assert main(["runs", "watch", run_id, "--url", server]) == 1  # one task fails
    watched = " ".join(capsys.readouterr().out.split())
    assert "run.failed" in watched and "[2/2]" in watched and '"text": "HELLO"' in watched
    assert main(["runs", "show", run_id, "--url", server]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "render demo" in shown and "broken fails on purpose" in shown and not shown.startswith("{")
    assert main(["runs", "show", run_id, "--url", server, "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["id"] == run_id and {t["task_id"] for t in raw["tasks"]} == {"a", "b"}


def test_progress_counts_tasks_attempts_and_tokens() -> None:
    progress = RunProgress("r1")
    events = [
        {"seq": 1, "kind": "run.created", "task_id": None, "data": {"tasks": 3}},
        {"seq": 2, "kind": "attempt.started", "task_id": "a", "data": {"attempt_id": "x", "agent": "w1", "number": 1}},
        {"seq": 3, "kind": "attempt.started", "task_id": "b", "data": {"attempt_id": "y", "agent": "w2", "number": 1}},
    ]
    for event in events:
        progress.update(event)
    live = text_of(progress, terminal=True)
    assert "0/3 tasks" in live and "running a on w1 (attempt 1)" in live and "running b on w2" in live
    progress.update({"seq": 4, "kind": "attempt.succeeded", "task_id": "a", "data": {"attempt_id": "x", "tokens": 42}})
    progress.update({"seq": 5, "kind": "task.succeeded", "task_id": "a", "data": {}})
    live = text_of(progress, terminal=True)
    assert "1/3 tasks" in live and "42 tokens" in live and "running a" not in live and "running b" in live
    assert progress.line({"seq": 5, "kind": "task.succeeded", "task_id": "a", "data": {}}).split()[:3] == [
        "5",
        "[1/3]",
        "task.succeeded",
    ]


@pytest.mark.anyio
async def test_watch_on_a_terminal_draws_a_live_panel() -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"seq": 1, "kind": "run.created", "task_id": None, "data": {"tasks": 1}}
        yield {"seq": 2, "kind": "task.succeeded", "task_id": "a", "data": {}}
        yield {"seq": 3, "kind": "run.succeeded", "task_id": None, "data": {}}

    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    progress = await watch_run(events(), "r9", console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert progress.status == "succeeded" and "1/1 tasks" in out and "run r9" in out
    assert "task.succeeded" not in out  # a panel, not a log


def test_negotiation_summary_shows_the_outcome() -> None:
    record = {
        "id": "n1",
        "name": "price talk",
        "kind": "negotiation",
        "status": "succeeded",
        "error": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:00:02+00:00",
        "usage": None,
        "tasks": [],
        "output": {
            "outcome": "agreement",
            "agreement": {"price": 72},
            "utilities": {"buyer": 0.58, "seller": 0.6},
            "rounds": 4,
            "nash": {"offer": {"price": 70}, "utilities": {}},
        },
    }
    text = text_of(run_summary(record))
    assert "(negotiation)" in text and "agreement after 4 rounds" in text and '{"price": 72}' in text
    assert "buyer 0.580" in text and "Nash point" in text and "took 2.00 s" in text


def test_progress_bar_off_a_terminal_prints_one_line() -> None:
    console = Console(file=io.StringIO(), width=100)
    with progress_bar("registering", 3, console) as advance:
        for _ in range(3):
            advance()
    assert console.file.getvalue().strip() == "registering: 3/3 done"  # type: ignore[attr-defined]


def test_registry_import_registers_a_file_of_cards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from registry import Registry
    from tests.registry.conftest import make_card

    cards = tmp_path / "agents.jsonl"
    cards.write_text("\n".join(json.dumps(make_card(f"agent-{i}").wire()) for i in range(25)) + "\n")
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["registry", "import", str(cards), "--db", db, "--batch-size", "10"]) == 0
    assert "registered 25 agents" in capsys.readouterr().out
    with Registry(db) as registry:
        assert registry.count() == 25
    cards.write_text('{"name": "broken"}\n')
    assert main(["registry", "import", str(cards), "--db", db]) == 1
    assert "agents.jsonl:1: not a registration or agent card" in capsys.readouterr().err
