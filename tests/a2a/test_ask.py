"""Skills that ask (``ctx.ask``): input-required with the question and schema, answers on the same task, over
both transports (in-process and HTTP on loopback), blocking, non-blocking and streamed."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext
from agents.client import AgentClient, answer_message, skill_message
from agents.task_ask import InputUnavailable
from protocol.a2a import InputRequest, StreamResponse, Task, TaskState, input_request_of
from protocol.jsonrpc import UnsupportedOperationError

from .conftest import TRANSPORTS, open_client

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("transport", TRANSPORTS)]

PLANT_QUESTION = "Which plant should ship?"
DAY_QUESTION = "On which day (1-28)?"


class ShipOrder(BaseModel):
    sku: str = Field(min_length=1, max_length=40)
    timeout_s: float | None = None


class PlantChoice(BaseModel):
    plant: str = Field(pattern="^(north|south)$")


class DayChoice(BaseModel):
    day: int = Field(ge=1, le=28)


class Shipment(BaseModel):
    sku: str
    plant: str
    day: int


def planner_agent() -> Agent:
    """``ship`` asks two questions (the plant, then the day); ``ship_quietly`` asks through a helper, undeclared."""
    agent = Agent("planner", "Plans shipments; asks which plant and which day")

    @agent.skill()
    async def ship(ctx: SkillContext, req: ShipOrder) -> Shipment:
        """Ask the plant and the day, then plan the shipment."""
        plant = await ctx.ask(PLANT_QUESTION, PlantChoice, timeout_s=req.timeout_s)
        day = await ctx.ask(DAY_QUESTION, DayChoice, timeout_s=req.timeout_s)
        return Shipment(sku=req.sku, plant=plant.plant, day=day.day)

    async def pick(ctx: SkillContext) -> PlantChoice:
        return await ctx.ask(PLANT_QUESTION, PlantChoice)

    @agent.skill(asks=False)
    async def ship_quietly(ctx: SkillContext, req: ShipOrder) -> Shipment:
        """Asks through a helper without declaring it (a mistake the runtime reports)."""
        return Shipment(sku=req.sku, plant=(await pick(ctx)).plant, day=1)

    return agent


def _ship(sku: str = "A1", **kw: Any) -> Any:
    return skill_message("ship", {"sku": sku, **kw})


def _question(task: Task) -> InputRequest:
    assert task.status.state == TaskState.INPUT_REQUIRED, task.status
    request = input_request_of(task)
    assert request is not None
    return request


async def _wait_state(client: AgentClient, task_id: str, state: TaskState) -> Task:
    while True:
        task = await client.get_task(task_id)
        if task.status.state == state:
            return task
        await anyio.lowlevel.checkpoint()


def _state_of(event: StreamResponse) -> TaskState | None:
    if event.task is not None:
        return event.task.status.state
    if event.status_update is not None:
        return event.status_update.status.state
    return None


async def _collect(events: Any) -> list[StreamResponse]:
    return [event async for event in events]


async def test_ask_answer_valid_invalid_valid_completes(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(planner_agent(), transport) as client:
            task = await client.send_message(_ship())
            asked = _question(task)
            assert asked.question == PLANT_QUESTION and asked.error is None
            assert asked.schema_["properties"]["plant"]["pattern"] == "^(north|south)$"
            task = await client.answer(task.id, {"plant": "south"})  # type: ignore[attr-defined]
            assert _question(task).question == DAY_QUESTION
            task = await client.answer(task.id, {"day": 31})  # type: ignore[attr-defined]
            refused = _question(task)
            assert refused.question == DAY_QUESTION and refused.error and "day" in refused.error
            assert "refused" in (task.status.message.text() if task.status.message else "")
            task = await client.answer(task.id, {"day": 12})  # type: ignore[attr-defined]
    assert task.status.state == TaskState.COMPLETED
    assert task.artifacts and task.artifacts[0].parts[0].data == {"sku": "A1", "plant": "south", "day": 12}
    assert task.history and [m.parts[0].data for m in task.history[1:] if m.role.value == "ROLE_USER"] == [
        {"plant": "south"},
        {"day": 31},
        {"day": 12},
    ]


async def test_ask_non_blocking_then_poll(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(planner_agent(), transport) as client:
            first = await client.send_message(_ship(), return_immediately=True)
            waiting = await _wait_state(client, first.id, TaskState.INPUT_REQUIRED)
            assert _question(waiting).question == PLANT_QUESTION
            await client.send_message(answer_message(first.id, {"plant": "north"}), return_immediately=True)
            await _wait_state(client, first.id, TaskState.INPUT_REQUIRED)  # the second question
            await client.send_message(
                answer_message(first.id, '{"day": 3}', context_id=first.context_id), return_immediately=True
            )
            done = await _wait_state(client, first.id, TaskState.COMPLETED)
    assert done.artifacts and done.artifacts[0].parts[0].data == {"sku": "A1", "plant": "north", "day": 3}


async def test_ask_streamed_and_subscribers_see_every_state(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(planner_agent(), transport) as client:
            opening = await _collect(client.stream_message(_ship()))
            assert [_state_of(e) for e in opening] == [
                TaskState.SUBMITTED,
                TaskState.WORKING,
                TaskState.INPUT_REQUIRED,
            ]
            task_id = opening[0].task.id if opening[0].task else ""
            seen: list[StreamResponse] = []
            subscribed = anyio.Event()

            async def watch() -> None:
                async for event in client.subscribe(task_id):
                    seen.append(event)
                    subscribed.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await subscribed.wait()
                answered = await _collect(client.stream_message(answer_message(task_id, {"plant": "south"})))
            assert [_state_of(e) for e in answered] == [
                TaskState.SUBMITTED,
                TaskState.WORKING,
                TaskState.INPUT_REQUIRED,
            ]
            assert [_state_of(e) for e in seen] == [
                TaskState.INPUT_REQUIRED,
                TaskState.WORKING,
                TaskState.INPUT_REQUIRED,
            ]
            last = answered[-1].status_update
            assert last is not None and last.status.message is not None
            assert "day" in last.status.message.text().lower()
            final = await _collect(client.stream_message(answer_message(task_id, {"day": 9})))
    states = [_state_of(e) for e in final if _state_of(e) is not None]
    assert states == [TaskState.SUBMITTED, TaskState.WORKING, TaskState.COMPLETED]
    assert any(e.artifact_update is not None for e in final)


async def test_cancel_while_waiting(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(planner_agent(), transport) as client:
            task = await client.send_message(_ship())
            _question(task)
            canceled = await client.cancel_task(task.id)
            assert canceled.status.state == TaskState.CANCELED
            with pytest.raises(UnsupportedOperationError, match="CANCELED"):
                await client.answer(task.id, {"plant": "north"})  # type: ignore[attr-defined]
            assert (await client.get_task(task.id)).status.state == TaskState.CANCELED


async def test_no_answer_within_timeout_fails_with_reason(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(planner_agent(), transport) as client:
            task = await client.send_message(_ship(timeout_s=0.2))
            assert _question(task).timeout_s == 0.2
            failed = await _wait_state(client, task.id, TaskState.FAILED)
    reason = failed.status.message.text() if failed.status.message else ""
    assert "InputTimeout" in reason and "within 0.2 s" in reason and PLANT_QUESTION in reason


async def test_undeclared_asking_skill_fails_clearly(transport: str) -> None:
    with anyio.fail_after(20):
        async with open_client(planner_agent(), transport) as client:
            task = await client.send_message(skill_message("ship_quietly", {"sku": "Q"}))
    assert task.status.state == TaskState.FAILED
    assert task.status.message and "asks=True" in task.status.message.text()


async def test_direct_call_cannot_ask(transport: str) -> None:
    agent = planner_agent()
    with pytest.raises(InputUnavailable, match="nobody can answer"):
        await agent.call("ship", {"sku": "D"})
