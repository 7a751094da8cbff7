"""A slow agent served in a separate process by the kill test (``scaleout agent serve`` loads ``agent``)."""

from __future__ import annotations

from tests.orchestrator.conftest import Behaviour, worker

agent = worker("doomed", Behaviour(mode="slow", delay=120))

stdio_worker = worker("stdio-worker", skill="shout")  # served over MCP stdio by the allowlist test
