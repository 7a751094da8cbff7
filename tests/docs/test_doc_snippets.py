"""The docs' Python blocks marked ``<!-- run -->`` are complete programs: each runs on its own, from an empty
folder outside the repository, and prints the output the page shows (a ```text block right after it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, run_command

DOCS = ROOT / "docs"
FULLY_RUNNABLE = ["scenarios.md", "agents.md"]  # every Python block on these pages must be marked to run
_BLOCK = re.compile(r"(?P<mark><!-- run -->\n)?```python\n(?P<code>.*?)```\n(?:\n```text\n(?P<out>.*?)```\n)?", re.S)


def _blocks(page: str) -> list[tuple[bool, str, str | None]]:
    text = (DOCS / page).read_text()
    return [(bool(m["mark"]), m["code"], m["out"]) for m in _BLOCK.finditer(text)]


def _runnable() -> list[pytest.param]:
    params = []
    for page in sorted(p.name for p in DOCS.glob("*.md")):
        runnable = [(code, out) for marked, code, out in _blocks(page) if marked]
        for i, (code, out) in enumerate(runnable, 1):
            params.append(pytest.param(code, out, id=f"{page}#{i}"))
    return params


@pytest.mark.parametrize("page", FULLY_RUNNABLE)
def test_every_python_block_is_marked_to_run(page: str) -> None:
    blocks = _blocks(page)
    assert blocks, f"docs/{page} has no Python block"
    unmarked = [code.splitlines()[0] for marked, code, _ in blocks if not marked]
    assert unmarked == [], f"docs/{page}: blocks not marked <!-- run --> (complete them): {unmarked}"


@pytest.mark.slow
@pytest.mark.parametrize(("code", "expected"), _runnable())
def test_the_block_runs_and_prints_what_the_page_shows(tmp_path: Path, code: str, expected: str | None) -> None:
    (tmp_path / "snippet.py").write_text(code)
    result = run_command(sys.executable, "snippet.py", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    if expected is not None:
        assert result.stdout.strip() == expected.strip()
