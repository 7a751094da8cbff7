"""The Containerfile: consistent with deploy/compose.yaml (checked everywhere), and built and run where a container
tool with a running daemon is available (skipped with the reason otherwise)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.processes import ROOT

CONTAINERFILE = ROOT / "Containerfile"
PACKAGES = ["protocol", "agents", "registry", "orchestrator", "scenarios"]


def _instructions() -> list[str]:
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())  # join continued lines
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_two_stages_with_the_model_extra_as_a_build_arg() -> None:
    lines = _instructions()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith("AS build") and "slim" in stages[1]
    assert lines.count("ARG EXTRAS=llm") == 2  # declared in both stages, default: agents can run the model
    assert any(line.startswith("COPY --from=build /wheels") for line in lines)
    assert any("--no-index" in line for line in lines if line.startswith("RUN pip install"))
    assert lines[-1] == 'CMD ["scaleout", "--help"]' and not any(line.startswith("ENTRYPOINT") for line in lines)


def test_the_compose_file_builds_this_image() -> None:
    lines = _instructions()
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    for package in PACKAGES:
        assert f"COPY {package} {package}" in lines
    assert "dockerfile: Containerfile" in compose and "context: .." in compose  # one image definition, not two
    assert "EXTRAS: llm" in compose  # its agent servers run the model
    assert "WORKDIR /opt/scaleout" in lines and "USER scaleout" in lines
    assert "--home-dir /var/lib/scaleout" in CONTAINERFILE.read_text()
    # compose's services run "scaleout ..." as their command (or through sh): no entrypoint may stand in the way
    assert "- scaleout" in compose


def _container_tool() -> tuple[str | None, str]:
    reasons = []
    for tool in ("docker", "podman"):
        path = shutil.which(tool)
        if path is None:
            reasons.append(f"no {tool}")
            continue
        try:
            info = subprocess.run([path, "info"], capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            reasons.append(f"{tool} info timed out")
            continue
        if info.returncode == 0:
            return path, ""
        reasons.append(f"{tool} has no running daemon ({(info.stderr.strip().splitlines() or ['?'])[-1][:120]})")
    return None, "; ".join(reasons)


@pytest.mark.slow
def test_the_image_builds_and_serves_help() -> None:
    tool, why = _container_tool()
    if tool is None:
        pytest.skip(f"no container tool with a running daemon: {why}")
    tag = "scaleout-test:slim"
    build = subprocess.run(
        [tool, "build", "-t", tag, "-f", str(CONTAINERFILE), "--build-arg", "EXTRAS=", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    for command in (["scaleout", "--help"], ["scaleout", "orchestrator", "serve", "--help"]):
        ran = subprocess.run([tool, "run", "--rm", tag, *command], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr[-2000:]
    whoami = subprocess.run([tool, "run", "--rm", tag, "id", "-un"], capture_output=True, text=True, timeout=120)
    assert whoami.stdout.strip() == "scaleout"
