"""Python client for the orchestrator's HTTP API (httpx), with the same verbs as the API.

>>> async with OrchestratorClient("http://127.0.0.1:8100") as client:
...     run_id = await client.submit({"skill": "echo", "input": {"text": "hi"}})
...     async for event in client.events(run_id): print(event["kind"])

Requests carry a bearer token: ``token=``, else ``$SCALEOUT_TOKEN``, else the file ``$SCALEOUT_TOKEN_FILE``
(default ``~/.config/scaleout/token``); ``ca_file=`` verifies an https orchestrator against that CA.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any, Self
from urllib.parse import quote

import anyio
import httpx
from pydantic import BaseModel

from protocol.auth import bearer_headers, tls_verify

__all__ = ["OrchestratorClient", "OrchestratorError", "TERMINAL_EVENTS"]

TERMINAL_EVENTS = frozenset({"run.succeeded", "run.failed", "run.cancelled"})


class OrchestratorError(RuntimeError):
    """The orchestrator refused a request: ``status`` the HTTP status, ``kind`` the error type, then the reason."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(f"HTTP {status}: {kind + ': ' if kind else ''}{message}")
        self.status = status
        self.kind = kind
        self.message = message


def _error(status: int, body: bytes) -> OrchestratorError:
    """The error an error response stands for: ``{"error": {"type", "message"}}`` (or any other body as text)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return OrchestratorError(status, str(error.get("message", "")), str(error.get("type", "")))
    if isinstance(error, str):  # an older orchestrator
        return OrchestratorError(status, error)
    return OrchestratorError(status, body.decode("utf-8", "replace")[:500] or "no reason given")


def _retry_after(value: str | None) -> float:
    """Seconds to wait from a ``Retry-After`` header (1 s when absent or unreadable; at most 10 s)."""
    try:
        return min(max(float(value or 1), 0.1), 10.0)
    except ValueError:
        return 1.0


class OrchestratorClient:
    """Submit, list, show, watch and cancel runs on an orchestrator at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        verify: ssl.SSLContext | bool | None = None,
    ) -> None:
        """``token`` (default ``$SCALEOUT_TOKEN`` or the token file) is sent as ``Authorization: Bearer``;
        ``ca_file`` (or an ``ssl.SSLContext`` / bool as ``verify``) checks an https server's certificate. With
        ``http``, that client is used as given and it must carry the token itself."""
        self.base_url = base_url.rstrip("/")
        self._own = http is None
        self._http = http or httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers=bearer_headers(token),
            verify=tls_verify(ca_file or None, verify),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "POST" and "json" not in kwargs:
            kwargs["json"] = {}  # every POST is JSON (the server refuses anything else with 415)
        response = await self._http.request(method, self.base_url + path, **kwargs)
        if response.status_code >= 400:
            raise _error(response.status_code, response.content)
        return response.json()

    async def submit(self, spec: dict[str, Any] | BaseModel) -> str:
        """Start a run (a graph or a single task); returns its id."""
        body = spec.model_dump(mode="json") if isinstance(spec, BaseModel) else spec
        return str((await self._json("POST", "/runs", json=body))["id"])

    async def start_negotiation(self, spec: dict[str, Any] | BaseModel) -> str:
        """Start a negotiation (a ``NegotiationSpec`` or its JSON) as a run; returns the run id (follow it with
        ``events`` or ``wait``)."""
        body = spec.model_dump(mode="json", exclude_none=True) if isinstance(spec, BaseModel) else spec
        return str((await self._json("POST", "/negotiations", json=body))["id"])

    async def list_runs(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Recent runs, newest first; ``kind`` "graph" or "negotiation" keeps only those."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        if kind:
            params["kind"] = kind
        return list((await self._json("GET", "/runs", params=params))["runs"])

    async def get_run(self, run_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/runs/{quote(run_id, safe='')}"))

    async def cancel(self, run_id: str) -> bool:
        return bool((await self._json("POST", f"/runs/{quote(run_id, safe='')}/cancel"))["cancelled"])

    async def answer(self, run_id: str, task_id: str, answer: Any) -> dict[str, Any]:
        """Answer the question task ``task_id`` of ``run_id`` waits on (JSON valid against the schema of its
        ``task.waiting`` event); ``{"accepted": true, ...}`` once the agent has it."""
        path = f"/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}/input"
        return dict(await self._json("POST", path, json={"input": answer}))

    async def approve(self, run_id: str, task_id: str, approve: bool = True, comment: str = "") -> dict[str, Any]:
        """Approve (``approve`` False: reject, the comment the reason) the output task ``task_id`` of ``run_id``
        holds for approval; ``{"approved": ..., "by": ..., "at": ...}``."""
        path = f"/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}/approval"
        return dict(await self._json("POST", path, json={"approve": approve, "comment": comment}))

    async def events(
        self, run_id: str, *, last_event_id: int = 0, reconnects: int = 5, unavailable_patience_s: float = 300.0
    ) -> AsyncIterator[dict[str, Any]]:
        """The run's events from ``last_event_id`` on; reconnects (resuming by id, with backoff) when the stream
        breaks, and waits out a database outage (503, for up to ``unavailable_patience_s``)."""
        last, failures, waited = last_event_id, 0, 0.0
        while True:
            try:
                async with self._http.stream(
                    "GET",
                    f"{self.base_url}/runs/{quote(run_id, safe='')}/events",
                    headers={"Last-Event-ID": str(last)},
                    timeout=None,
                ) as response:
                    if response.status_code == 503 and waited < unavailable_patience_s:
                        delay = _retry_after(response.headers.get("retry-after"))
                        await anyio.sleep(delay)
                        waited += delay
                        continue
                    if response.status_code >= 400:
                        raise _error(response.status_code, await response.aread())
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
                await anyio.sleep(min(0.1 * 2**failures, 2.0))

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
