"""The agent the crash and database-fault tests serve in a process of their own:
``scaleout agent serve tests.orchestrator.crash_agents:agent --port P`` with ``$SCALEOUT_CRASH_LOG`` set.

Its one skill, ``step``, appends ``"<step> <contextId>"`` as one line to the file ``$SCALEOUT_CRASH_LOG`` (written
and flushed before anything else), then sleeps ``delay`` seconds and answers ``text + step``. The file counts
every execution on the agent, whichever orchestrator process asked for it; the context id is the attempt id.
"""

from __future__ import annotations

import os

import anyio
from pydantic import BaseModel, Field

from agents.agent import Agent, SkillContext

__all__ = ["LOG_ENV", "agent", "executions"]

LOG_ENV = "SCALEOUT_CRASH_LOG"


class StepIn(BaseModel):
    step: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    text: str = ""
    delay: float = Field(default=1.5, ge=0, le=30)


class StepOut(BaseModel):
    text: str
    step: str


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as log:
        log.write(line + "\n")
        log.flush()
        os.fsync(log.fileno())


agent = Agent("crash-worker", "a slow worker that records every execution, for the crash tests", tags=["test"])


@agent.skill(id="step", tags=["work"], description="Records the step, sleeps, appends the step name to text")
async def step(ctx: SkillContext, req: StepIn) -> StepOut:
    await anyio.to_thread.run_sync(_append, os.environ[LOG_ENV], f"{req.step} {ctx.context_id}")
    await anyio.sleep(req.delay)
    return StepOut(text=req.text + req.step, step=req.step)


def executions(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The (step, attempt id) pairs the agent recorded in ``path``, in order (none when the file is missing)."""
    try:
        with open(path, encoding="utf-8") as log:
            return [(parts[0], parts[1] if len(parts) > 1 else "") for parts in map(str.split, log) if parts]
    except FileNotFoundError:
        return []
