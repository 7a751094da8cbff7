"""Idempotent SendMessage: a new-task message whose messageId its caller already sent gets the task that message
created, and the skill does not run again (what lets a new orchestrator replica resend a dead one's attempt).

Over both transports; the skill bodies count their runs in the test process (the loopback server runs in a
thread of it), so "ran once" is read directly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import anyio
import pytest
from pydantic import BaseModel

from agents.agent import Agent, SkillContext
from agents.client import HttpAgentClient, LocalAgentClient, skill_message
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from protocol.a2a import Message, SendMessageConfiguration, SendMessageRequest, StreamResponse, Task, TaskState
from protocol.auth import AuthSettings, KeySet, Principal, SigningKey
from protocol.jsonrpc import TaskNotFoundError, UnsupportedOperationError

from .conftest import TRANSPORTS, open_client

CALL = "agents:call"


class Job(BaseModel):
    key: str


class Done(BaseModel):
    key: str
    run: int  # which run of the skill for this key produced the answer (1 = the first)


def counting_agent(runs: Counter[str]) -> Agent:
    """``count`` runs at once; ``hold`` runs until ``release``; ``started`` returns once ``hold`` is running.
    ``count`` and ``hold`` add one to ``runs[key]`` each time their body runs."""
    agent = Agent("counter", "Counts its skill runs; test agent for idempotent SendMessage")
    gates: dict[str, anyio.Event] = {}
    running: dict[str, anyio.Event] = {}

    @agent.skill()
    async def count(ctx: SkillContext, req: Job) -> Done:
        """Count a run and answer at once."""
        runs[req.key] += 1
        return Done(key=req.key, run=runs[req.key])

    @agent.skill()
    async def hold(ctx: SkillContext, req: Job) -> Done:
        """Count a run, then wait until ``release`` is called with the same key."""
        runs[req.key] += 1
        run = runs[req.key]
        running.setdefault(req.key, anyio.Event()).set()
        await gates.setdefault(req.key, anyio.Event()).wait()
        return Done(key=req.key, run=run)

    @agent.skill()
    async def started(ctx: SkillContext, req: Job) -> Done:
        """Answer once a ``hold`` with this key is running (it runs in the agent's event loop, as ``hold`` does)."""
        await running.setdefault(req.key, anyio.Event()).wait()
        return Done(key=req.key, run=runs[req.key])

    @agent.skill()
    async def release(ctx: SkillContext, req: Job) -> Done:
        """Let the ``hold`` with this key finish."""
        gates.setdefault(req.key, anyio.Event()).set()
        return Done(key=req.key, run=runs[req.key])

    return agent


def output(task: Task) -> object:
    assert task.artifacts, f"task {task.id} has no artifact: {task.status}"
    return task.artifacts[0].parts[0].data


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    return [event async for event in events]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_resent_message_gets_the_first_task_and_the_skill_runs_once(transport: str) -> None:
    runs: Counter[str] = Counter()
    message = skill_message("count", {"key": "a"}, message_id="attempt-1", context_id="attempt-1")
    assert message.message_id == "attempt-1"
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), transport) as client:
            first = await client.send_message(message)
            again = await client.send_message(message)
            at_once = await client.send_message(message, return_immediately=True)
            lean = await client.send_message(message, history_length=0)  # the repeat's own historyLength
    assert runs["a"] == 1
    assert first.status.state == TaskState.COMPLETED
    assert again.id == at_once.id == lean.id == first.id
    assert again.context_id == first.context_id == "attempt-1"
    assert output(again) == output(at_once) == output(first) == {"key": "a", "run": 1}
    assert again.history and [m.message_id for m in again.history] == ["attempt-1"]
    assert at_once.status.state == TaskState.COMPLETED
    assert lean.history is None and output(lean) == output(first)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_new_message_id_is_a_new_request(transport: str) -> None:
    runs: Counter[str] = Counter()
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), transport) as client:
            first = await client.send_message(skill_message("count", {"key": "a"}, message_id="attempt-1"))
            second = await client.send_message(skill_message("count", {"key": "a"}, message_id="attempt-2"))
    assert runs["a"] == 2
    assert second.id != first.id
    assert (output(first), output(second)) == ({"key": "a", "run": 1}, {"key": "a", "run": 2})


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_message_id_reused_for_another_message_is_a_new_request(transport: str) -> None:
    """Clients that send every message as "m-1" keep working: only the same message again is a repeat."""
    runs: Counter[str] = Counter()
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), transport) as client:
            first = await client.send_message(skill_message("count", {"key": "a"}, message_id="m-1"))
            other_input = await client.send_message(skill_message("count", {"key": "b"}, message_id="m-1"))
            other_context = await client.send_message(
                skill_message("count", {"key": "b"}, message_id="m-1", context_id="elsewhere")
            )
    assert (runs["a"], runs["b"]) == (1, 2)
    assert len({first.id, other_input.id, other_context.id}) == 3
    assert output(other_context) == {"key": "b", "run": 2}


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_repeats_while_the_first_still_works_join_its_task(transport: str) -> None:
    """Blocking repeats wait for the first's task, returnImmediately answers it as it is, a streamed repeat
    follows it; the held skill body runs once and everyone ends with the same completed task."""
    runs: Counter[str] = Counter()
    message = skill_message("hold", {"key": "h"}, message_id="attempt-1", context_id="attempt-1")
    answers: dict[str, Task] = {}
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), transport) as client:

            async def send(name: str) -> None:
                answers[name] = await client.send_message(message)

            async with anyio.create_task_group() as tg:
                tg.start_soon(send, "first")
                await client.send_message(skill_message("started", {"key": "h"}))  # the first is running now
                tg.start_soon(send, "repeat")
                await anyio.wait_all_tasks_blocked()  # the repeat is waiting (in-process) or its request sent
                working = await client.send_message(message, return_immediately=True)
                assert working.status.state == TaskState.WORKING
                events = client.stream_message(message)
                opening = await anext(events)
                assert opening.task is not None and opening.task.id == working.id
                assert opening.task.status.state == TaskState.WORKING
                assert runs["h"] == 1 and answers == {}
                await client.send_message(skill_message("release", {"key": "h"}))
                rest = await collect(events)
    assert runs["h"] == 1
    assert answers["first"].id == answers["repeat"].id == working.id
    assert answers["repeat"].status.state == answers["first"].status.state == TaskState.COMPLETED
    assert output(answers["repeat"]) == output(answers["first"]) == {"key": "h", "run": 1}
    final = rest[-1].status_update
    assert final is not None and final.task_id == working.id and final.status.state == TaskState.COMPLETED


