"""The first mistakes of a new user, through the real ``scaleout`` command: a short message, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from agents.loading import load_agents

SCALEOUT = [sys.executable, "-m", "orchestrator.cli"]
REPO = Path(__file__).resolve().parents[2]

AGENT_MODULE = textwrap.dedent(
    """
    from pydantic import BaseModel

    from agents import Agent, SkillContext

    class Name(BaseModel):
        name: str

    class Greeting(BaseModel):
        text: str

    agent = Agent("greeter", "says hello")

    @agent.skill(description="greets someone")
    async def greet(ctx: SkillContext, req: Name) -> Greeting:
        return Greeting(text=f"hello {req.name}")
    """
)


def _scaleout(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.run([*SCALEOUT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_an_agent_module_in_the_current_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "greeting_agent.py").write_text(AGENT_MODULE)
    [agent] = load_agents("greeting_agent:agent", app_dir=str(tmp_path))
    assert agent.name == "greeter"


def test_a_module_that_cannot_be_imported_is_one_line_naming_where_it_looked(tmp_path: Path) -> None:
    result = _scaleout("agent", "mcp", "no_such_module:agent", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot import 'no_such_module'")
    assert str(tmp_path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
