"""Resolve ``module:attr`` targets into agents (an Agent, a list of Agents, or a zero-argument factory)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from agents.agent import Agent

__all__ = ["load_agents"]


def load_agents(target: str, *, app_dir: str | None = None) -> list[Agent]:
    """Import ``module:attr`` and return its agents; the attribute may be an Agent, a list, or a factory.

    ``app_dir`` (the CLI passes the current directory, as uvicorn does) is put first on the import path."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"target {target!r} must look like 'package.module:attribute'")
    if app_dir is not None:
        app_dir = os.path.abspath(app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in {app_dir} and the installed packages)" if app_dir else ""
        raise ValueError(f"cannot import {module_name!r}{where}: {exc}") from exc
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
