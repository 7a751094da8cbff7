"""A failed skill leaves its traceback in the served agent's log, at the place it happened, with the task id; and
a served agent never writes a caller's bearer token to its log, even at debug level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from agents.client import HttpAgentClient, skill_message
from agents.testing import free_port
from protocol.a2a import TaskState
from tests.observability.test_trace_processes import _ready
from tests.observability.trace_agents import EXPLOSION

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60.0


@contextmanager
def _broken_agent(log: Path, *flags: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``scaleout agent serve tests.observability.trace_agents:broken FLAGS``, its stdout and stderr in ``log``."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for variable in ("SCALEOUT_TOKEN", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop(variable, None)
    args = ["agent", "serve", "tests.observability.trace_agents:broken", "--port", str(port), *flags]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


async def _until_logged(log: Path, text: str) -> str:
    """The log once it holds ``text`` (bounded: the line is written as the task fails, before the reply)."""
    with anyio.fail_after(10):
        while True:
            content = _read(log)
            if text in content:
                return content
            await anyio.sleep(0.05)


async def test_a_failed_skill_logs_its_traceback_in_the_agents_log(tmp_path: Path) -> None:
    log = tmp_path / "broken.log"
    with _broken_agent(log) as (url, proc):
        await _ready(url + "/.well-known/agent-card.json", proc, log)
        async with HttpAgentClient(url + "/") as client:
            task = await client.send_message(skill_message("explode", {"text": "go"}))
        assert task.status.state == TaskState.FAILED
        content = await _until_logged(log, EXPLOSION)
    failure = content[content.index("ERROR agents.tasks") :]
    assert f"[task={task.id}]" in failure.splitlines()[0]  # the line says which task failed
    assert "Traceback (most recent call last)" in failure
    assert "in _explode" in failure  # the frame where it happened, not only where it was caught
    assert f"RuntimeError: {EXPLOSION}" in failure


async def test_json_log_lines_carry_the_traceback_and_never_a_bearer_token(tmp_path: Path) -> None:
    log = tmp_path / "broken.log"
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJzbmVha3kifQ.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
    with _broken_agent(log, "--log-format", "json", "--log-level", "debug") as (url, proc):
        await _ready(url + "/.well-known/agent-card.json", proc, log)
        async with HttpAgentClient(url + "/", token=token) as client:
            task = await client.send_message(skill_message("explode", {"text": "go"}))
        assert task.status.state == TaskState.FAILED
        content = await _until_logged(log, EXPLOSION)
    entries = [json.loads(line) for line in content.splitlines() if line.startswith("{")]
    failed = [e for e in entries if e["logger"] == "agents.tasks" and e["level"] == "error"]
    assert len(failed) == 1 and failed[0]["task_id"] == task.id
    assert "in _explode" in failed[0]["exception"] and EXPLOSION in failed[0]["exception"]
    assert token not in content and token.split(".")[1] not in content
