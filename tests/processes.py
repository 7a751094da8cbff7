"""The real ``scaleout`` command as a user runs it, for tests: servers started as subprocesses (killed at the end)
and one-shot commands, with the repository importable and no token from the caller's environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from agents.testing import free_port

__all__ = ["ROOT", "SCALEOUT", "STARTUP_S", "command_env", "served", "run_command"]

ROOT = Path(__file__).resolve().parents[1]
SCALEOUT = [sys.executable, "-m", "orchestrator.cli"]
STARTUP_S = 60.0


def command_env(**extra: str) -> dict[str, str]:
    """This environment with the repository on the import path, no caller token, and ``extra`` set."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    env.pop("SCALEOUT_TOKEN", None)
    return env


@contextmanager
def served(
    logs: Path, name: str, *args: str, cwd: Path, env: dict[str, str] | None = None, ready_path: str | None = None
) -> Iterator[str]:
    """``scaleout ARGS --port P`` started in ``cwd``; its base URL once ``ready_path`` answers (default: /health
    for an orchestrator, the Agent Card otherwise). Killed with SIGKILL at the end; its output is in logs/NAME.log."""
    port = free_port()
    log = logs / f"{name}.log"
    path = ready_path or ("/health" if "orchestrator" in args else "/.well-known/agent-card.json")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SCALEOUT, *args, "--port", str(port)], cwd=cwd, env=env or command_env(), stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=2) as client:
            for _ in range(int(STARTUP_S / 0.25)):
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited {proc.returncode}: {log.read_text()[-2000:]}")
                try:
                    client.get(url + path)
                    break
                except httpx.TransportError:
                    try:
                        proc.wait(timeout=0.25)  # a bounded pause that also notices an early exit
                    except subprocess.TimeoutExpired:
                        pass
            else:
                raise AssertionError(f"{name} did not answer within {STARTUP_S} s: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def run_command(
    *command: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` to its end (bounded by ``timeout``), capturing its text output."""
    return subprocess.run(
        list(command), cwd=cwd, env=env or command_env(), capture_output=True, text=True, timeout=timeout
    )
