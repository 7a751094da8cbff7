"""Choose agents for a task: candidates from the registry, ranked and explained.

Ranking: agents that serve the need (skill, tags or text) and pass the constraints are ordered smallest model
first (``prefer="smallest"``, the default; agents without a model count as size 0), ties broken by a score in
[0, 1] that weighs skill fit, current load, observed success rate, observed latency and cost. ``prefer="best"``
orders by score alone, ``"largest"`` largest first. Agents with a poor record (success < 20 % over 5+ calls)
go last. The record (success, latency) is that of the skill the candidate would be called for, from the
registry's per-skill statistics; an agent whose skill has no recorded calls yet is judged by its totals. So a
slow or failing LLM skill does not drag down a fast rule skill of the same agent. Every ranking is returned with
a human-readable reason per candidate, recorded in the run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from orchestrator.spec import TaskSpec
from registry.models import AgentRecord, HealthStatus, SkillStats

__all__ = ["RegistryLike", "Candidate", "Routing", "Router", "NoCandidate", "WEIGHTS"]

WEIGHTS = {"fit": 0.35, "success": 0.25, "latency": 0.15, "load": 0.15, "cost": 0.10}
_POOR_RECORD_CALLS, _POOR_RECORD_RATE = 5, 0.2


class RegistryLike(Protocol):
    """The registry methods the router uses (``registry.Registry`` has them)."""

    def search(
        self,
        skill: str | None = None,
        tags: Sequence[str] | None = None,
        text: str | None = None,
        *,
        status: Collection[HealthStatus] | None = ...,
        max_cost: float | None = None,
        max_latency_ms: float | None = None,
        limit: int = 20,
    ) -> list[AgentRecord]: ...

    def get(self, agent_id: str) -> AgentRecord: ...

    def record_call(
        self, agent_id: str, *, success: bool, latency_s: float, tokens: int = 0, skill: str | None = None
    ) -> None: ...


class NoCandidate(LookupError):
    """No healthy registered agent can take the task under its constraints."""


@dataclass
class Candidate:
    """One agent considered for a task, with its score, the parts of the score and why it ranks where it does."""

    agent: AgentRecord
    skill: str
    score: float
    parts: dict[str, float]
    size: int
    reason: str = ""

    @property
    def stats(self) -> SkillStats:
        """The record this candidate is ranked by: its skill's statistics, else the agent's totals."""
        return self.agent.stats.for_skill(self.skill)

    def summary(self) -> dict[str, Any]:
        """The candidate as recorded in a run's routing explanation."""
        return {
            "agent_id": self.agent.id,
            "name": self.agent.name,
            "url": self.agent.url,
            "skill": self.skill,
            "score": round(self.score, 4),
            "parts": {k: round(v, 4) for k, v in self.parts.items()},
            "parameters": self.size,
            "stats_of": "skill" if self.stats is not self.agent.stats else "agent",
            "reason": self.reason,
        }


@dataclass
class Routing:
    """The ranked candidates for one task and the agents considered but left out (with why)."""

    task_id: str
    candidates: list[Candidate]
    excluded: list[dict[str, str]] = field(default_factory=list)

    def explain(self) -> dict[str, Any]:
        return {"task": self.task_id, "ranked": [c.summary() for c in self.candidates], "excluded": self.excluded}


