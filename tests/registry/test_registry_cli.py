"""The `registry` CLI commands, on a SQLite file and through the HTTP API."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from agents.examples import echo_agent
from agents.serve import create_app as agent_app
from agents.testing import free_port, serve_in_thread
from registry import Registry
from registry.api import create_app
from registry.cli import add_parser, run


def cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="scaleout")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    return run(args, out), out.getvalue()


def test_cli_on_database(tmp_path: Path, card, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path}/r.db"
    port = free_port()
    with serve_in_thread(agent_app(echo_agent("echo"), f"http://127.0.0.1:{port}"), port) as base:
        code, text = cli("registry", "add", base, "--db", db)
    assert code == 0 and "registered echo" in text
    with Registry(db) as reg:
        reg.register_card(card("reader", skills=[("parse_invoice", ["finance"])]))
    code, text = cli("registry", "list", "--db", db)
    assert code == 0 and text.splitlines()[0].split()[:4] == ["NAME", "ID", "VERSION", "STATUS"]
    assert "echo" in text and "reader" in text
    code, text = cli("registry", "search", "invoice", "--db", db, "--json")
    assert [r["name"] for r in json.loads(text)] == ["reader"]
    code, text = cli("registry", "search", "--tag", "finance", "--db", db)
    assert "reader" in text and "echo" not in text
    code, text = cli("registry", "show", "reader", "--db", db)
    assert "parse_invoice" in text and "version      1.0.0" in text
    code, text = cli("registry", "remove", "reader", "--db", db, "--json")
    assert code == 0 and "removed" in json.loads(text)
    code, _ = cli("registry", "show", "reader", "--db", db)
    assert code == 1 and "no agent 'reader'" in capsys.readouterr().err
    code, _ = cli("registry", "list", "--db", f"sqlite:///{tmp_path}/missing/r.db")
    assert code == 1 and "does not exist" in capsys.readouterr().err


def test_cli_through_api(tmp_path: Path, card) -> None:
    with Registry(f"sqlite:///{tmp_path}/r.db") as reg:
        reg.register_card(card("reader", skills=[("parse_invoice", ["finance"])]))
        with serve_in_thread(create_app(reg)) as api:
            code, text = cli("registry", "list", "--api", api, "--json")
            assert code == 0 and [r["name"] for r in json.loads(text)] == ["reader"]
            code, text = cli("registry", "show", "reader", "--api", api)
            assert code == 0 and "parse_invoice" in text
            code, text = cli("registry", "remove", "reader", "--api", api)
            assert code == 0 and reg.count() == 0
