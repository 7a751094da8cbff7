"""Energy estimate for a call, from the usage every agent reports.

Model (documented in docs/orchestrator.md, configurable): ``joules = cpu_seconds * watts_per_core +
wall_seconds * idle_watts``. Defaults: 15 W per busy core (a typical desktop/server x86 core under load) and
0 W idle share. Set ``SCALEOUT_WATTS_PER_CORE`` / ``SCALEOUT_IDLE_WATTS`` or pass an ``EnergyModel``.
Where an agent reports no CPU time (e.g. a remote agent without accounting) the orchestrator's own wall time
for the attempt is used as the CPU time of one core, which overestimates rather than hides the cost.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from agents.usage import Usage

__all__ = ["EnergyModel"]


class EnergyModel(BaseModel):
    """Joules for a call: busy-core seconds times watts per core, plus wall seconds times idle watts."""

    watts_per_core: float = Field(default=15.0, ge=0, le=10_000)
    idle_watts: float = Field(default=0.0, ge=0, le=100_000)

    @classmethod
    def from_env(cls) -> EnergyModel:
        """The model configured by ``SCALEOUT_WATTS_PER_CORE`` and ``SCALEOUT_IDLE_WATTS`` (defaults otherwise)."""
        return cls(
            watts_per_core=float(os.environ.get("SCALEOUT_WATTS_PER_CORE", 15.0)),
            idle_watts=float(os.environ.get("SCALEOUT_IDLE_WATTS", 0.0)),
        )

    def joules(self, usage: Usage, *, observed_wall_s: float = 0.0) -> float:
        """Estimated joules for ``usage``; ``observed_wall_s`` stands in when the agent reported no time."""
        cpu = usage.cpu_seconds or (observed_wall_s if not usage.wall_seconds else usage.wall_seconds)
        wall = usage.wall_seconds or observed_wall_s
        return cpu * self.watts_per_core + wall * self.idle_watts
