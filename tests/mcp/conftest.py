"""Fixtures for the MCP binding: small agents with scripted brains (deterministic, no model needed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agents.agent import Agent
from agents.examples import Classification, echo_agent, triage_agent
from agents.llm import Scripted

INVALID_REPLY = '{"department": "marketing", "urgent": false}'


@pytest.fixture
def echo() -> Agent:
    return echo_agent()


@pytest.fixture
def good_triage() -> Callable[[str], Agent]:
    """A triage agent whose brain always answers a valid billing classification."""

    def make(name: str = "triage") -> Agent:
        reply = Classification(department="billing", urgent=False)
        return triage_agent(Scripted([reply], cycle=True, name="scripted-gemma"), name=name)

    return make


@pytest.fixture
def bad_triage() -> Callable[[str], Agent]:
    """A triage agent whose brain always answers a department outside the schema."""

    def make(name: str = "triage") -> Agent:
        return triage_agent(Scripted([INVALID_REPLY], cycle=True), name=name)

    return make
