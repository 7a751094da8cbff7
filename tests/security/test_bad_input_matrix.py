"""The same bad input on all four HTTP surfaces (agent A2A, agent MCP, registry, orchestrator), over real HTTP on
loopback: each gets its status code and a clear message, the server answers the next good request, and memory
stays bounded while 200 MB bodies are thrown at it."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from agents.examples import echo_agent
from agents.serve import create_app as agent_app
from agents.testing import serve_in_thread
from orchestrator.api import create_app as orchestrator_app
from orchestrator.service import Orchestrator
from registry import Registry
from registry.api import create_app as registry_app


@dataclass(frozen=True)
class Surface:
    """One HTTP surface: where to POST, and a good request that must still work afterwards."""

    name: str
    post_url: str
    good: tuple[str, str, Any]  # method, URL, JSON body (None for GET)


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Surface]]:
    db = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'scaleout.db'}"
    with ExitStack() as stack:
        agent = stack.enter_context(serve_in_thread(agent_app(echo_agent("echo"))))
        registry = stack.enter_context(Registry(db))
        reg = stack.enter_context(serve_in_thread(registry_app(registry)))
        orch = stack.enter_context(serve_in_thread(orchestrator_app(Orchestrator(registry, db))))
        send = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"data": {"text": "hi"}}]}},
        }
        yield [
            Surface("agent-a2a", f"{agent}/", ("POST", f"{agent}/", send)),
            Surface("agent-mcp", f"{agent}/mcp", ("GET", f"{agent}/.well-known/agent-card.json", None)),
            Surface("registry", f"{reg}/agents", ("GET", f"{reg}/healthz", None)),
            Surface("orchestrator", f"{orch}/runs", ("GET", f"{orch}/health", None)),
        ]


_JSON = {"content-type": "application/json"}
_GOOD_HEADERS = {**_JSON, "A2A-Version": "1.0", "accept": "application/json, text/event-stream"}


def _message(resp: httpx.Response) -> str:
    error = resp.json()["error"]
    return str(error["message"] if isinstance(error, dict) else error)


def _answers_good_request(surface: Surface) -> None:
    method, url, body = surface.good
    resp = httpx.request(method, url, json=body, headers=_GOOD_HEADERS, timeout=30)
    assert resp.status_code == 200, (surface.name, resp.text[:300])
    if surface.name == "agent-a2a":
        assert resp.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


_CASES: dict[str, tuple[dict[str, str], bytes, int, str]] = {
    "text/plain": ({"content-type": "text/plain"}, b'{"skill": "echo"}', 415, "application/json"),
    "no content type": ({}, b'{"skill": "echo"}', 415, "application/json"),
    "foreign origin": ({**_JSON, "origin": "http://evil.example.com"}, b"{}", 403, "evil.example.com"),
    "foreign host": ({**_JSON, "host": "evil.example.com"}, b"{}", 421, "evil.example.com"),
    "100,000-deep nesting": (_JSON, b"[" * 100_000 + b"]" * 100_000, 400, "deeper"),
    "invalid UTF-8": (_JSON, b'{"text": "\xff\xfe"}', 400, "UTF-8"),
}


@pytest.mark.parametrize("case", list(_CASES))
@pytest.mark.parametrize("index", range(4), ids=["agent-a2a", "agent-mcp", "registry", "orchestrator"])
def test_bad_input_gets_its_status_and_a_clear_message(surfaces: list[Surface], index: int, case: str) -> None:
    surface = surfaces[index]
    headers, body, status, hint = _CASES[case]
    resp = httpx.post(surface.post_url, content=body, headers=headers, timeout=30)
    assert resp.status_code == status, (surface.name, case, resp.text[:300])
    assert hint in _message(resp), (surface.name, case, resp.text[:300])
    _answers_good_request(surface)


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    chunk = b" " * size
    for _ in range(total // size):
        yield chunk


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("index", range(4), ids=["agent-a2a", "agent-mcp", "registry", "orchestrator"])
def test_large_bodies_are_cut_off_and_memory_stays_bounded(surfaces: list[Surface], index: int) -> None:
    surface = surfaces[index]
    before = _peak_rss_mb()
    for total in (10 << 20, 200 << 20):
        declared = {**_JSON, "content-length": str(total)}
        for headers in (declared, _JSON):  # refused from the length alone; or streamed and cut off at the cap
            try:
                resp = httpx.post(surface.post_url, content=_chunks(total), headers=headers, timeout=60)
            except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
                continue  # the server answered and closed before the client was done sending: also a refusal
            assert resp.status_code == 413, (surface.name, resp.text[:200])
            assert "limit" in _message(resp)
        _answers_good_request(surface)
    # the servers run in this process: had any buffered a 200 MB body, the peak would have grown by that much
    assert _peak_rss_mb() - before < 150, f"{surface.name}: peak RSS grew {_peak_rss_mb() - before:.0f} MB"