class Router:
    """Ranks registry candidates for tasks and tracks the calls in flight per agent (its current load).
    ``require_signed``: only agents whose card signature verified, with the key pinned for them, are candidates."""

    def __init__(
        self,
        registry: RegistryLike,
        *,
        weights: dict[str, float] | None = None,
        limit: int = 20,
        cache_ttl_s: float = 1.0,
        require_signed: bool = False,
    ) -> None:
        self.registry = registry
        self.require_signed = require_signed
        self.weights = weights or WEIGHTS
        self.limit = limit
        self.cache_ttl_s = cache_ttl_s
        self.load: Counter[str] = Counter()
        self._cache: dict[tuple[Any, ...], tuple[float, list[AgentRecord]]] = {}

    async def route(self, task: TaskSpec) -> Routing:
        """Rank candidates for ``task``; registry answers are reused for ``cache_ttl_s`` (load is always live)."""
        cached = self._cached(task)
        records = cached if cached is not None else await anyio.to_thread.run_sync(self._search, task)
        return self.rank(task, records)

    def _key(self, task: TaskSpec) -> tuple[Any, ...]:
        return (task.skill, tuple(task.tags), task.text, task.constraints.max_cost)

    def _cached(self, task: TaskSpec) -> list[AgentRecord] | None:
        hit = self._cache.get(self._key(task))
        if hit is not None and time.monotonic() - hit[0] < self.cache_ttl_s:
            return hit[1]
        return None

    def serves(self, task: TaskSpec) -> bool:
        """Whether at least one healthy agent can take ``task`` (used to validate graphs before a run)."""
        return bool(self.rank(task, self._search(task)).candidates)

    def _search(self, task: TaskSpec) -> list[AgentRecord]:
        cached = self._cached(task)
        if cached is not None:
            return cached
        records = self.registry.search(
            skill=task.skill,
            tags=task.tags or None,
            text=None if (task.skill or task.tags) else task.text,
            status={HealthStatus.HEALTHY},
            max_cost=task.constraints.max_cost,
            limit=self.limit,
        )
        if len(self._cache) > 1_024:
            self._cache.clear()
        self._cache[self._key(task)] = (time.monotonic(), records)
        return records

    def rank(self, task: TaskSpec, records: list[AgentRecord]) -> Routing:
        """Order ``records`` for ``task`` as the module docstring describes."""
        c = task.constraints
        ranked: list[Candidate] = []
        excluded: list[dict[str, str]] = []
        for record in records:
            skill, fit = _fit(task, record)
            size = (record.model.parameters or 0) if record.model else 0
            why_not = None
            if record.status != HealthStatus.HEALTHY:
                why_not = f"status {record.status.value}"
            elif skill is None:
                why_not = "does not serve the skill/tags asked for"
            elif self.require_signed and not record.trust.verified:
                why_not = "its card is not signed by a verified key (require_signed)"
            elif self.require_signed and record.trust.key_changed_at is not None:
                why_not = "its card-signing key changed and was not accepted (require_signed)"
            elif c.max_parameters is not None and size > c.max_parameters:
                why_not = f"model has {size:,} parameters > max_parameters {c.max_parameters:,}"
            elif c.max_cost is not None and record.cost.per_call > c.max_cost:
                why_not = f"cost per call {record.cost.per_call} > max_cost {c.max_cost}"
            if why_not is not None or skill is None:
                excluded.append({"agent_id": record.id, "name": record.name, "why": why_not or "no skill"})
                continue
            stats = record.stats.for_skill(skill)
            parts = {
                "fit": fit,
                "success": _success(stats),
                "latency": 1.0 / (1.0 + (stats.latency_p50_ms or 0.0) / 1000.0),
                "load": 1.0 / (1.0 + self.load[record.id]),
                "cost": 1.0 / (1.0 + record.cost.per_call + record.cost.per_1k_tokens),
            }
            score = sum(self.weights.get(k, 0.0) * v for k, v in parts.items())
            ranked.append(Candidate(record, skill, score, parts, size))
        ranked.sort(key=lambda cand: _key(cand, c.prefer))
        for i, cand in enumerate(ranked):
            cand.reason = _reason(i, cand, c.prefer)
        return Routing(task.id, ranked, excluded)


def _key(cand: Candidate, prefer: str) -> tuple[float, ...]:
    poor = 1.0 if _poor(cand.stats) else 0.0
    if prefer == "best":
        return (poor, -cand.score)
    size = float(cand.size) if prefer == "smallest" else -float(cand.size)
    return (poor, size, -cand.score)


def _poor(s: SkillStats) -> bool:
    return s.calls >= _POOR_RECORD_CALLS and s.successes / s.calls < _POOR_RECORD_RATE


def _success(s: SkillStats) -> float:
    # Laplace-smoothed, so an agent nobody has tried yet starts at 0.5 instead of 0 or 1.
    return (s.successes + 1) / (s.calls + 2)


def _fit(task: TaskSpec, record: AgentRecord) -> tuple[str | None, float]:
    """The skill of ``record`` that fits ``task`` best and how well (1.0 = exact skill id)."""
    if task.skill:
        for skill in record.skills:
            if skill.id == task.skill:
                return skill.id, 1.0
        return None, 0.0
    best: tuple[str | None, float] = (None, 0.0)
    wanted = {t.lower() for t in task.tags}
    words = {w for w in (task.text or "").lower().split() if len(w) > 2}
    for skill in record.skills:
        have = {t.lower() for t in skill.tags + record.tags}
        if wanted:
            if not wanted <= have:
                continue
            fit = 0.6 + 0.4 * len(wanted) / max(len(have), 1)
        else:
            blob = f"{skill.id} {skill.name} {skill.description} {' '.join(skill.tags)}".lower()
            hits = sum(1 for w in words if w in blob)
            fit = 0.5 * hits / max(len(words), 1)
            if hits == 0:
                fit = 0.05  # the registry's text search matched the agent, not this skill
        if fit > best[1]:
            best = (skill.id, fit)
    return best


def _reason(rank: int, cand: Candidate, prefer: str) -> str:
    size = f"{cand.size:,} parameters" if cand.size else "no model"
    order = {"smallest": "smallest capable first", "largest": "largest first", "best": "best score first"}[prefer]
    poor = "; demoted: success rate under 20 %" if _poor(cand.stats) else ""
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(cand.parts.items(), key=lambda kv: -kv[1])[:3])
    calls = cand.stats.calls
    basis = f"record of skill {cand.skill!r}" if cand.stats is not cand.agent.stats else "record of the agent"
    record = f"{basis}: {calls} call{'s' if calls != 1 else ''}" if calls else "no calls recorded"
    return f"#{rank + 1} ({order}): {size}, score {cand.score:.3f} ({top}; {record}){poor}"
