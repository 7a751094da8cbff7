"""The console approves and rejects a task's held output in real headless Chromium: the task panel shows the output
beside Approve / Reject buttons; a rejection tries the next attempt, an approval lets the run finish."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agents.testing import serve_in_thread
from orchestrator.api import create_app
from tests.console.browser import console_page, screenshots
from tests.orchestrator.conftest import Platform
from tests.orchestrator.test_orch_approval import buyer, contract_graph

pytestmark = pytest.mark.browser


def test_console_approves_and_rejects_a_held_output(
    local_platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = screenshots(tmp_path)
    local_platform.add(buyer([18_000, 12_500]))
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        run_id = httpx.post(url + "/runs", json=contract_graph(), timeout=10).json()["id"]
        with console_page(url) as console:
            page = console.page

            page.goto(f"{url}/ui#/runs/{run_id}")
            page.wait_for_selector('g.node[data-task="quote"][data-state="waiting"]')
            page.click('g.node[data-task="quote"]')
            box = page.wait_for_selector('#task-approval[data-approval-task="quote"]')
            assert "18000" in box.inner_text()
            page.wait_for_selector("#run-status .badge.waiting")
            assert page.locator('#waiting-banner [data-waiting="quote"]').count() == 1
            page.screenshot(path=shots / "approval-1-held.png", full_page=True)

            page.fill("#approval-comment", "too expensive")
            page.click("#reject-button")
            page.wait_for_selector("text=local rejected: too expensive")  # the event log names who and why
            again = page.wait_for_selector('#task-approval:has-text("12500")')
            assert "Attempt 2" in again.inner_text()
            page.screenshot(path=shots / "approval-2-second-attempt.png", full_page=True)

            page.fill("#approval-comment", "fine")
            page.click("#approve-button")
            page.wait_for_selector('g.node[data-task="sign"][data-state="succeeded"]')
            page.wait_for_selector("#run-status .badge.succeeded")
            page.wait_for_selector("text=local approved: fine")
            page.screenshot(path=shots / "approval-3-done.png", full_page=True)
    with capsys.disabled():
        print(f"\nconsole screenshots: {shots}")
    console.check()
