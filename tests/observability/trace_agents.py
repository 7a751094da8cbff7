"""Agents the observability tests serve in their own processes (``scaleout agent serve`` loads them).

``alpha.relay`` asks its (Scripted) model, then calls ``beta.shout`` over A2A at ``$TRACE_BETA_URL``: the hop from
agent to agent that one trace must span. ``broken.explode`` always raises, for the traceback in the agent's log.
"""

from __future__ import annotations

import os

from pydantic import BaseModel

from agents import Agent, SkillContext
from agents.client import HttpAgentClient, skill_message
from agents.llm.scripted import Scripted

BETA_URL_ENV = "TRACE_BETA_URL"
EXPLOSION = "the widget exploded at 451 rpm"


class Text(BaseModel):
    text: str


beta = Agent("beta", "Shouts", brain=Scripted([{"text": "LOUD"}], cycle=True, name="scripted-beta"))


@beta.skill()
async def shout(ctx: SkillContext, req: Text) -> Text:
    """Shout the text (one model generation)."""
    return await ctx.generate(f"Shout: {req.text}\nJSON:", Text)


alpha = Agent("alpha", "Relays to beta", brain=Scripted([{"text": "relayed"}], cycle=True, name="scripted-alpha"))


@alpha.skill()
async def relay(ctx: SkillContext, req: Text) -> Text:
    """Ask the model, then ask beta over A2A; both answers joined."""
    own = await ctx.generate(f"Relay: {req.text}\nJSON:", Text)
    async with HttpAgentClient(os.environ[BETA_URL_ENV]) as client:
        task = await client.send_message(skill_message("shout", {"text": req.text}))
    assert task.artifacts, f"beta answered {task.status}"
    loud = task.artifacts[0].parts[0].data or {}
    return Text(text=f"{own.text}+{loud.get('text')}")


broken = Agent("broken", "Always fails")


def _explode() -> None:
    raise RuntimeError(EXPLOSION)


@broken.skill()
async def explode(ctx: SkillContext, req: Text) -> Text:
    """Raise from a helper: the traceback must name it."""
    _explode()
    return req
