"""Resolve ``module:attr`` targets into agents (an Agent, a list of Agents, or a zero-argument factory)."""

from __future__ import annotations

import importlib
from typing import Any

from agents.agent import Agent

__all__ = ["load_agents"]


def load_agents(target: str) -> list[Agent]:
    """Import ``module:attr`` and return its agents; the attribute may be an Agent, a list, or a factory."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"target {target!r} must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    try:
        obj: Any = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if callable(obj) and not isinstance(obj, Agent):
        obj = obj()
    agents = [obj] if isinstance(obj, Agent) else list(obj) if isinstance(obj, list | tuple) else None
    if not agents or not all(isinstance(a, Agent) for a in agents):
        raise ValueError(f"{target!r} is not an Agent, a list of Agents, or a factory returning them")
    return agents
