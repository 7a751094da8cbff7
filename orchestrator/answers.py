"""Answering a task that waits for input: check the answer against the question's schema, send it to the agent.

The question lives in the run's events (``task.waiting``: agent, agent task id, schema), so any replica can answer
any run, also one whose owner restarted: the answer goes straight to the agent's task, and the replica that runs
the run sees the task move on and records ``task.answered`` (who, what, when). On the replica that runs it the
waiting executor is woken at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import jsonschema

from orchestrator.limits import valid_run_id
from orchestrator.reads import RunNotFound, no_run
from orchestrator.runs import owned_by

if TYPE_CHECKING:
    from orchestrator.service import Orchestrator

__all__ = ["InvalidAnswer", "NotWaiting", "answer_task", "waiting_question"]

MAX_EVENTS_READ = 10_000  # a run's events scanned for its latest question


class NotWaiting(LookupError):
    """The task does not wait for input (it never asked, was answered already, or ended)."""


class InvalidAnswer(ValueError):
    """The answer does not fit the question's schema; the task keeps waiting."""


def waiting_question(events: list[dict[str, Any]], task_id: str) -> dict[str, Any] | None:
    """The data of the latest ``task.waiting`` event of ``task_id`` not followed by its ``task.answered``."""
    question = None
    for event in events:
        if event.get("task_id") != task_id:
            continue
        if event["kind"] == "task.waiting":
            question = event["data"]
        elif event["kind"] in ("task.answered", "task.succeeded", "task.failed", "task.skipped"):
            question = None
    return question


async def answer_task(
    orch: Orchestrator, run_id: str, task_id: str, answer: Any, *, by: str, owner: str | None = None
) -> dict[str, Any]:
    """Send ``answer`` to the agent task that ``task_id`` of ``run_id`` waits on; ``by`` names who answered.

    Raises RunNotFound (unknown, or another owner's run), NotWaiting, InvalidAnswer (with the schema's complaint).
    """
    if not valid_run_id(run_id):
        raise RunNotFound(no_run(run_id))
    await orch._flushed()  # the question (and the task's status) this replica wrote is in the store
    run = await orch._read(orch.store.get_run, run_id)
    if run is None or not owned_by(run["owner"], owner):
        raise RunNotFound(no_run(run_id))
    state = orch.active.get(run_id)
    here = state.waiting.get(task_id) if state is not None else None
    events = await orch._read(orch.store.events_after, run_id, 0, MAX_EVENTS_READ)
    question = waiting_question(events, task_id)
    tasks = {t["task_id"]: t for t in await orch._read(orch.store.tasks_of, run_id)}
    if task_id not in tasks:
        raise NotWaiting(f"run {run_id} has no task {task_id!r} (it has: {', '.join(list(tasks)[:20])})")
    if question is None or tasks[task_id]["status"] != "waiting":
        raise NotWaiting(
            f"task {task_id!r} of run {run_id} is {tasks[task_id]['status']}, not waiting for input; "
            "answer only a task whose latest event is task.waiting"
        )
    _check(question.get("schema"), answer)
    if here is not None:
        agent = here.agent
    else:
        agent = await anyio.to_thread.run_sync(orch.router.registry.get, question["agent_id"])
    answerer = getattr(orch.transport, "answer", None)
    if answerer is None:
        raise NotWaiting("this orchestrator's transport cannot answer agents' questions")
    await answerer(agent, question["agent_task_id"], answer, by=by)
    if here is not None:
        here.wake.set()
    return {"run_id": run_id, "task_id": task_id, "accepted": True, "by": by}


def _check(schema: dict[str, Any] | None, answer: Any) -> None:
    if not schema:
        return
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(answer))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        raise InvalidAnswer(f"the answer does not fit the question's schema at {where}: {error.message[:300]}")
