"""Negotiations recorded as runs (``kind`` "negotiation") in an orchestrator's run store, on any replica.

A negotiation run is created running and leased to the replica that records it (it sits in the orchestrator's
``active`` runs, so its lease is renewed and it can be cancelled from any replica); each protocol step is a run
event (``negotiation.started|offer|bid|award|ended``) and the run ends ``run.succeeded`` (or ``run.failed``, or
``run.cancelled``) with the ``negotiation.ended`` data as its output. Negotiations are not resumed: a run whose
replica stops or dies is failed as interrupted (at shutdown by that replica, after a crash by the replica that
claims it when its lease expires).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel

from orchestrator.energy import EnergyModel
from orchestrator.graph import TaskGraph
from orchestrator.limits import LimitExceeded
from orchestrator.negotiation.calls import Ledger
from orchestrator.negotiation.recorder import (
    AWARD,
    BID,
    ENDED,
    NO_RECORDER,
    OFFER,
    STARTED,
    AwardStep,
    BidStep,
    Ended,
    NegotiationRecorder,
    OfferStep,
    ProtocolName,
    Started,
)
from orchestrator.reads import UNAVAILABLE
from orchestrator.runs import StoreUnavailable, is_unavailable, now
from orchestrator.spec import GraphSpec, TaskSpec
from orchestrator.state import RunState
from protocol.a2a import new_id

if TYPE_CHECKING:
    from orchestrator.service import Orchestrator

__all__ = [
    "NegotiationRuns",
    "RunRecorder",
    "record_with",
    "recording_runs",
    "fail_interrupted",
    "INTERRUPTED",
    "STOPPED",
    "NEGOTIATION_KIND",
]

_log = logging.getLogger(__name__)
NEGOTIATION_KIND = "negotiation"
INTERRUPTED = (
    "interrupted: the replica running this negotiation stopped without ending it; negotiations are not resumed"
)
STOPPED = "interrupted: the orchestrator stopped during this negotiation; negotiations are not resumed"
# RunState needs a graph; a negotiation run has none (nothing reads it: negotiation runs never reach the executor)
_NO_GRAPH = TaskGraph(GraphSpec(tasks=[TaskSpec(id="negotiation", text="a negotiation run has no task graph")]))


class RunRecorder:
    """A ``NegotiationRecorder`` that writes each step as an event of one run (queued on the orchestrator's
    writer: recording never waits for the database)."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.ended_step: Ended | None = None

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def _emit(self, kind: str, step: BaseModel) -> None:
        if not (self.state.abandoned or self.state.closing):  # another replica owns it, or it has ended
            self.state.emit(kind, **step.model_dump(mode="json"))

    def started(self, step: Started) -> None:
        self._emit(STARTED, step)

    def offer(self, step: OfferStep) -> None:
        self._emit(OFFER, step)

    def bid(self, step: BidStep) -> None:
        self._emit(BID, step)

    def award(self, step: AwardStep) -> None:
        self._emit(AWARD, step)

    def ended(self, step: Ended) -> None:
        if self.ended_step is None:
            self.ended_step = step
            self._emit(ENDED, step)


