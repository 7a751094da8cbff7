"""The console answers a task's question in real headless Chromium: the run page shows the question and a form
built from its schema; a wrong answer shows the schema's complaint, a right one lets the run finish."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agents.testing import serve_in_thread
from orchestrator.api import create_app
from tests.console.browser import console_page, screenshots
from tests.orchestrator.conftest import Platform
from tests.orchestrator.test_orch_waiting import GRAPH, QUESTION, planner

pytestmark = pytest.mark.browser


def test_console_answers_a_waiting_task(
    local_platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = screenshots(tmp_path)
    local_platform.add(planner())
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        run_id = httpx.post(url + "/runs", json=GRAPH, timeout=10).json()["id"]
        with console_page(url) as console:
            page = console.page

            page.goto(f"{url}/ui#/runs/{run_id}")
            page.wait_for_selector('g.node[data-task="ship"][data-state="waiting"]')
            page.click('g.node[data-task="ship"]')
            box = page.wait_for_selector('#task-question[data-question-task="ship"]')
            assert QUESTION in box.inner_text()
            page.wait_for_selector("#run-status .badge.waiting")
            assert page.locator('#waiting-banner [data-waiting="ship"]').count() == 1
            page.screenshot(path=shots / "answer-1-question.png", full_page=True)

            page.fill("#answer-plant", "east")
            page.click("#answer-form button[type=submit]")
            refused = page.wait_for_selector("#answer-result.error")
            assert "422" in refused.inner_text() and "schema" in refused.inner_text()
            page.screenshot(path=shots / "answer-2-refused.png", full_page=True)

            page.fill("#answer-plant", "south")
            page.click("#answer-form button[type=submit]")
            page.wait_for_selector('g.node[data-task="label"][data-state="succeeded"]')
            page.wait_for_selector("#run-status .badge.succeeded")
            page.wait_for_selector("text=local answered")  # the event log names who answered what
            page.screenshot(path=shots / "answer-3-done.png", full_page=True)
    with capsys.disabled():
        print(f"\nconsole screenshots: {shots}")
    console.check()
