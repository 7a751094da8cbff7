"""The engine's public value types: its options, a snapshot of its load, and the errors a job can end with."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ContextOverflow", "EngineClosed", "EngineConfig", "EngineStats"]


class EngineClosed(RuntimeError):
    """The engine was closed while the job waited or ran."""


class ContextOverflow(ValueError):
    """The prompt plus ``max_tokens`` needs more KV cells than the whole context has: it could never run."""


@dataclass(frozen=True)
class EngineConfig:
    """How an engine schedules. ``jump_forward``: after each sampled token, append the tokens the job's
    constraint forces next (``Constraint.forced``) without sampling, decoded with it in the next batch."""

    jump_forward: bool = True


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of an engine's load: jobs running and queued, slots, KV cells, and prompt-token counters.

    ``kv_cells`` counts distinct cells held (a shared prefix once), ``kv_tokens`` the tokens slots hold (a
    shared prefix once per slot), ``kv_reserved`` the cells running jobs may still add. ``prompt_tokens`` and
    ``cached_tokens`` add up every started job's prompt and the part of it reused from the cache.
    """

    active: int
    waiting: int
    slots: int
    cached_slots: int
    kv_tokens: int
    steps: int
    kv_cells: int = 0
    kv_reserved: int = 0
    n_ctx: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
