"""``scaleout init NAME``: a new folder with an agent module, a passing test, a README and a pyproject; never an
overwrite, and a bad name is one line saying what to pick."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import anyio
import pytest

from agents import Agent, LocalAgentClient, Scripted, skill_message
from orchestrator.init_cli import ScaffoldError, scaffold
from protocol.a2a import TaskState
from tests.processes import SCALEOUT, command_env, run_command


def _load(path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, path.stem, module)  # as an import would; pydantic resolves annotations there
    spec.loader.exec_module(module)
    return module


def test_init_writes_the_package_and_says_what_next(tmp_path: Path) -> None:
    result = run_command(*SCALEOUT, "init", "triage-desk", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "triage-desk"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "pyproject.toml",
        "test_triage_desk.py",
        "triage_desk.py",
    ]
    assert "scaleout agent serve triage_desk:agent" in result.stdout
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == "triage-desk"
    assert any(d.startswith("scaleout") for d in project["project"]["dependencies"])
    assert "scaleout agent serve triage_desk:agent" in (folder / "README.md").read_text()


def test_the_scaffolded_agent_has_one_typed_skill_that_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [module_path, *_] = scaffold("desk", tmp_path)
    module = _load(module_path, monkeypatch)
    agent = module.build_agent(Scripted([{"department": "sales", "urgent": True}]))  # type: ignore[attr-defined]
    assert isinstance(agent, Agent) and agent.name == "desk"
    [skill] = agent.card("http://127.0.0.1:1/").skills
    assert skill.id == "route"

    async def call() -> dict[str, object]:
        async with LocalAgentClient(agent) as client:
            task = await client.send_message(skill_message("route", {"text": "I want 300 pumps today"}))
        assert task.status.state == TaskState.COMPLETED, task.status
        return dict(task.artifacts[0].parts[0].data or {})

    assert anyio.run(call) == {"department": "sales", "urgent": True}


@pytest.mark.slow
def test_the_scaffolded_test_passes(tmp_path: Path) -> None:
    scaffold("desk", tmp_path)
    result = run_command(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path / "desk")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_an_existing_folder_is_refused_in_one_line_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "desk").mkdir()
    (tmp_path / "desk" / "mine.txt").write_text("keep me")
    result = run_command(*SCALEOUT, "init", "desk", cwd=tmp_path, env=command_env())
    assert result.returncode == 2
    assert result.stderr.strip() == "error: desk already exists; pick another NAME or --dir (nothing was overwritten)"
    assert [p.name for p in (tmp_path / "desk").iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("9lives", "is not a usable agent name"),
        ("my agent", "is not a usable agent name"),
        ("../escape", "is not a usable agent name"),
        ("json", "hides another one"),
        ("agents", "hides another one"),
        ("class", "hides another one"),
    ],
)
def test_a_name_that_cannot_be_a_module_is_refused(tmp_path: Path, name: str, says: str) -> None:
    with pytest.raises(ScaffoldError, match=says):
        scaffold(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_init_help_shows_an_example(tmp_path: Path) -> None:
    result = run_command(*SCALEOUT, "init", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "example: scaleout init triage-agent" in result.stdout
