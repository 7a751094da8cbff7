"""A running skill asks its caller: the task waits in ``TASK_STATE_INPUT_REQUIRED`` until the answer comes.

``ask_input`` is what ``SkillContext.ask`` runs inside a ``TaskRuntime``: it puts the question and the answer's
JSON schema in the status message (an ``InputRequest`` data part), waits for the next message on the same task,
validates it, and asks again with the validation error while it does not fit. The wait is bounded: past
``timeout_s`` the skill gets ``InputTimeout`` (its task fails with that reason). The task's time limit does not
run while it waits.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from agents.errors import AgentError
from agents.task_handle import TaskHandle
from agents.task_input import message_arguments
from protocol.a2a import InputRequest, Message, Part
from protocol.jsonrpc import A2AError
from protocol.validation import describe_validation_error

__all__ = [
    "DEFAULT_INPUT_TIMEOUT_S",
    "MAX_INPUT_TIMEOUT_S",
    "InputTimeout",
    "InputUnavailable",
    "ask_input",
    "check_input_timeout",
]

DEFAULT_INPUT_TIMEOUT_S = 900.0
"""How long a task waits for an answer unless the runtime or the ``ask`` says otherwise."""
MAX_INPUT_TIMEOUT_S = 7 * 24 * 3600.0
"""The longest wait anyone may ask for (a week)."""

Answer = TypeVar("Answer", bound=BaseModel)


class InputUnavailable(AgentError):
    """A skill asked for input where nobody can answer (a direct ``Agent.call``, or an undeclared asking skill)."""


class InputTimeout(AgentError):
    """Nobody answered a skill's question within its input timeout."""


def check_input_timeout(timeout_s: float | None) -> None:
    """Refuse a wait that is not a positive number of seconds up to ``MAX_INPUT_TIMEOUT_S``."""
    if timeout_s is not None and not 0 < timeout_s <= MAX_INPUT_TIMEOUT_S:
        raise ValueError(f"input_timeout_s must be > 0 and <= {MAX_INPUT_TIMEOUT_S:g} seconds, got {timeout_s}")


async def ask_input(handle: TaskHandle, question: str, answer_type: type[Answer], timeout_s: float) -> Answer:
    """Put ``handle`` in input-required with ``question``; return the first answer valid as ``answer_type``."""
    check_input_timeout(timeout_s)
    schema = answer_type.model_json_schema()
    deadline = anyio.current_time() + timeout_s
    limit, paused_at = handle.scope.deadline, anyio.current_time()
    handle.scope.deadline = math.inf  # a person may take longer than the task's time limit allows a skill
    error: str | None = None
    try:
        while True:
            request = InputRequest(question=question[:4000], schema=schema, error=error, timeout_s=timeout_s)
            text = question if error is None else f"{question}\nThe last answer was refused: {error}"
            handle.expect_input()
            handle.require_input(Message.agent(Part.from_text(text), request.part()))
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                message = await handle.next_input()
                handle.working()
                try:
                    return _parse(answer_type, message_arguments(message))
                except (ValidationError, ValueError, A2AError) as exc:
                    error = _why(exc)[:4000]
                    continue
            handle.expect_input(False)
            raise InputTimeout(
                f"nobody answered {question[:200]!r} within {timeout_s:g} s (input_timeout_s); "
                "answer sooner, or ask with a longer timeout_s"
            )
    finally:
        if math.isfinite(limit):
            handle.scope.deadline = limit + (anyio.current_time() - paused_at)


def _parse(answer_type: type[Answer], arguments: Any) -> Answer:
    """An answer as ``answer_type``: a JSON object, JSON text, or plain text for a model with one text field."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            fields = answer_type.model_fields
            text_fields = [n for n, f in fields.items() if f.annotation is str]
            if len(fields) != 1 or not text_fields:
                raise ValueError(
                    f"the answer must be a JSON object matching {answer_type.__name__}; send it as a data part"
                ) from None
            arguments = {text_fields[0]: arguments}
    return answer_type.model_validate(arguments)


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc)
    return str(exc)
