"""Observed call outcomes on their way to the registry, in batches, so that agent calls never wait on it."""

from __future__ import annotations

import math
from typing import Any

import anyio

from orchestrator.router import Router

__all__ = ["StatsSink"]

_Call = tuple[str, bool, float, int, str | None]  # agent id, success, latency (s), tokens, skill


class StatsSink:
    """Observed call outcomes, reported to the registry in batches by ``run`` (so calls never wait on it).

    A batch gathers for ``linger_s`` after its first call (the router caches registry answers for about as
    long), so a busy orchestrator reports many calls per registry transaction; ``aclose`` reports what is left.
    """

    def __init__(self, router: Router, *, linger_s: float = 0.2, max_batch: int = 1_000) -> None:
        self.router = router
        self.linger_s = linger_s
        self.max_batch = max_batch
        self._send, self._receive = anyio.create_memory_object_stream[_Call](math.inf)
        self._closing = anyio.Event()
        self._stopped = anyio.Event()

    def put(self, agent_id: str, success: bool, latency_s: float, tokens: int, skill: str | None = None) -> None:
        """Queue one observed call of ``agent_id`` (of its ``skill``, when known); ignored once closing."""
        if not self._closing.is_set():
            self._send.send_nowait((agent_id, success, latency_s, tokens, skill))

    async def run(self) -> None:
        try:
            async with self._receive:
                async for first in self._receive:
                    with anyio.move_on_after(self.linger_s):
                        await self._closing.wait()
                    batch = [first]
                    while len(batch) < self.max_batch:
                        try:
                            batch.append(self._receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    await anyio.to_thread.run_sync(self._report, batch)
        finally:
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop taking calls, report those queued, and wait for ``run`` to end (call it while ``run`` runs)."""
        self._closing.set()
        self._send.close()
        await self._stopped.wait()

    def _report(self, batch: list[_Call]) -> None:
        many = getattr(self.router.registry, "record_calls", None)
        if many is not None:  # one transaction for the batch where the registry offers it
            try:
                many([_report_of(call) for call in batch])
                return
            except Exception:  # noqa: S110 - e.g. a database hiccup: fall back to one call at a time
                pass
        for call in batch:
            report = _report_of(call)
            try:
                self.router.registry.record_call(report.pop("agent_id"), **report)
            except Exception:  # noqa: S112 - an agent deregistered meanwhile; its stats no longer matter
                continue


def _report_of(call: _Call) -> dict[str, Any]:
    """One call as the registry's ``record_calls`` takes it (``skill`` only when known, for older registries)."""
    agent_id, success, latency_s, tokens, skill = call
    report: dict[str, Any] = {"agent_id": agent_id, "success": success, "latency_s": latency_s, "tokens": tokens}
    if skill is not None:
        report["skill"] = skill
    return report
