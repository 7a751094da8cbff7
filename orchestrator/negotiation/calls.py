"""Calling negotiating agents through any ``AgentClient``: typed skill calls, deadlines, a per-agent ledger."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ValidationError

from agents.client import AgentClient, skill_message
from agents.tasks import USAGE_METADATA_KEY
from agents.usage import Usage
from protocol.a2a import TaskState, WireModel
from protocol.jsonrpc import A2AError

__all__ = [
    "Party",
    "SkillCaller",
    "Ledger",
    "AgentLedger",
    "NegotiationCallError",
    "NegotiationTimeout",
    "call_skill",
    "gather_replies",
    "Replies",
]

T = TypeVar("T", bound=BaseModel)


SkillCaller = Callable[[str, dict[str, Any]], Awaitable[tuple[Any, Usage]]]
"""Calls one skill of a party with JSON arguments: (its JSON output, its usage); raises NegotiationCallError."""


@dataclass(frozen=True)
class Party:
    """A participant: its name (as used in messages) and how to reach it: an A2A ``client`` (in-process or over
    HTTP), or a ``caller`` (e.g. through the orchestrator's transports). ``agent_id`` (its registry id) and
    ``role`` only label it in recorded runs."""

    name: str
    client: AgentClient | None = None
    caller: SkillCaller | None = None
    agent_id: str | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if (self.client is None) == (self.caller is None):
            raise ValueError(f"party {self.name!r} needs exactly one of client= or caller=")


class NegotiationCallError(RuntimeError):
    """A skill call failed: the task did not complete, or its result did not validate."""


class NegotiationTimeout(NegotiationCallError):
    """A skill call did not answer within its time limit."""


@dataclass
class AgentLedger:
    """What one agent did for a run: calls, orchestrator-side seconds, and model usage it reported."""

    calls: int = 0
    seconds: float = 0.0
    usage: Usage = field(default_factory=Usage)


class Ledger:
    """Per-agent accounting across every protocol of a run."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentLedger] = {}

    def record(self, name: str, seconds: float, usage: Usage) -> None:
        entry = self.agents.setdefault(name, AgentLedger())
        entry.calls += 1
        entry.seconds += seconds
        entry.usage = entry.usage + usage

    def total(self) -> AgentLedger:
        total = AgentLedger()
        for entry in self.agents.values():
            total.calls += entry.calls
            total.seconds += entry.seconds
            total.usage = total.usage + entry.usage
        return total


async def call_skill(
    party: Party,
    skill: str,
    request: WireModel,
    out: type[T],
    *,
    timeout_s: float = 30.0,
    ledger: Ledger | None = None,
) -> T:
    """Send ``request`` as a typed data part to ``party``'s ``skill`` and validate the reply as ``out``."""
    started = time.perf_counter()
    if party.caller is not None:
        return await _call_through(party, party.caller, skill, request, out, timeout_s, ledger, started)
    assert party.client is not None
    try:
        with anyio.fail_after(timeout_s):
            task = await party.client.send_message(skill_message(skill, request.wire()))
    except TimeoutError:
        raise NegotiationTimeout(f"{party.name} did not answer {skill!r} within {timeout_s:g} s") from None
    except (A2AError, httpx.HTTPError) as exc:
        raise NegotiationCallError(f"{party.name}.{skill} could not be called: {type(exc).__name__}: {exc}") from None
    elapsed = time.perf_counter() - started
    usage = Usage.model_validate((task.metadata or {}).get(USAGE_METADATA_KEY) or {})
    if ledger is not None:
        ledger.record(party.name, elapsed, usage)
    if task.status.state is not TaskState.COMPLETED or not task.artifacts:
        why = task.status.message.text() if task.status.message else "no reason given"
        raise NegotiationCallError(f"{party.name}.{skill} ended {task.status.state.value}: {why}")
    data = task.artifacts[0].parts[0].data
    try:
        return out.model_validate(data)
    except ValidationError as exc:
        raise NegotiationCallError(
            f"{party.name}.{skill} answered something that is not a {out.__name__}: {exc.errors()[0]['msg']}"
        ) from None


async def _call_through(
    party: Party,
    caller: SkillCaller,
    skill: str,
    request: WireModel,
    out: type[T],
    timeout_s: float,
    ledger: Ledger | None,
    started: float,
) -> T:
    try:
        with anyio.fail_after(timeout_s):
            data, usage = await caller(skill, request.wire())
    except TimeoutError:
        raise NegotiationTimeout(f"{party.name} did not answer {skill!r} within {timeout_s:g} s") from None
    if ledger is not None:
        ledger.record(party.name, time.perf_counter() - started, usage)
    try:
        return out.model_validate(data)
    except ValidationError as exc:
        raise NegotiationCallError(
            f"{party.name}.{skill} answered something that is not a {out.__name__}: {exc.errors()[0]['msg']}"
        ) from None


@dataclass
class Replies(Generic[T]):
    """Answers to one broadcast: in time, late (past the deadline), or failed (with the error)."""

    answers: dict[str, T] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def gather_replies(
    parties: Sequence[Party],
    skill: str,
    request: WireModel,
    out: type[T],
    *,
    deadline_s: float,
    concurrency: int = 256,
    ledger: Ledger | None = None,
) -> Replies[T]:
    """Ask every party at once; whoever has not answered when ``deadline_s`` runs out is late and ignored."""
    replies: Replies[T] = Replies()
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    deadline = anyio.current_time() + deadline_s

    async def ask(party: Party) -> None:
        async with limiter:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                replies.late.append(party.name)
                return
            try:
                replies.answers[party.name] = await call_skill(
                    party, skill, request, out, timeout_s=remaining, ledger=ledger
                )
            except NegotiationTimeout:
                replies.late.append(party.name)
            except NegotiationCallError as exc:
                replies.failed[party.name] = str(exc)

    async with anyio.create_task_group() as tg:
        for party in parties:
            tg.start_soon(ask, party)
    replies.late.sort()
    return replies
