"""Abandoned work stops: a task whose waiting callers all went away (blocking SendMessage or stream disconnected)
is cancelled once nobody has come back for it within the agent's grace period; a resend, a subscription or a
GetTask/ListTasks poll within the grace keeps it (what an orchestrator replica adopting a dead one's task does).

Over real HTTP (the disconnect is a closed connection) and in-process (``disconnected`` given directly). The skill
bodies run in the server's event loop; the test learns what they did by calling other skills of the same agent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.client import HttpAgentClient, skill_message
from agents.serve import create_app
from agents.tasks import TaskRuntime
from agents.testing import free_port, serve_in_thread
from protocol.a2a import ListTasksRequest, SendMessageConfiguration, SendMessageRequest, Task, TaskState

pytestmark = pytest.mark.anyio

GRACE = 0.5


class Job(BaseModel):
    key: str


class Ended(BaseModel):
    key: str
    runs: int
    cancelled: bool
    after_s: float  # from the skill's start to its end


def holding_agent(runs: Counter[str]) -> Agent:
    """``hold`` runs until ``release`` (counting its runs); ``started`` answers once a ``hold`` runs; ``ended``
    answers once it has ended, saying whether it was cancelled."""
    agent = Agent("holder", "Holds tasks open; test agent for cancel on disconnect")
    gates: dict[str, anyio.Event] = {}
    running: dict[str, anyio.Event] = {}
    ended: dict[str, anyio.Event] = {}
    outcome: dict[str, tuple[bool, float]] = {}

    def event(events: dict[str, anyio.Event], key: str) -> anyio.Event:
        return events.setdefault(key, anyio.Event())

    @agent.skill()
    async def hold(ctx: SkillContext, req: Job) -> Job:
        """Count a run, then wait for ``release``."""
        runs[req.key] += 1
        began, cancelled = time.monotonic(), True
        event(running, req.key).set()
        try:
            await event(gates, req.key).wait()
            cancelled = False
        finally:
            outcome[req.key] = (cancelled, time.monotonic() - began)
            event(ended, req.key).set()
        return req

    @agent.skill()
    async def started(ctx: SkillContext, req: Job) -> Job:
        """Answer once a ``hold`` with this key runs."""
        await event(running, req.key).wait()
        return req

    @agent.skill("ended")
    async def ended_(ctx: SkillContext, req: Job) -> Ended:
        """Answer once the ``hold`` with this key has ended."""
        await event(ended, req.key).wait()
        cancelled, after_s = outcome[req.key]
        return Ended(key=req.key, runs=runs[req.key], cancelled=cancelled, after_s=after_s)

    @agent.skill()
    async def release(ctx: SkillContext, req: Job) -> Job:
        """Let the ``hold`` with this key finish."""
        event(gates, req.key).set()
        return req

    return agent


@pytest.fixture
def runs() -> Counter[str]:
    return Counter()


@pytest.fixture
def url(runs: Counter[str]) -> Iterator[str]:
    port = free_port()
    app = create_app(holding_agent(runs), f"http://127.0.0.1:{port}", disconnect_grace_s=GRACE)
    with serve_in_thread(app, port=port) as base:
        yield base + "/"


def _hold(key: str) -> object:
    return skill_message("hold", {"key": key}, message_id=f"attempt-{key}", context_id=f"attempt-{key}")


async def _ended(client: HttpAgentClient, key: str) -> Ended:
    task = await client.send_message(skill_message("ended", {"key": key}))
    assert task.artifacts, task.status
    return Ended.model_validate(task.artifacts[0].parts[0].data)


async def _the_task(client: HttpAgentClient, key: str) -> Task:
    listing = await client.list_tasks(ListTasksRequest(context_id=f"attempt-{key}"))
    assert len(listing.tasks) == 1
    return listing.tasks[0]


@asynccontextmanager
async def _caller_that_goes_away(url: str, owner: HttpAgentClient, key: str) -> AsyncIterator[None]:
    """A caller sends a blocking ``hold`` and closes its connection once the skill runs; the block runs after."""
    async with HttpAgentClient(url) as dying, anyio.create_task_group() as tg:
        tg.start_soon(dying.send_message, _hold(key))
        await owner.send_message(skill_message("started", {"key": key}))
        tg.cancel_scope.cancel()
    yield


async def test_a_blocking_send_whose_client_disconnects_is_cancelled_after_the_grace(
    url: str, runs: Counter[str]
) -> None:
    with anyio.fail_after(20):
        async with HttpAgentClient(url) as owner:
            async with _caller_that_goes_away(url, owner, "b"):
                ended = await _ended(owner, "b")
            task = await _the_task(owner, "b")
    assert ended.cancelled and ended.runs == 1
    assert ended.after_s >= GRACE, "the skill ran on for the grace period before it was cancelled"
    assert task.status.state == TaskState.CANCELED
    assert task.status.message is not None and "went away" in task.status.message.text()


async def test_a_stream_whose_client_disconnects_is_cancelled(url: str) -> None:
    with anyio.fail_after(20):
        async with HttpAgentClient(url) as owner:
            async with HttpAgentClient(url) as watcher:
                events = watcher.stream_message(_hold("s"))
                first = await anext(events)
                assert first.task is not None
                await owner.send_message(skill_message("started", {"key": "s"}))
                await events.aclose()  # the stream's connection closes with the skill still running
            ended = await _ended(owner, "s")
            task = await _the_task(owner, "s")
    assert ended.cancelled and ended.after_s >= GRACE
    assert task.id == first.task.id and task.status.state == TaskState.CANCELED


async def test_a_resend_within_the_grace_joins_the_task_and_keeps_it(url: str, runs: Counter[str]) -> None:
    """The orchestrator's takeover by resending: the repeat re-attaches, so the task outlives the grace."""
    with anyio.fail_after(20):
        async with HttpAgentClient(url) as owner:
            async with _caller_that_goes_away(url, owner, "r"):
                events = owner.stream_message(_hold("r"))  # the same messageId: a repeat, not a new task
                joined = await anext(events)
                assert joined.task is not None and joined.task.status.state == TaskState.WORKING
                await anyio.sleep(3 * GRACE)  # the grace passes with a waiter attached: nothing is cancelled
                await owner.send_message(skill_message("release", {"key": "r"}))
                rest = [event async for event in events]
            ended = await _ended(owner, "r")
    assert not ended.cancelled and ended.runs == 1
    final = rest[-1].status_update
    assert final is not None and final.task_id == joined.task.id and final.status.state == TaskState.COMPLETED