class NegotiationRuns:
    """Opens negotiation runs on a running ``Orchestrator`` and ends them; ``opened`` lists their ids in order."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orch = orchestrator
        self.opened: list[str] = []

    async def open(
        self,
        name: str,
        *,
        protocol: ProtocolName,
        spec: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> RunRecorder:
        """Create a running negotiation run (committed on return) and its recorder; end it with ``finish``.
        Raises StoreUnavailable while the database is away, LimitExceeded (429) when this replica is full."""
        orch = self.orch
        if orch.writer.unavailable is not None:
            raise StoreUnavailable(UNAVAILABLE)
        if orch.free_slots() <= 0:
            raise LimitExceeded(
                429,
                f"this replica is not running or already runs {orch.limits.max_active_runs} runs "
                "(RunLimits.max_active_runs, 'orchestrator serve --max-active-runs'); wait for some to finish",
            )
        await orch.writer.room()
        run_id, stamp = new_id(), now()
        name = " ".join(name.split())[:200]
        run = {
            "id": run_id,
            "kind": NEGOTIATION_KIND,
            "name": name,
            "status": "running",
            "spec": spec if spec is not None else {"protocol": protocol, "name": name},
            "created_at": stamp,
            "updated_at": stamp,
            "owner": owner,
            "lease_owner": orch.replica_id,
            "lease_expires_at": stamp + timedelta(seconds=orch.lease_s),
        }
        created = {
            "run_id": run_id,
            "seq": 1,
            "kind": "run.created",
            "task_id": None,
            "data": {"tasks": 0, "name": name, "kind": NEGOTIATION_KIND, "protocol": protocol},
            "at": stamp,
        }
        state = RunState(run_id, _NO_GRAPH, orch.writer, owner=owner, seq=1, status="running")
        orch.active[run_id] = state  # counted, renewed by the heartbeat and cancellable from now on
        try:
            await anyio.to_thread.run_sync(orch.store.create_run, run, [], created)
        except Exception as exc:
            orch.active.pop(run_id, None)
            if is_unavailable(exc):
                raise StoreUnavailable(UNAVAILABLE) from exc
            raise
        state.emit("run.started", replica=orch.replica_id)
        self.opened.append(run_id)
        return RunRecorder(state)

    async def drive(
        self, recorder: RunRecorder, negotiate: Callable[[], Awaitable[Any]], *, ledger: Ledger | None = None
    ) -> None:
        """Run ``negotiate()`` as the run's body (cancellable through the run), then end the run. An exception
        fails the run with its text and is not raised further (it is the run's outcome)."""
        error = None
        try:
            with recorder.state.scope:
                await negotiate()
        except Exception as exc:
            error = f"negotiation error: {type(exc).__name__}: {exc}"
            _log.warning("negotiation run %s failed: %s", recorder.run_id, error)
        finally:
            with anyio.CancelScope(shield=True):
                await self.finish(recorder, error=error, ledger=ledger)

    @asynccontextmanager
    async def recording(
        self,
        name: str,
        *,
        protocol: ProtocolName,
        spec: dict[str, Any] | None = None,
        owner: str | None = None,
        ledger: Ledger | None = None,
    ) -> AsyncIterator[RunRecorder]:
        """Record the protocol run inside the block as one negotiation run (``recorder=`` the yielded value).
        Cancelling the run (API, CLI) cancels the block; an exception fails the run and is raised again."""
        recorder = await self.open(name, protocol=protocol, spec=spec, owner=owner)
        error = None
        try:
            with recorder.state.scope:
                try:
                    yield recorder
                except Exception as exc:
                    error = f"negotiation error: {type(exc).__name__}: {exc}"
                    raise
        finally:
            with anyio.CancelScope(shield=True):
                await self.finish(recorder, error=error, ledger=ledger)

    async def finish(self, recorder: RunRecorder, *, error: str | None = None, ledger: Ledger | None = None) -> str:
        """End the run: ``negotiation.ended`` if the protocol did not record one, then the run's own end with the
        outcome as its output; returns the run's status. Waits (bounded) until written."""
        state, orch = recorder.state, self.orch
        try:
            if state.abandoned or state.closing:
                return state.status  # another replica took it over (and fails it), or it already ended
            if state.cancel_requested:
                status, error = "cancelled", "cancelled by request"
            elif state.stopping:
                status, error = "failed", STOPPED
            elif error is not None:
                status = "failed"
            elif recorder.ended_step is None:
                status, error = "failed", "the negotiation ended without an outcome"
            else:
                failed = recorder.ended_step.outcome == "failed"
                status, error = ("failed", recorder.ended_step.reason) if failed else ("succeeded", None)
            if recorder.ended_step is None:
                recorder.ended(Ended(outcome="failed", reason=error or ""))
            assert recorder.ended_step is not None
            output = recorder.ended_step.model_dump(mode="json")
            usage = _usage(ledger)
            stamp = now()
            state.closing = True
            state.status = status
            state.emit(f"run.{status}", error=error, usage=usage, output=output)
            values = {
                "status": status,
                "error": error,
                "usage": usage,
                "output": output,
                "updated_at": stamp,
                "finished_at": stamp,
                "lease_owner": None,
                "lease_expires_at": None,
            }
            orch.writer.put("update_run", values, state.run_id)
            with anyio.move_on_after(5.0 if state.stopping else 30.0):
                try:
                    await orch.writer.flush()
                except RuntimeError as exc:
                    _log.error("negotiation run %s ended %s but a write failed: %s", state.run_id, status, exc)
            return status
        finally:
            state.done.set()
            orch.active.pop(state.run_id, None)
            orch.replica.claim_soon()


def record_with(
    runs: NegotiationRuns | None, name: str, *, protocol: ProtocolName
) -> AbstractAsyncContextManager[NegotiationRecorder]:
    """``runs.recording(name, protocol=...)``, or a recording that keeps nothing when ``runs`` is None (so a
    scenario records its negotiations only when given an orchestrator)."""
    return runs.recording(name, protocol=protocol) if runs is not None else _nothing()


@asynccontextmanager
async def recording_runs(db: str | None) -> AsyncIterator[NegotiationRuns | None]:
    """A running orchestrator on ``db`` (a database URL or SQLite path; its registry is the one in ``db``) that
    records negotiations as runs; yields None without ``db``. On SQLite no other orchestrator may run on the same
    file meanwhile (``ReplicaConflict``); on PostgreSQL this is one more replica."""
    if db is None:
        yield None
        return
    from orchestrator.service import Orchestrator
    from registry import Registry

    with Registry(db) as registry:
        orchestrator = Orchestrator(registry, registry.url)
        try:
            async with orchestrator.running():
                yield NegotiationRuns(orchestrator)
        finally:
            orchestrator.store.close()


@asynccontextmanager
async def _nothing() -> AsyncIterator[NegotiationRecorder]:
    yield NO_RECORDER


def _usage(ledger: Ledger | None) -> dict[str, float]:
    """The run's usage in the graph runs' terms, from the negotiation's ledger (zeros without one)."""
    total = ledger.total() if ledger is not None else None
    if total is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "wall_seconds": 0.0, "cpu_seconds": 0.0, "attempts": 0}
    energy = EnergyModel.from_env()
    joules = sum(energy.joules(a.usage, observed_wall_s=a.seconds) for a in ledger.agents.values()) if ledger else 0.0
    return {
        "prompt_tokens": total.usage.prompt_tokens,
        "completion_tokens": total.usage.completion_tokens,
        "wall_seconds": round(total.seconds, 6),
        "cpu_seconds": round(total.usage.cpu_seconds, 6),
        "energy_joules": round(joules, 6),
        "attempts": total.calls,
    }