@pytest.mark.anyio
async def test_a_resend_after_the_first_caller_went_away_joins_the_running_task() -> None:
    """An orchestrator replica dies mid-call (its connection closes); the replica that takes over resends the same
    message and gets the task the skill is still running, which the closed connection did not stop."""
    runs: Counter[str] = Counter()
    message = skill_message("hold", {"key": "d"}, message_id="attempt-1", context_id="attempt-1")
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), "http") as owner:
            assert isinstance(owner, HttpAgentClient)
            async with HttpAgentClient(owner.url) as dying, anyio.create_task_group() as tg:
                tg.start_soon(dying.send_message, message)
                await owner.send_message(skill_message("started", {"key": "d"}))
                tg.cancel_scope.cancel()  # the first caller goes away: its request is dropped mid-call
            joined = await owner.send_message(message, return_immediately=True)
            assert joined.status.state == TaskState.WORKING
            async with anyio.create_task_group() as tg:
                tg.start_soon(owner.send_message, skill_message("release", {"key": "d"}))
                done = await owner.send_message(message)
    assert runs["d"] == 1
    assert done.id == joined.id and done.status.state == TaskState.COMPLETED
    assert output(done) == {"key": "d", "run": 1}


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_streamed_repeat_of_a_finished_task_is_its_view_then_the_end(transport: str) -> None:
    runs: Counter[str] = Counter()
    message = skill_message("count", {"key": "s"}, message_id="attempt-1", context_id="attempt-1")
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), transport) as client:
            streamed = await collect(client.stream_message(message))
            repeated = await collect(client.stream_message(message))
            blocking = await client.send_message(message)
    assert runs["s"] == 1
    first = streamed[0].task
    assert first is not None
    assert len(repeated) == 1 and repeated[0].task is not None
    assert repeated[0].task.id == blocking.id == first.id
    assert repeated[0].task.status.state == TaskState.COMPLETED
    assert output(repeated[0].task) == output(blocking) == {"key": "s", "run": 1}


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_follow_up_with_the_same_message_id_is_still_a_follow_up(transport: str) -> None:
    """A message with taskId is never taken for a repeat: on a finished task it is refused as before."""
    runs: Counter[str] = Counter()
    message = skill_message("count", {"key": "f"}, message_id="attempt-1")
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), transport) as client:
            first = await client.send_message(message)
            with pytest.raises(UnsupportedOperationError):
                await client.send_message(message.model_copy(update={"task_id": first.id}))
    assert runs["f"] == 1