async def test_polling_the_task_keeps_it_and_stopping_lets_it_go(url: str, runs: Counter[str]) -> None:
    """The orchestrator's adoption: ListTasks by contextId, then GetTask until the task ends; each names the task
    and restarts the grace. When the polls stop, the grace runs out."""
    with anyio.fail_after(20):
        async with HttpAgentClient(url) as owner:
            async with _caller_that_goes_away(url, owner, "p"):
                task = await _the_task(owner, "p")
                polled_until = time.monotonic() + 4 * GRACE
                while time.monotonic() < polled_until:
                    await anyio.sleep(GRACE / 5)  # the poll interval under test
                    last_poll = time.monotonic()
                    assert (await owner.get_task(task.id)).status.state == TaskState.WORKING
                ended = await _ended(owner, "p")
                gone = time.monotonic()
            final = await owner.get_task(task.id)
    assert ended.cancelled and ended.runs == 1
    assert ended.after_s >= 3 * GRACE, "the task outlived several grace periods while it was polled"
    assert gone - last_poll >= GRACE, "then it had one more grace period"
    assert final.status.state == TaskState.CANCELED


async def test_return_immediately_tasks_are_never_cancelled_on_disconnect(url: str) -> None:
    with anyio.fail_after(20):
        async with HttpAgentClient(url) as owner:
            started = await owner.send_message(_hold("i"), return_immediately=True)
            async with HttpAgentClient(url) as watcher:
                events = watcher.subscribe(started.id)
                assert (await anext(events)).task is not None
                await events.aclose()  # a watcher leaves: the task was never waited on by its sender
            await anyio.sleep(3 * GRACE)
            assert (await owner.get_task(started.id)).status.state == TaskState.WORKING
            await owner.send_message(skill_message("release", {"key": "i"}))
            ended = await _ended(owner, "i")
    assert not ended.cancelled


