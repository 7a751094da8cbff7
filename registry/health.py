"""Health sweep: probe every agent (re-fetch its card, ping its MCP server, or check its heartbeat age).

A success recovers an unhealthy agent; ``failures_to_unhealthy`` failures in a row mark it unhealthy. A card
whose version changed is re-registered in place (history kept). Draining agents stay draining. Fetches and pings
connect only where the ``EgressPolicy`` allows; a stdio MCP server is started only when the ``StdioAllowlist``
names its command, otherwise its probe fails with that reason (so it turns unhealthy rather than staying healthy).
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import anyio
from pydantic import BaseModel, Field, ValidationError

from protocol.egress import EgressPolicy
from protocol.validation import describe_validation_error
from registry.convert import now
from registry.discovery import fetch_verified_card, probe_mcp
from registry.errors import AgentNotFound, RegistryError
from registry.models import AgentRecord, HealthStatus, Registration
from registry.stdio import STDIO_SCHEME, StdioAllowlist
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
    reasons: dict[str, str] = Field(default_factory=dict, description="why each failed agent failed")


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
        egress: EgressPolicy | None = None,
        stdio_allowlist: StdioAllowlist | None = None,
    ) -> None:
        if failures_to_unhealthy < 1:
            raise ValueError("failures_to_unhealthy must be at least 1")
        self.registry = registry
        self.failures_to_unhealthy = failures_to_unhealthy
        self.timeout = timeout
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.stale_after = stale_after
        self.egress = egress or EgressPolicy()
        self.stdio_allowlist = stdio_allowlist if stdio_allowlist is not None else StdioAllowlist()

    async def probe(self, record: AgentRecord, report: SweepReport) -> bool | None:
        """Probe one agent: True/False (the reason in ``report.reasons``), or None when it cannot be probed."""
        if record.transport == "a2a":
            try:
                where = record.card_url or record.url
                card, where, trust = await fetch_verified_card(where, timeout_s=self.timeout, egress=self.egress)
                known = record.trust
                if (
                    card.version != record.version
                    or trust.verified != known.verified
                    or trust.fingerprint != known.fingerprint
                ):  # a new card, or its signature changed: stored with what it proves (a key change is flagged)
                    reg = Registration(card=card, agent_id=record.id, card_url=where)
                    await anyio.to_thread.run_sync(partial(self.registry.register, reg, trust=trust))
                    report.updated.append(record.id)
            except ValidationError as exc:
                report.reasons[record.id] = f"its new card cannot be registered: {describe_validation_error(exc)}"
                return False
            except RegistryError as exc:
                report.reasons[record.id] = str(exc)
                return False
            return True
        if record.transport == "mcp" and record.url.startswith(("mcp+http://", "mcp+https://", STDIO_SCHEME)):
            reason = await probe_mcp(
                record.url, timeout_s=self.timeout, egress=self.egress, stdio_allowlist=self.stdio_allowlist
            )
            if reason is not None:
                report.reasons[record.id] = reason
            return reason is None
        if self.stale_after is not None:
            seen = record.last_heartbeat
            if seen is not None and now() - seen <= self.stale_after:
                return True
            report.reasons[record.id] = f"no heartbeat for more than {self.stale_after}"
            return False
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
