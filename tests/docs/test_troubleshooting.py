"""docs/troubleshooting.md quotes the real messages: each mistake is made through the real ``scaleout`` command and
its one line (with this machine's paths and ports put back to the page's) must be on the page."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agents.testing import free_port
from tests.processes import ROOT, SCALEOUT, command_env, run_command

PAGE = (ROOT / "docs" / "troubleshooting.md").read_text()

pytestmark = pytest.mark.slow


def _line(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """The command's one error line (it must fail, with one line and no traceback)."""
    result = run_command(*SCALEOUT, *args, cwd=cwd, env=env or command_env(), timeout=60)
    assert result.returncode != 0, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def _on_page(line: str) -> None:
    assert line.startswith("error: ")
    assert line in PAGE, f"docs/troubleshooting.md does not show the message users get:\n{line}"


def test_an_agent_module_that_cannot_be_imported(tmp_path: Path) -> None:
    line = _line("agent", "serve", "mymodule:agent", cwd=tmp_path)
    _on_page(line.replace(str(tmp_path), "/home/me/project"))


def test_nothing_answers_at_the_url(tmp_path: Path) -> None:
    port = str(free_port())
    line = _line("run", "echo", "--input", '{"text": "hi"}', "--url", f"http://127.0.0.1:{port}", cwd=tmp_path)
    _on_page(line.replace(port, "8100"))
    line = _line("agent", "call", f"http://127.0.0.1:{port}/", "echo", '{"text": "hi"}', cwd=tmp_path)
    _on_page(line.replace(port, "8000"))


def test_input_that_is_not_json(tmp_path: Path) -> None:
    _on_page(_line("run", "echo", "--input", "{'text': 'hi'}", cwd=tmp_path))


def test_no_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    line = _line("registry", "list", cwd=tmp_path, env=command_env(SCALEOUT_HOME=str(home)))
    _on_page(line.replace(str(home), "/home/me/.local/share/scaleout"))


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        line = _line("registry", "serve", "--port", port, "--db", f"sqlite:///{tmp_path}/r.db", cwd=tmp_path)
    _on_page(line.replace(port, "8000"))