async def test_grace_none_never_cancels(runs: Counter[str]) -> None:
    port = free_port()
    app = create_app(holding_agent(runs), f"http://127.0.0.1:{port}", disconnect_grace_s={"holder": None})
    assert app.agent_server.runtimes["holder"].disconnect_grace_s is None
    with anyio.fail_after(20), serve_in_thread(app, port=port) as base:
        async with HttpAgentClient(base + "/") as owner:
            async with _caller_that_goes_away(base + "/", owner, "n"):
                await anyio.sleep(3 * GRACE)
                await owner.send_message(skill_message("release", {"key": "n"}))
                ended = await _ended(owner, "n")
            task = await _the_task(owner, "n")
    assert not ended.cancelled and task.status.state == TaskState.COMPLETED


def _request(key: str, *, at_once: bool = False) -> SendMessageRequest:
    config = SendMessageConfiguration(return_immediately=at_once)
    return SendMessageRequest(message=_hold(key), configuration=config)  # type: ignore[arg-type]


@pytest.mark.parametrize("inline", [True, False], ids=["inline-turn", "background-turn"])
async def test_in_process_a_gone_caller_stops_waiting_and_the_turn_is_cancelled_after_the_grace(
    inline: bool, runs: Counter[str]
) -> None:
    """``disconnected`` is what the HTTP binding passes; the turn runs in the caller's task or in the runtime's."""
    agent = holding_agent(runs)
    runtime = TaskRuntime(agent, disconnect_grace_s=GRACE)
    runtime._runs_inline = inline
    gone = anyio.Event()
    with anyio.fail_after(10):
        async with runtime.running(), anyio.create_task_group() as tg:
            replies: list[object] = []

            async def caller() -> None:
                replies.append(await runtime.send(_request("l"), disconnected=gone.wait))

            tg.start_soon(caller)
            await runtime.send(SendMessageRequest(message=skill_message("started", {"key": "l"})))
            left = anyio.current_time()
            gone.set()
            ended = await runtime.send(SendMessageRequest(message=skill_message("ended", {"key": "l"})))
            cancelled_after = anyio.current_time() - left
            task = runtime.get(runtime.list(ListTasksRequest(context_id="attempt-l")).tasks[0].id)
    assert isinstance(ended, Task) and ended.artifacts
    assert Ended.model_validate(ended.artifacts[0].parts[0].data).cancelled
    assert cancelled_after >= GRACE
    assert task.status.state == TaskState.CANCELED
    assert len(replies) == 1


async def test_a_repeat_with_return_immediately_restarts_the_grace(runs: Counter[str]) -> None:
    runtime = TaskRuntime(holding_agent(runs), disconnect_grace_s=GRACE)
    gone = anyio.Event()
    with anyio.fail_after(10):
        async with runtime.running(), anyio.create_task_group() as tg:
            tg.start_soon(lambda: runtime.send(_request("q"), disconnected=gone.wait))
            await runtime.send(SendMessageRequest(message=skill_message("started", {"key": "q"})))
            gone.set()
            until = anyio.current_time() + 3 * GRACE
            while anyio.current_time() < until:
                await anyio.sleep(GRACE / 4)
                again = await runtime.send(_request("q", at_once=True))
                assert isinstance(again, Task) and again.status.state == TaskState.WORKING
            await runtime.send(SendMessageRequest(message=skill_message("release", {"key": "q"})))
            ended = await runtime.send(SendMessageRequest(message=skill_message("ended", {"key": "q"})))
            await anyio.wait_all_tasks_blocked()  # the grace timer wakes as the task settles, and ends
            assert len(runtime._waiters) == 0, "nothing is kept about a finished task"
    assert isinstance(ended, Task) and ended.artifacts
    assert not Ended.model_validate(ended.artifacts[0].parts[0].data).cancelled and runs["q"] == 1
