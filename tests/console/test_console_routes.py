"""The console's routes: the shell and its assets are served from the package with a Content-Security-Policy that
forbids remote loads; nothing in them points off the server; the shell is public while the data stays behind the
API's scopes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agents.testing import serve_in_thread
from orchestrator.api import create_app
from orchestrator.console import CSP
from orchestrator.console.routes import STATIC_DIR, load_assets
from protocol.auth import AuthSettings, SigningKey
from tests.orchestrator.conftest import Platform

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


@pytest.fixture
def server(local_platform: Platform) -> Iterator[str]:
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        yield url


def test_shell_and_assets_are_served_with_a_strict_csp(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        page = http.get("/ui")
        deep = http.get("/ui/runs/abc")
        script = http.get("/ui/app.js")
        style = http.get("/ui/console.css")
        missing = http.get("/ui/nothing.js")
        sneaky = http.get("/ui/..%2Fapi.py")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert deep.status_code == 200 and deep.text == page.text
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    for response in (page, script, style, missing):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    assert sneaky.status_code == 404
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'", name  # no remote host, no inline code


def test_assets_name_no_remote_url_and_no_inline_code() -> None:
    assets = load_assets()
    assert {"index.html", "app.js", "api.js", "runs.js", "graph.js", "negotiation.js", "registry.js"} <= set(assets)
    for name, (body, _) in assets.items():
        text = body.decode()
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", text))
        assert urls <= {SVG_NAMESPACE}, f"{name} names a remote URL: {urls - {SVG_NAMESPACE}}"
        assert "innerHTML" not in text and "eval(" not in text, name
    index = assets["index.html"][0].decode()
    assert "<script>" not in index and "style=" not in index  # the CSP would block inline code anyway
    imports = re.findall(r'from "(/ui/[^"]+)"', "".join(b.decode() for b, _ in assets.values()))
    assert imports and all(Path(STATIC_DIR, i.removeprefix("/ui/")).is_file() for i in imports)


def test_shell_is_public_but_data_needs_a_token(local_platform: Platform, tmp_path: Path) -> None:
    key = SigningKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk()]}))
    app = create_app(local_platform.orchestrator(), auth=AuthSettings(jwks_file=jwks, audience="orchestrator"))
    token = key.token("alice", ["runs:read"], issuer="test", audience="orchestrator", ttl_s=600)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        page = http.get("/ui")
        script = http.get("/ui/api.js")
        document = http.get("/openapi.json")
        refused = http.get("/runs")
        allowed = http.get("/runs", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == script.status_code == document.status_code == 200
    assert refused.status_code == 401 and allowed.status_code == 200 and allowed.json() == {"runs": []}
