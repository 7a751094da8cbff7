"""Health sweep: probe every agent (re-fetch its card, ping its MCP server, or check its heartbeat age).

A success recovers an unhealthy agent; ``failures_to_unhealthy`` failures in a row mark it unhealthy. A card
whose version changed is re-registered in place (history kept). Draining agents stay draining.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import anyio
from pydantic import BaseModel, Field

from registry.convert import now
from registry.discovery import fetch_card, ping_mcp
from registry.errors import AgentNotFound, RegistryError
from registry.models import AgentRecord, HealthStatus, Registration
from registry.store import Registry

__all__ = ["SweepReport", "HealthChecker"]


class SweepReport(BaseModel):
    """What one sweep saw."""

    checked: int = 0
    ok: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    unhealthy: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class HealthChecker:
    """Probes the registered agents, bounded in time and concurrency."""

    def __init__(
        self,
        registry: Registry,
        *,
        failures_to_unhealthy: int = 3,
        timeout: float = 5.0,
        concurrency: int = 16,
        stale_after: timedelta | None = None,
    ) -> None:
        if failures_to_unhealthy < 1:
            raise ValueError("failures_to_unhealthy must be at least 1")
        self.registry = registry
        self.failures_to_unhealthy = failures_to_unhealthy
        self.timeout = timeout
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.stale_after = stale_after

    async def probe(self, record: AgentRecord, report: SweepReport) -> bool | None:
        """Probe one agent: True/False, or None when it cannot be probed (in-process, no heartbeat rule)."""
        if record.transport == "a2a":
            try:
                card, where = await fetch_card(record.card_url or record.url, timeout_s=self.timeout)
            except RegistryError:
                return False
            if card.version != record.version:
                reg = Registration(card=card, agent_id=record.id, card_url=where)
                try:
                    await anyio.to_thread.run_sync(self.registry.register, reg)
                    report.updated.append(record.id)
                except RegistryError:
                    return False
            return True
        if record.transport == "mcp" and record.url.startswith("mcp+http"):
            return await ping_mcp(record.url, timeout_s=self.timeout)
        if self.stale_after is not None:
            seen = record.last_heartbeat
            return seen is not None and now() - seen <= self.stale_after
        return None

    async def _check(self, record: AgentRecord, report: SweepReport) -> None:
        async with self.limiter:
            ok = await self.probe(record, report)
        if ok is None:
            report.skipped.append(record.id)
            return
        (report.ok if ok else report.failed).append(record.id)
        try:
            status = await anyio.to_thread.run_sync(
                lambda: self.registry.record_probe(record.id, ok, failures_to_unhealthy=self.failures_to_unhealthy)
            )
        except AgentNotFound:
            return  # deregistered while we probed
        if status is HealthStatus.UNHEALTHY:
            report.unhealthy.append(record.id)

    async def sweep(self, *, page: int = 500) -> SweepReport:
        """Probe every registered agent once."""
        report = SweepReport()
        offset = 0
        while True:
            batch = await anyio.to_thread.run_sync(partial(self.registry.list, page, offset))
            async with anyio.create_task_group() as tg:
                for record in batch:
                    tg.start_soon(self._check, record, report)
            report.checked += len(batch)
            if len(batch) < page:
                return report
            offset += page

    async def run(self, interval: float = 30.0) -> None:
        """Sweep forever, every ``interval`` seconds (cancel the task to stop)."""
        while True:
            await self.sweep()
            await anyio.sleep(interval)
