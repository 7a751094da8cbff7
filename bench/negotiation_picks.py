"""Is the model's pick worth anything? The LLM-guided negotiator beside the same negotiator with its pick replaced
by a control, on the same scenarios, opponents and seeds.

Controls (no model call): ``first`` always sends the strategy's own counter-offer (the shortlist's first entry;
this is the plain Boulware negotiator), ``last`` the shortlist's last entry, ``random`` a seeded uniform pick, and
``shown-first`` always answers "0" through the whole prompt path (shuffled display, schema, mapping back): what
a model that always picks the first option it is shown now gets.
"""

from __future__ import annotations

import hashlib
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field

from agents.agent import Agent, SkillContext
from agents.llm import Scripted
from agents.llm.base import Brain
from agents.negotiators import LinearUtility, Preferences, get_strategy, outcome_space
from agents.negotiators.guided import Picker, display_order, enforce, guided_respond, shortlist
from protocol.negotiation import Offer, RespondRequest, Response

__all__ = ["CONTROLS", "PickLog", "guided_agent", "control_agent", "print_picks"]

CONTROLS = ["first", "last", "random", "shown-first"]


@dataclass
class PickLog:
    """What one guided kind picked: moves by source, shortlist positions shown and real, shortlist sizes."""

    sources: Counter[str] = field(default_factory=Counter)
    shown: Counter[int] = field(default_factory=Counter)
    real: Counter[int] = field(default_factory=Counter)
    sizes: list[int] = field(default_factory=list)


def guided_agent(
    name: str, prefs: Preferences, brain: Brain | None, *, seed: int, log: PickLog, picker: Picker | None = None
) -> Agent:
    """The LLM-guided Boulware negotiator (``guided_respond`` + ``enforce``, as ``negotiator_agent`` runs them),
    with the model's pick replaced by ``picker`` when given; every pick is logged."""
    strategy = get_strategy("boulware")
    agent = Agent(name, "LLM-guided negotiator (bench)", brain=brain)

    @agent.skill()
    async def respond(ctx: SkillContext, req: RespondRequest) -> Response:
        """Answer the offer on the table: accept, counter, or walk away."""
        utility = LinearUtility(prefs, req.issues)
        space = outcome_space(req.issues)
        move = await guided_respond(ctx, req, utility, space, strategy, seed=seed, picker=picker)
        move = enforce(move, req, utility, space, strategy)
        log.sources[move.source] += 1
        base = strategy.respond(req, utility, space)
        if move.source in ("model", "control") and base.offer is not None and move.offer is not None:
            listed = shortlist(req, utility, space, base.offer)
            real = [o.key() for o in listed].index(move.offer.key())
            log.real[real] += 1
            log.shown[display_order(req, len(listed), seed).index(real)] += 1
            log.sizes.append(len(listed))
        return move

    return agent


def control_agent(name: str, kind: str, prefs: Preferences, *, seed: int, log: PickLog) -> Agent:
    """The same guided negotiator with the pick made by control ``kind`` (see ``CONTROLS``)."""
    if kind == "shown-first":
        brain = Scripted([{"offer": 0, "reason": "first shown"}], cycle=True, name="control")
        return guided_agent(name, prefs, brain, seed=seed, log=log)
    pickers: dict[str, Picker] = {
        "first": lambda listed: 0,
        "last": lambda listed: len(listed) - 1,
        "random": lambda listed: _seeded(seed, name, listed).randrange(len(listed)),
    }
    return guided_agent(name, prefs, None, seed=seed, log=log, picker=pickers[kind])


def _seeded(seed: int, name: str, listed: list[Offer]) -> random.Random:
    # one draw per shortlist, fixed by the seed and the shortlist: independent across scenarios, replayable
    digest = hashlib.sha256(repr((seed, name, [o.key() for o in listed])).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def print_picks(logs: dict[str, PickLog]) -> None:
    """Per kind: moves by source, and how often each shown and real shortlist position was sent."""
    print("\nPicks (position 0 = first; real 0 = the strategy's own counter-offer)")
    for kind, log in logs.items():
        picks = sum(log.real.values())
        if not picks:
            print(f"{kind:<13} no picks; moves {dict(log.sources)}")
            continue
        shown = " ".join(f"{k}:{v / picks:.0%}" for k, v in sorted(log.shown.items()))
        real = " ".join(f"{k}:{v / picks:.0%}" for k, v in sorted(log.real.items()))
        print(
            f"{kind:<13} {picks:>4} picks (mean {statistics.fmean(log.sizes):.1f} options)  shown {shown}  "
            f"real {real}  moves {dict(log.sources)}"
        )
