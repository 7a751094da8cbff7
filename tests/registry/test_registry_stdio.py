"""Stdio MCP servers are local configuration: the allowlist file, `registry add-stdio`, and the health sweep."""

from __future__ import annotations

import argparse
import io
import os
import shlex
import stat
import sys
from pathlib import Path

import anyio
import pytest
from pydantic import ValidationError

from protocol.a2a import AgentCard, AgentInterface
from registry import HealthStatus, Registration, Registry, StdioRegistration
from registry.cli import add_parser, run
from registry.health import HealthChecker
from registry.stdio import StdioAllowlist, StdioNotAllowed, default_allowlist_path

SERVER = [sys.executable, str(Path(__file__).parent / "mcp_stdio_server.py")]
URL = "mcp+stdio:" + shlex.join(SERVER)


def cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="scaleout")
    add_parser(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    return run(parser.parse_args(list(argv)), out), out.getvalue()


def test_allowlist_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cfg" / "allow"
    monkeypatch.setenv("SCALEOUT_STDIO_ALLOWLIST", str(path))
    assert default_allowlist_path() == path
    empty = StdioAllowlist.load()  # a missing file allows nothing
    assert not empty.allows(URL)
    with pytest.raises(StdioNotAllowed, match=f"not in this host's stdio allowlist \\({path}\\).*add-stdio"):
        empty.check(URL)
    empty.add(SERVER)
    empty.add(SERVER)  # once only
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_text(path.read_text() + "\n# a comment\n   \nnode 'my server.js' --flag\n")
    loaded = StdioAllowlist.load()
    assert loaded.check(URL) == SERVER and loaded.allows(["node", "my server.js", "--flag"])
    assert not loaded.allows([*SERVER, "--extra"])  # exact argument lists only
    assert not loaded.allows("mcp+stdio:node my server.js --flag")
    assert path.read_text().count(shlex.join(SERVER)) == 1
    path.write_text("python 'unterminated\n")
    with pytest.raises(ValueError, match=f"{path}:1"):
        StdioAllowlist.load()


def _stdio_card() -> AgentCard:
    return AgentCard(name="units", description="d", version="1", supported_interfaces=[AgentInterface(url=URL)])


def test_only_stdio_registrations_name_commands() -> None:
    with pytest.raises(ValidationError, match="add-stdio"):
        Registration(card=_stdio_card(), transport="mcp", url=URL)
    reg = StdioRegistration(card=_stdio_card(), transport="mcp", url=URL)
    assert reg.url == URL
    with pytest.raises(ValidationError, match="needs transport 'mcp'"):
        StdioRegistration(card=_stdio_card(), transport="a2a", url=URL)
    with pytest.raises(ValidationError, match="names no command"):
        StdioRegistration(card=_stdio_card(), transport="mcp", url="mcp+stdio:  ")
    with pytest.raises(ValidationError, match="must be an http"):
        StdioRegistration(card=_stdio_card(), transport="a2a", url="ftp://x/")


def test_add_stdio_lists_tools_allows_and_registers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, allow = f"sqlite:///{tmp_path}/r.db", tmp_path / "allow"
    code, text = cli("registry", "add-stdio", "units-local", "--db", db, "--allowlist", str(allow), "--", *SERVER)
    assert code == 0, capsys.readouterr().err
    assert "registered units-local" in text and "1 skills" in text
    assert StdioAllowlist.load(allow).check(URL) == SERVER
    with Registry(db) as reg:
        rec = reg.find("units-local")
    assert rec.transport == "mcp" and rec.url == URL and [s.id for s in rec.skills] == ["mm_to_inch"]
    # options may also come between NAME and '--'; a command that does not answer is not allowed
    code, _ = cli("registry", "add-stdio", "broken", "--db", db, "--allowlist", str(allow), "--", "/no/such/program")
    assert code == 1 and "cannot list the tools" in capsys.readouterr().err
    assert not StdioAllowlist.load(allow).allows(["/no/such/program"])


def test_stdio_is_refused_through_the_api_and_by_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, allow = f"sqlite:///{tmp_path}/r.db", tmp_path / "allow"
    code, _ = cli("registry", "add-stdio", "x", "--api", "http://127.0.0.1:9", "--allowlist", str(allow), "--", "ls")
    assert code == 1 and "not through --api" in capsys.readouterr().err
    code, _ = cli("registry", "add", "stdio:" + shlex.join(SERVER), "--db", db)
    assert code == 1 and "add-stdio NAME -- COMMAND" in capsys.readouterr().err
    code, _ = cli("registry", "add-stdio", "x", "--db", db, "--allowlist", str(allow))
    assert code == 1 and "give the command" in capsys.readouterr().err
    assert not allow.exists()


@pytest.mark.anyio
async def test_health_sweep_starts_only_allowlisted_commands(tmp_path: Path) -> None:
    with Registry(f"sqlite:///{tmp_path}/r.db") as reg:
        rec = reg.register(StdioRegistration(card=_stdio_card(), transport="mcp", url=URL))
        with anyio.fail_after(60):
            refused = HealthChecker(reg, failures_to_unhealthy=2, timeout=20)  # no allowlist: nothing starts
            for _ in range(2):
                report = await refused.sweep()
                assert report.failed == [rec.id] and "stdio allowlist" in report.reasons[rec.id]
            assert reg.get(rec.id).status is HealthStatus.UNHEALTHY
            allowed = HealthChecker(reg, timeout=20, stdio_allowlist=StdioAllowlist([SERVER], tmp_path / "allow"))
            report = await allowed.sweep()
        assert report.ok == [rec.id], report.reasons
        assert reg.get(rec.id).status is HealthStatus.HEALTHY
