"""Two echo agents for the multi-process test (``scaleout agent serve tests.security.e2e_agents:first``)."""

from __future__ import annotations

from agents.examples import echo_agent

first = echo_agent("echo-a")
second = echo_agent("echo-b")