class Caller(Protocol):
    async def send_message(self, message: Message) -> Task: ...


class _LocalCaller:
    """``runtime.send`` as one principal: what the HTTP boundary hands on from a token."""

    def __init__(self, client: LocalAgentClient, principal: Principal) -> None:
        self.client, self.principal = client, principal

    async def send_message(self, message: Message) -> Task:
        request = SendMessageRequest(message=message, configuration=SendMessageConfiguration())
        reply = await self.client.runtime.send(request, self.principal)
        assert isinstance(reply, Task)
        return reply


@asynccontextmanager
async def two_callers(agent: Agent, transport: str, where: Path) -> AsyncIterator[tuple[Caller, Caller]]:
    """Alice and Bob (two owners) calling ``agent``: in-process as two principals, or with two signed tokens."""
    alice = Principal(subject="alice", scopes=frozenset({CALL}))
    bob = Principal(subject="bob", scopes=frozenset({CALL}))
    if transport == "local":
        async with LocalAgentClient(agent) as local:
            yield _LocalCaller(local, alice), _LocalCaller(local, bob)
        return
    key = SigningKey.generate()
    jwks = where / "jwks.json"
    jwks.write_text(json.dumps(KeySet({key.kid: key.key.public_key()}).document()))
    port = free_port()
    app = create_app(agent, f"http://127.0.0.1:{port}", auth=AuthSettings(jwks_file=jwks))

    def token(who: Principal) -> str:
        return key.token(who.subject, who.scopes, issuer="scaleout", audience="scaleout", ttl_s=600)

    with serve_in_thread(app, port=port) as base:
        async with (
            HttpAgentClient(base + "/", token=token(alice)) as as_alice,
            HttpAgentClient(base + "/", token=token(bob)) as as_bob,
        ):
            yield as_alice, as_bob


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_another_callers_same_message_id_is_its_own_request(transport: str, tmp_path: Path) -> None:
    runs: Counter[str] = Counter()
    message = skill_message("count", {"key": "t"}, message_id="attempt-1", context_id="attempt-1")
    with anyio.fail_after(30):
        async with two_callers(counting_agent(runs), transport, tmp_path) as (alice, bob):
            mine = await alice.send_message(message)
            theirs = await bob.send_message(message)
            mine_again = await alice.send_message(message)
            theirs_again = await bob.send_message(message)
    assert runs["t"] == 2
    assert theirs.id != mine.id
    assert (mine_again.id, theirs_again.id) == (mine.id, theirs.id)
    assert (output(mine), output(theirs)) == ({"key": "t", "run": 1}, {"key": "t", "run": 2})


@pytest.mark.anyio
async def test_a_repeat_of_an_evicted_task_is_a_new_request_and_the_index_stays_bounded() -> None:
    runs: Counter[str] = Counter()
    with anyio.fail_after(30):
        async with LocalAgentClient(counting_agent(runs)) as client:
            client.runtime.max_tasks = 2
            sent = [skill_message("count", {"key": "e"}, message_id=f"m-{n}", context_id=f"m-{n}") for n in range(5)]
            tasks = [await client.send_message(m) for m in sent]
            with pytest.raises(TaskNotFoundError):
                await client.get_task(tasks[0].id)
            again = await client.send_message(sent[0])
            kept = await client.send_message(sent[4])
            assert len(client.runtime._origins) == 2  # one entry per task the runtime still holds
    assert again.id != tasks[0].id and output(again) == {"key": "e", "run": 6}
    assert kept.id == tasks[4].id and runs["e"] == 6


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_message_id_reused_without_a_context_starts_new_work(transport: str) -> None:
    """Clients that reuse message ids for new work and let the agent assign the context (the A2A TCK does) get a
    new task each time, even after the first one went on to other turns."""
    runs: Counter[str] = Counter()
    message = skill_message("count", {"key": "n"}, message_id="tck-complete-task-1")
    with anyio.fail_after(30):
        async with open_client(counting_agent(runs), transport) as client:
            first = await client.send_message(message)
            second = await client.send_message(message)
    assert first.id != second.id and runs["n"] == 2