async def fail_interrupted(orch: Orchestrator, row: dict[str, Any]) -> None:
    """Fail the claimed negotiation run ``row`` as interrupted (its replica died): ``negotiation.ended`` (unless it
    was recorded before the crash) and ``run.failed``, written under this replica's new lease."""
    run_id = row["id"]
    seq = await anyio.to_thread.run_sync(orch.store.last_seq, run_id)
    last = await anyio.to_thread.run_sync(orch.store.events_after, run_id, max(seq - 1, 0))
    stamp = now()
    if last and last[-1]["kind"] == ENDED:
        output = last[-1]["data"]
    else:
        output = Ended(outcome="failed", reason=INTERRUPTED).model_dump(mode="json")
        seq += 1
        ended = {"run_id": run_id, "seq": seq, "kind": ENDED, "task_id": None, "data": output, "at": stamp}
        orch.writer.put("event", ended)
    data = {"error": INTERRUPTED, "usage": None, "output": output}
    orch.writer.put(
        "event", {"run_id": run_id, "seq": seq + 1, "kind": "run.failed", "task_id": None, "data": data, "at": stamp}
    )
    values = {
        "status": "failed",
        "error": INTERRUPTED,
        "output": output,
        "updated_at": stamp,
        "finished_at": stamp,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    orch.writer.put("update_run", values, run_id)
