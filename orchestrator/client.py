"""Python client for the orchestrator's HTTP API (httpx), with the same verbs as the API.

>>> async with OrchestratorClient("http://127.0.0.1:8100") as client:
...     run_id = await client.submit({"skill": "echo", "input": {"text": "hi"}})
...     async for event in client.events(run_id): print(event["kind"])
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Self

import httpx
from pydantic import BaseModel

__all__ = ["OrchestratorClient", "OrchestratorError", "TERMINAL_EVENTS"]

TERMINAL_EVENTS = frozenset({"run.succeeded", "run.failed", "run.cancelled"})


class OrchestratorError(RuntimeError):
    """The orchestrator refused a request; ``status`` is the HTTP status, the message its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class OrchestratorClient:
    """Submit, list, show, watch and cancel runs on an orchestrator at ``base_url``."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._own = http is None
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, self.base_url + path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise OrchestratorError(response.status_code, message)
        return response.json()

    async def submit(self, spec: dict[str, Any] | BaseModel) -> str:
        """Start a run (a graph or a single task); returns its id."""
        body = spec.model_dump(mode="json") if isinstance(spec, BaseModel) else spec
        return str((await self._json("POST", "/runs", json=body))["id"])

    async def list_runs(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return list((await self._json("GET", "/runs", params=params))["runs"])

    async def get_run(self, run_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/runs/{run_id}"))

    async def cancel(self, run_id: str) -> bool:
        return bool((await self._json("POST", f"/runs/{run_id}/cancel"))["cancelled"])

    async def events(
        self, run_id: str, *, last_event_id: int = 0, reconnects: int = 5
    ) -> AsyncIterator[dict[str, Any]]:
        """The run's events from ``last_event_id`` on; reconnects (resuming by id) when the stream breaks."""
        last, failures = last_event_id, 0
        while True:
            try:
                async with self._http.stream(
                    "GET", f"{self.base_url}/runs/{run_id}/events", headers={"Last-Event-ID": str(last)}, timeout=None
                ) as response:
                    if response.status_code >= 400:
                        body = json.loads(await response.aread() or b"{}")
                        raise OrchestratorError(response.status_code, body.get("error", "events unavailable"))
                    async for event in _parse_sse(response):
                        last = int(event["seq"])
                        failures = 0
                        yield event
                        if event["kind"] in TERMINAL_EVENTS:
                            return
                return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                failures += 1
                if failures > reconnects:
                    raise

    async def wait(self, run_id: str) -> dict[str, Any]:
        """Follow the run's events to its end; return its record."""
        async for _ in self.events(run_id):
            pass
        return await self.get_run(run_id)

    async def run(self, spec: dict[str, Any] | BaseModel) -> dict[str, Any]:
        """Submit and wait: the finished run's record."""
        return await self.wait(await self.submit(spec))

    async def agents(self) -> list[dict[str, Any]]:
        return list((await self._json("GET", "/agents"))["agents"])


async def _parse_sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield json.loads("\n".join(data))
            data = []
