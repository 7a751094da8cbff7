"""Targets for ``python -m agents.mcp`` in the stdio tests (imported by the spawned server process)."""

from __future__ import annotations

from agents.agent import Agent
from agents.examples import echo_agent, triage_agent
from agents.llm import Scripted


def pair() -> list[Agent]:
    """Two agents in one server: an echo and a triage whose brain always answers invalid output."""
    bad = triage_agent(Scripted(['{"department": "marketing", "urgent": false}'], cycle=True), name="triage")
    return [echo_agent("echo"), bad]


single = echo_agent("solo")
not_an_agent = 42
