"""Approval gates: a task's output held for a person's approval before its dependents run.

A task with ``"approve": {"when": ..., "by": [...]}`` whose output meets ``when`` goes ``waiting`` (and so does
its run) with a ``task.approval_requested`` event carrying the output and who may decide. A decision
(``decide``: the REST route, the CLI, the client, the MCP tool, the console) becomes ``task.approved`` or
``task.rejected`` (who, comment, when). Approved: the task succeeds with the output. Rejected: the attempt counts
as failed with the comment as its reason, and the executor tries the next attempt as for any failure.

The request and the decision are events only: a replica that resumes the run finds the open request in them and
waits again (``restored``). A decision is taken by the replica that runs the run.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.attempts import run_waiting
from orchestrator.limits import valid_run_id
from orchestrator.reads import RunNotFound, no_run
from orchestrator.runs import now, owned_by
from orchestrator.spec import Approval, Condition, TaskSpec
from orchestrator.state import RunState
from protocol.auth import ADMIN, Principal

if TYPE_CHECKING:
    from orchestrator.service import Orchestrator

__all__ = [
    "Decision",
    "NotAnApprover",
    "NotAwaitingApproval",
    "PendingApproval",
    "Restored",
    "condition_holds",
    "decide",
    "hold",
    "may_decide",
    "open_request",
    "record",
    "restored",
    "settle",
]

MAX_EVENTS_READ = 10_000  # a run's events scanned for an open approval request
MAX_COMMENT = 2_000
_ENDS = ("task.approved", "task.rejected", "task.succeeded", "task.failed", "task.skipped")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_MISSING = object()


class NotAwaitingApproval(LookupError):
    """The task holds no output for approval now (no gate, not reached yet, decided, or ended)."""


class NotAnApprover(PermissionError):
    """The caller is not among the gate's ``by`` and does not hold ``admin``."""


@dataclass(frozen=True)
class Decision:
    """A person's decision on a held output."""

    approve: bool
    by: str
    comment: str = ""


@dataclass
class PendingApproval:
    """An output held on the replica that runs the run, until ``decision`` is set."""

    output: Any
    by: list[str]
    decided: anyio.Event = field(default_factory=anyio.Event)
    decision: Decision | None = None


@dataclass(frozen=True)
class Restored:
    """An approval request found in a resumed run's events: its output and, if one was recorded, the decision."""

    output: Any
    attempt: int
    agent_id: str | None
    attempt_id: str | None
    decision: Decision | None


def condition_holds(when: Condition | None, output: Any) -> bool:
    """Whether ``output`` needs approval under ``when`` (None: always); a missing path or values that do not
    compare count as holding."""
    if when is None:
        return True
    value = _at(output, when.path.split(".") if when.path else [])
    if value is _MISSING:
        return True
    try:
        return bool(_OPS[when.op](value, when.value))
    except TypeError:
        return True


