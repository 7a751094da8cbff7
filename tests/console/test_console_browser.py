"""The web console in real headless Chromium (Debian's, driven by Playwright; never a downloaded browser): a graph
run's tasks turn from running to succeeded live, a failed skill's error shows in the task panel, a negotiation's page
shows the agreement and the Pareto chart, the registry page searches, and the token field reaches a server with keys.
Screenshots go to a folder named in the output (``$SCALEOUT_SCREENSHOTS``, else the test's temporary folder)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import anyio
import httpx
import pytest

from agents.agent import Agent, SkillContext
from agents.testing import serve_in_thread
from orchestrator.api import create_app
from protocol.auth import AuthSettings, SigningKey
from tests.console.browser import ARGS, CHROMIUM, WAIT_MS, playwright, screenshots
from tests.console.negotiations import negotiation_spec, record_scripted_negotiation, scripted_pair
from tests.orchestrator.conftest import Behaviour, Platform, WorkIn, WorkOut, worker

pytestmark = pytest.mark.browser


def gated(gate: threading.Event) -> Agent:
    """An agent whose skill ``gated`` holds every call until the test opens ``gate`` (bounded at 60 s)."""
    agent = Agent("gatekeeper", "holds calls until the test lets them go", tags=["test"])

    @agent.skill(id="gated", tags=["work"], description="waits for the test")
    async def wait(ctx: SkillContext, req: WorkIn) -> WorkOut:
        await anyio.to_thread.run_sync(gate.wait, 60.0)
        return WorkOut(text=req.text.upper(), by="gatekeeper")

    return agent


def test_console_shows_runs_live_negotiations_and_registry(
    local_platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sync_playwright = playwright()
    shots = screenshots(tmp_path)
    gate = threading.Event()
    local_platform.add(gated(gate))
    local_platform.add(worker("w1"))
    local_platform.add(worker("broken", Behaviour(mode="fail"), skill="broken"))
    buyer, seller = (local_platform.add(agent).id for agent in scripted_pair())
    recorded_id = record_scripted_negotiation(local_platform.orchestrator())
    orchestrator = local_platform.orchestrator()
    graph = {
        "name": "console demo",
        "tasks": [
            {"id": "fetch", "skill": "gated", "input": {"text": "pumps"}},
            {"id": "shout", "skill": "work", "input": {"text": {"$ref": "fetch.output.text"}}},
            {"id": "explode", "skill": "broken", "input": {"text": "x"}, "constraints": {"max_attempts": 1}},
        ],
    }
    outside: list[str] = []
    problems: list[str] = []
    try:
        with serve_in_thread(create_app(orchestrator)) as url:
            run_id = httpx.post(url + "/runs", json=graph, timeout=10).json()["id"]
            started = httpx.post(url + "/negotiations", json=negotiation_spec(buyer, seller), timeout=10)
            assert started.status_code == 202, started.text
            negotiation_id = started.json()["id"]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(WAIT_MS)
                page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

                page.goto(url + "/ui#/runs")
                page.wait_for_selector(f'tr[data-run="{run_id}"]')
                page.wait_for_selector(f'tr[data-run="{negotiation_id}"]')
                page.screenshot(path=shots / "1-runs.png", full_page=True)

                page.click(f'tr[data-run="{run_id}"] a')
                page.wait_for_selector('g.node[data-task="fetch"][data-state="running"]')
                assert page.get_attribute('g.node[data-task="shout"]', "data-state") == "pending"
                page.screenshot(path=shots / "2-run-live-running.png", full_page=True)
                gate.set()
                page.wait_for_selector('g.node[data-task="fetch"][data-state="succeeded"]')
                page.wait_for_selector('g.node[data-task="shout"][data-state="succeeded"]')
                page.wait_for_selector('g.node[data-task="explode"][data-state="failed"]')
                page.wait_for_selector("#run-status .badge.failed")
                page.click('g.node[data-task="explode"]')
                error = page.wait_for_selector('[data-task-panel="explode"] #task-error')
                assert "broken fails on purpose" in error.inner_text()
                page.screenshot(path=shots / "3-run-failed-task.png", full_page=True)
                page.click('g.node[data-task="shout"]')
                output = page.wait_for_selector('[data-task-panel="shout"] #task-output')
                assert '"PUMPS"' in output.inner_text()
                assert "w1" in page.inner_text("#task-routing")

                page.goto(f"{url}/ui#/runs?kind=negotiation")
                page.wait_for_selector(f'tr[data-run="{negotiation_id}"]')
                page.wait_for_selector(f'tr[data-run="{recorded_id}"]')
                assert page.locator(f'tr[data-run="{run_id}"]').count() == 0  # a graph run, filtered out
                page.click(f'tr[data-run="{negotiation_id}"] a')
                agreement = page.wait_for_selector("#agreement")
                assert "price=100" in agreement.inner_text() and "day=3" in agreement.inner_text()
                moves = [page.inner_text(f"#offers tbody tr:nth-child({i}) td:nth-child(6)") for i in (1, 2, 3)]
                assert [" ".join(m.split()) for m in moves] == ["model", "fallback", "strategy overruled"]
                page.wait_for_selector("#run-status .badge.succeeded")
                page.wait_for_selector("#utility-chart #pareto-frontier")  # the submitter gave both preferences
                page.wait_for_selector("#utility-chart #agreement-point")
                page.screenshot(path=shots / "4-negotiation-http.png", full_page=True)

                page.goto(f"{url}/ui#/runs/{recorded_id}")
                agreement = page.wait_for_selector("#agreement")
                page.wait_for_selector("#utility-chart #pareto-frontier")
                page.wait_for_selector("#utility-chart #agreement-point")
                page.wait_for_selector("#utility-chart #nash-point")
                assert page.locator("#utility-chart circle.offer-a").count() >= 1
                assert page.locator("#utility-chart circle.offer-b").count() >= 1
                labels = page.text_content("#utility-chart") or ""
                assert "Nash" in labels and "agreement" in labels
                page.screenshot(path=shots / "5-negotiation-pareto.png", full_page=True)

                page.goto(url + "/ui#/registry")
                page.wait_for_selector('tr[data-agent="broken"]')
                page.fill("#registry-search", "gated")
                page.wait_for_selector('tr[data-agent="broken"]', state="detached")
                assert page.locator("tr[data-agent]").count() == 1
                assert page.locator('tr[data-agent="gatekeeper"] tr[data-skill="gated"]').count() == 1
                page.screenshot(path=shots / "6-registry.png", full_page=True)
                browser.close()
    finally:
        gate.set()
        with capsys.disabled():
            print(f"\nconsole screenshots: {shots}")
    assert not outside, f"the console reached beyond its server: {outside}"
    assert not problems, f"the page logged errors: {problems}"


def test_console_uses_the_token_entered_and_keeps_it_for_the_tab(local_platform: Platform, tmp_path: Path) -> None:
    sync_playwright = playwright()
    key = SigningKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.jwk()]}))
    app = create_app(local_platform.orchestrator(), auth=AuthSettings(jwks_file=jwks, audience="orchestrator"))
    token = key.token("alice", ["runs:read"], issuer="test", audience="orchestrator", ttl_s=600)
    with serve_in_thread(app) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(url + "/ui#/runs")
            refused = page.wait_for_selector("#view-error")
            assert "401" in refused.inner_text() and "enter a token" in refused.inner_text()
            page.fill("#token", token)
            page.click("#token-form button[type=submit]")
            page.wait_for_selector("#runs-table >> text=No runs match.")
            page.reload()
            page.wait_for_selector("#runs-table >> text=No runs match.")  # the tab still has the token
            assert page.evaluate("Object.values(sessionStorage)") == [token]
            browser.close()


def test_a_graph_too_large_to_draw_is_listed(local_platform: Platform) -> None:
    sync_playwright = playwright()
    local_platform.add(worker("w1"))
    tasks = [{"id": f"t{i}", "skill": "work", "input": {"text": str(i)}} for i in range(450)]
    with serve_in_thread(create_app(local_platform.orchestrator())) as url:
        run_id = httpx.post(url + "/runs", json={"tasks": tasks, "concurrency": 64}, timeout=10).json()["id"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{url}/ui#/runs/{run_id}")
            page.wait_for_selector("#run-status .badge.succeeded")
            page.wait_for_selector('#task-graph tr.node[data-task="t449"][data-state="succeeded"]')
            assert page.locator("#task-graph svg").count() == 0
            assert page.locator('#task-graph tr.node[data-state="succeeded"]').count() == 450
            page.click('#task-graph tr.node[data-task="t7"]')
            assert '"7"' in page.wait_for_selector('[data-task-panel="t7"] #task-output').inner_text()
            browser.close()
