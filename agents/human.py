"""A "human" agent: a person does its skills. Each task asks its input as a question (``ctx.ask``) and the person's
answer, valid against the skill's output model, is the task's output.

Registered and served like any agent (``create_app``, ``scaleout agent serve module:agent``), so a graph routes a
task to a person as to a model: its tasks wait for input by design (answer them with ``scaleout runs answer``, the
orchestrator's API or console, or any A2A client). The card's tags and metadata say it is human.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from agents.agent import Agent, Skill, SkillContext
from agents.task_ask import check_input_timeout

__all__ = ["HUMAN_TAG", "HumanTask", "human_agent"]

HUMAN_TAG = "human"
_SKILL_ID = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class HumanTask:
    """One skill a person does: what they are asked (``description`` and the input), what they answer."""

    id: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    tags: list[str] = field(default_factory=list)


def human_agent(name: str, description: str, tasks: Sequence[HumanTask], *, timeout_s: float | None = None) -> Agent:
    """An agent whose skills a person answers; ``timeout_s`` bounds each wait (default: the runtime's
    ``input_timeout_s``), after which the task fails and the orchestrator may try another agent."""
    check_input_timeout(timeout_s)
    if not tasks:
        raise ValueError("a human agent needs at least one HumanTask")
    agent = Agent(name, description, tags=[HUMAN_TAG], metadata={"kind": HUMAN_TAG})
    for task in tasks:
        if not _SKILL_ID.match(task.id) or task.id in agent.skills:
            raise ValueError(f"skill id {task.id!r} must match {_SKILL_ID.pattern} and be unique")
        agent.skills[task.id] = Skill(
            id=task.id,
            name=task.id.replace("_", " ").capitalize(),
            description=task.description,
            input_model=task.input_model,
            output_model=task.output_model,
            fn=_asks_a_person(task, timeout_s),
            tags=[*task.tags, HUMAN_TAG],
            asks=True,
        )
    return agent


def _asks_a_person(
    task: HumanTask, timeout_s: float | None
) -> Callable[[SkillContext, BaseModel], Awaitable[BaseModel]]:
    async def answered(ctx: SkillContext, request: BaseModel) -> BaseModel:
        question = f"{task.description}\n{request.model_dump_json()}"
        return await ctx.ask(question, task.output_model, timeout_s=timeout_s)

    return answered