def _at(value: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def may_decide(principal: Principal | None, gate: Approval) -> bool:
    """Whether ``principal`` (None: a trusted in-process caller) may approve or reject under ``gate``."""
    if principal is None or principal.has(ADMIN) or not gate.by:
        return True
    names = {principal.subject, principal.owner}
    if principal.tenant:
        names |= {principal.tenant, f"tenant:{principal.tenant}"}
    return bool(names & set(gate.by))


async def hold(
    state: RunState,
    spec: TaskSpec,
    output: Any,
    attempt: int,
    agent_id: str | None,
    attempt_id: str | None,
    *,
    resumed: bool = False,
) -> str | None:
    """Hold ``output`` of task ``spec`` (made by attempt number ``attempt``) until a person decides, if its gate's
    condition holds; None when it may go on (approved, or no approval needed), else the rejection as the attempt's
    error (the attempt's record then says failed, with that reason)."""
    gate = spec.approve
    if gate is None or not (resumed or condition_holds(gate.when, output)):
        return None
    tid = spec.id
    pending = PendingApproval(output, list(gate.by))
    state.approvals[tid] = pending
    state.writer.put("update_task", {"status": "waiting"}, state.run_id, tid)
    state.emit(
        "task.approval_requested",
        tid,
        output=output,
        by=list(gate.by),
        attempt=attempt,
        attempt_id=attempt_id,
        agent_id=agent_id,
        condition=gate.when.model_dump() if gate.when else None,
        resumed=resumed,
    )
    run_waiting(state)
    try:
        await pending.decided.wait()
        assert pending.decision is not None
        return record(state, tid, pending.decision, attempt, attempt_id)
    finally:
        state.approvals.pop(tid, None)
        state.writer.put("update_task", {"status": "running"}, state.run_id, tid)
        run_waiting(state)


def record(state: RunState, tid: str, decision: Decision, attempt: int, attempt_id: str | None) -> str | None:
    """Emit the decision's event; a rejection fails the attempt's record and is returned as its error, None when
    approved."""
    kind = "task.approved" if decision.approve else "task.rejected"
    state.emit(kind, tid, by=decision.by, comment=decision.comment, attempt=attempt)
    if decision.approve:
        return None
    why = _rejection(decision)
    if attempt_id is not None:
        state.writer.put("update_attempt", {"status": "failed", "error": why}, attempt_id, run_id=state.run_id)
    return why


async def settle(state: RunState, spec: TaskSpec, prior: Restored) -> str | None:
    """Finish a restored request: its recorded decision, else hold its output again until one comes."""
    if prior.decision is not None:  # recorded before a crash: its event is there, the attempt's record may not be
        if prior.decision.approve:
            return None
        why = _rejection(prior.decision)
        if prior.attempt_id is not None:
            update = {"status": "failed", "error": why}
            state.writer.put("update_attempt", update, prior.attempt_id, run_id=state.run_id)
        return why
    return await hold(state, spec, prior.output, prior.attempt, prior.agent_id, prior.attempt_id, resumed=True)


def _rejection(decision: Decision) -> str:
    return f"output rejected by {decision.by}: {decision.comment or '(no comment)'}"


def open_request(events: list[dict[str, Any]], task_id: str) -> Restored | None:
    """The latest ``task.approval_requested`` of ``task_id`` that the task has not ended since, with its decision
    when one was recorded (a crash may come between the decision and the task's end)."""
    found: Restored | None = None
    for event in events:
        if event.get("task_id") != task_id:
            continue
        data = event.get("data") or {}
        if event["kind"] == "task.approval_requested":
            number, agent_id, attempt_id = int(data.get("attempt") or 0), data.get("agent_id"), data.get("attempt_id")
            found = Restored(data.get("output"), number, agent_id, attempt_id, None)
        elif event["kind"] in ("task.approved", "task.rejected") and found is not None and found.decision is None:
            decision = Decision(event["kind"] == "task.approved", str(data.get("by")), str(data.get("comment") or ""))
            found = Restored(found.output, found.attempt, found.agent_id, found.attempt_id, decision)
        elif event["kind"] in _ENDS[2:]:
            found = None
    return found


async def restored(state: RunState, spec: TaskSpec) -> Restored | None:
    """In a resumed run, the approval request task ``spec`` left open (None when there is none)."""
    if spec.approve is None or state.attempts_made.get(spec.id, 0) == 0:
        return None
    store = state.writer.store
    events = await anyio.to_thread.run_sync(store.events_after, state.run_id, 0, MAX_EVENTS_READ)
    return open_request(events, spec.id)


async def decide(
    orch: Orchestrator,
    run_id: str,
    task_id: str,
    approve: bool,
    comment: str = "",
    *,
    principal: Principal | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """Approve or reject the output task ``task_id`` of ``run_id`` holds; ``principal`` (None: trusted, "local")
    must be one of the gate's ``by`` or hold ``admin``. Raises RunNotFound, NotAwaitingApproval, NotAnApprover."""
    if not valid_run_id(run_id):
        raise RunNotFound(no_run(run_id))
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"the comment has {len(comment)} characters; at most {MAX_COMMENT}")
    state = orch.active.get(run_id)
    if state is None or state.abandoned:
        run = await orch._read(orch.store.get_run, run_id)
        if run is None or not owned_by(run["owner"], owner):
            raise RunNotFound(no_run(run_id))
        where = "it has ended" if run["status"] not in ("running", "waiting", "pending") else "it runs elsewhere"
        raise NotAwaitingApproval(
            f"run {run_id} is {run['status']} and not run by this replica ({where}); send the decision to the "
            "replica that runs it, or again once it has resumed"
        )
    if not owned_by(state.owner, owner):
        raise RunNotFound(no_run(run_id))
    spec = state.graph.tasks.get(task_id)
    if spec is None:
        raise NotAwaitingApproval(
            f"run {run_id} has no task {task_id!r} (it has: {', '.join(list(state.graph.tasks)[:20])})"
        )
    pending = state.approvals.get(task_id)
    if pending is None or pending.decision is not None:
        gate = "has no approval gate" if spec.approve is None else "holds no output for approval now"
        raise NotAwaitingApproval(
            f"task {task_id!r} of run {run_id} {gate}; decide only after its task.approval_requested"
        )
    assert spec.approve is not None
    if not may_decide(principal, spec.approve):
        who = principal.owner if principal is not None else "local"
        raise NotAnApprover(f"{who} may not decide on task {task_id!r}: it needs one of {spec.approve.by} or admin")
    by = principal.owner if principal is not None else "local"
    pending.decision = Decision(bool(approve), by, comment)
    pending.decided.set()
    return {"run_id": run_id, "task_id": task_id, "approved": bool(approve), "by": by, "at": now().isoformat()}
