"""Which replica runs which run: leases on ``orch_runs`` rows, claimed with ``FOR UPDATE SKIP LOCKED``.

Every active run has an owner replica (``lease_owner``) and a lease (``lease_expires_at``) that the owner renews
(its heartbeat, and every batch of writes it commits). A replica claims only runs nobody owns (queued) or whose
lease expired (the owner died). Writes are fenced: a batch first renews the leases of the runs it writes, in the
same transaction, and drops the writes of any run this replica no longer owns, so a replica that lost a run
(paused past its lease, partitioned) can never write into it again. On PostgreSQL the clock is the database's
(``now()``), so replicas need no synchronised clocks; on SQLite (one replica) it is this process's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from orchestrator import tables as t
from orchestrator.runs import ACTIVE, TERMINAL, RunStore, now

__all__ = ["Leases", "CancelOutcome"]

CancelOutcome = str  # "ended" (already terminal), "cancelled" (queued or orphaned: done here), "requested"


class Leases:
    """Lease operations of one replica (``replica_id``) on the store's runs; synchronous, call from a thread."""

    def __init__(self, store: RunStore, replica_id: str, lease_s: float) -> None:
        self.store = store
        self.replica_id = replica_id
        self.lease_s = lease_s
        self._postgres = store.engine.dialect.name == "postgresql"

    def _now(self) -> Any:
        return sa.func.now() if self._postgres else sa.literal(now(), t.runs.c.lease_expires_at.type)

    def _expiry(self) -> Any:
        if self._postgres:
            return sa.func.now() + sa.literal(timedelta(seconds=self.lease_s), sa.Interval())
        return sa.literal(now() + timedelta(seconds=self.lease_s), t.runs.c.lease_expires_at.type)

    def claim(self, limit: int, *, exclude: set[str], own_too: bool = False) -> list[dict[str, Any]]:
        """Take up to ``limit`` queued or expired runs (oldest first), and with ``own_too`` the runs a previous
        process with this replica id left; returns their rows, now leased to this replica."""
        if limit <= 0:
            return []
        runs = t.runs
        free = sa.or_(runs.c.lease_owner.is_(None), runs.c.lease_expires_at < self._now())
        if own_too:
            free = sa.or_(free, runs.c.lease_owner == self.replica_id)
        if not self._postgres:  # SQLite: this process holds the database's lock, so any other owner is dead
            free = sa.or_(runs.c.lease_owner.is_(None), runs.c.lease_owner != self.replica_id)
            if own_too:
                free = sa.true()
        query = (
            sa.select(runs.c.id)
            .where(runs.c.status.in_(ACTIVE), free)
            .order_by(runs.c.created_at)
            .limit(limit + len(exclude))
            .with_for_update(skip_locked=True)
        )
        with self.store.engine.begin() as conn:
            ids = [i for i in conn.execute(query).scalars() if i not in exclude][:limit]
            if not ids:
                return []
            conn.execute(
                runs.update()
                .where(runs.c.id.in_(ids))
                .values(lease_owner=self.replica_id, lease_expires_at=self._expiry())
            )
            rows = conn.execute(sa.select(runs).where(runs.c.id.in_(ids)).order_by(runs.c.created_at)).mappings()
            return [dict(r) for r in rows]

    def renew(self, run_ids: set[str]) -> tuple[set[str], set[str]]:
        """Extend the leases of ``run_ids`` (the runs this replica is running: a run it claimed but could not
        start lapses and is claimed again); returns (those it still owns, those asked to cancel)."""
        runs, ids = t.runs, sorted(run_ids)
        held: set[str] = set()
        cancels: set[str] = set()
        with self.store.engine.begin() as conn:
            for start in range(0, len(ids), 1_000):
                stmt = (
                    runs.update()
                    .where(runs.c.lease_owner == self.replica_id, runs.c.id.in_(ids[start : start + 1_000]))
                    .values(lease_expires_at=self._expiry())
                    .returning(runs.c.id, runs.c.cancel_requested)
                )
                for run_id, cancel in conn.execute(stmt).all():
                    held.add(run_id)
                    if cancel:
                        cancels.add(run_id)
        return held, cancels

    def fence(self, conn: sa.Connection, run_ids: set[str]) -> set[str]:
        """Inside a write transaction: renew the leases of ``run_ids`` held by this replica and return the ones
        it does not hold (their writes must be dropped). Locks the rows until the transaction ends."""
        if not run_ids:
            return set()
        runs = t.runs
        held: set[str] = set()
        ids = sorted(run_ids)
        for start in range(0, len(ids), 1_000):
            chunk = ids[start : start + 1_000]
            stmt = (
                runs.update()
                .where(runs.c.id.in_(chunk), runs.c.lease_owner == self.replica_id)
                .values(lease_expires_at=self._expiry())
                .returning(runs.c.id)
            )
            held.update(conn.execute(stmt).scalars())
        return run_ids - held

    def release(self, run_ids: set[str] | None = None) -> None:
        """Give up this replica's leases (all, or ``run_ids``): another replica may claim those runs at once."""
        runs = t.runs
        stmt = runs.update().where(runs.c.lease_owner == self.replica_id)
        if run_ids is not None:
            stmt = stmt.where(runs.c.id.in_(sorted(run_ids)))
        with self.store.engine.begin() as conn:
            conn.execute(stmt.values(lease_owner=None, lease_expires_at=None))
            self.store.notify(conn, "scaleout_runs", ["released"])

    def request_cancel(self, run_id: str) -> CancelOutcome:
        """Cancel ``run_id`` from any replica: a queued or orphaned run is cancelled here, in one transaction;
        a run another replica owns is flagged (and that replica told) and "requested" is returned."""
        runs = t.runs
        with self.store.engine.begin() as conn:
            row = conn.execute(
                sa.select(runs.c.status, runs.c.lease_owner, runs.c.lease_expires_at < self._now())
                .where(runs.c.id == run_id)
                .with_for_update()
            ).first()
            if row is None or row[0] in TERMINAL:
                return "ended"
            status, owner, expired = row
            if owner is not None and not expired:
                conn.execute(runs.update().where(runs.c.id == run_id).values(cancel_requested=True))
                self.store.notify(conn, "scaleout_cancel", [run_id])
                return "requested"
            stamp = now()
            conn.execute(
                t.tasks.update()
                .where(t.tasks.c.run_id == run_id, t.tasks.c.status.in_(("pending", "running", "waiting")))
                .values(status="cancelled", finished_at=stamp)
            )
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(
                    status="cancelled",
                    error="cancelled by request",
                    updated_at=stamp,
                    finished_at=stamp,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            seq = conn.execute(sa.select(sa.func.max(t.events.c.seq)).where(t.events.c.run_id == run_id)).scalar()
            event = {
                "run_id": run_id,
                "seq": int(seq or 0) + 1,
                "kind": "run.cancelled",
                "task_id": None,
                "data": {"error": "cancelled by request", "usage": None},
                "at": stamp,
            }
            conn.execute(t.events.insert(), [event])
            self.store.notify(conn, "scaleout_events", [run_id])
            return "cancelled"
