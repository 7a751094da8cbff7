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
from protocol.auth import SigningKey
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
    assert code == 1 and "no database at" in capsys.readouterr().err  # a read never creates one


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


def test_serve_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import httpx

    import protocol.serving

    served: dict[str, object] = {}
    monkeypatch.setattr(protocol.serving, "serve", lambda app, host, port, limits, **_: served.update(locals()))
    allow = tmp_path / "allow"
    allow.write_text("python -m tools\n")
    key = SigningKey.generate()
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.jwk()]}))
    writer = key.token("ops", ["registry:write"], issuer="scaleout", audience="scaleout", ttl_s=600)
    code, _ = cli(
        "registry",
        "serve",
        "--db",
        f"sqlite:///{tmp_path}/r.db",
        "--host",
        "0.0.0.0",
        "--allow-fetch",
        "10.0.0.0/8",
        "--allow-host",
        "registry.example:8600",
        "--allow-origin",
        "https://ui.example",
        "--max-body-bytes",
        "1000",
        "--header-timeout",
        "3",
        "--allow-stdio",
        str(allow),
        "--jwks",
        str(tmp_path / "jwks.json"),
    )
    assert code == 0 and served["host"] == "0.0.0.0" and served["limits"].header_timeout_s == 3  # type: ignore[attr-defined]
    app = served["app"]
    state = app.app.state  # type: ignore[attr-defined]
    assert not state.egress.allow_loopback and state.egress.refusal("10.1.2.3") is None  # bound beyond loopback
    assert state.stdio_allowlist.allows(["python", "-m", "tools"])
    with serve_in_thread(app) as base, httpx.Client(timeout=30) as http:
        assert http.get(f"{base}/healthz", headers={"Host": "registry.example:8600"}).status_code == 200
        assert http.get(f"{base}/healthz", headers={"Host": "evil.example:8600"}).status_code == 421
        assert http.get(f"{base}/healthz", headers={"Origin": "https://ui.example"}).status_code == 200
        resp = http.post(
            f"{base}/agents",
            content=b"[" + b" " * 2000 + b"]",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {writer}"},
        )
        assert resp.status_code == 413 and "1000 bytes" in resp.json()["error"]["message"]
    for flag, value, says in (
        ("--allow-fetch", "not-a-cidr", "invalid setting"),
        ("--max-body-bytes", "0", "--max-body-bytes 0"),  # a common server flag's error names the flag
        ("--allow-stdio", "/no/file", "invalid setting"),
    ):
        code, _ = cli("registry", "serve", "--db", f"sqlite:///{tmp_path}/r.db", flag, value)
        assert code == 2 and says in capsys.readouterr().err


def test_add_fetches_private_ranges_only_when_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from typing import Any

    from agents.testing import no_network
    from protocol.egress import guarded_client
    from registry import discovery

    attempts: list[tuple[str, int]] = []

    class Recorder:
        async def connect_tcp(self, host: str, port: int, **_: Any) -> Any:
            attempts.append((host, port))
            raise OSError("recording backend: no real connection in tests")

    monkeypatch.setattr(discovery, "http_client", lambda e, t: guarded_client(e, timeout_s=t, inner=Recorder()))
    db = f"sqlite:///{tmp_path}/r.db"
    with no_network():
        code, _ = cli("registry", "add", "http://10.1.2.3:8080/", "--db", db, "--timeout", "5")
        assert code == 1 and "--allow-fetch" in capsys.readouterr().err and attempts == []
        code, _ = cli("registry", "add", "http://10.1.2.3:8080/", "--db", db, "--allow-fetch", "10.0.0.0/8")
        assert code == 1 and attempts == [("10.1.2.3", 8080)]  # allowed: the (recorded) connection is tried
