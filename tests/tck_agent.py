"""A TCK-mode agent: our A2A server stack with an executor that does what the A2A TCK scenarios ask.

The TCK (github.com/a2aproject/a2a-tck, branch 1.0-dev) signals the behaviour it wants through the
``messageId`` prefix (its ``scenarios/*.feature``). Everything protocol-level (JSON-RPC, task store,
streams, cancel, multi-turn, errors) is our real ``JsonRpcEndpoint`` + ``TaskRuntime``; only the
executor is TCK-specific. Run: ``.venv/bin/python tests/tck_agent.py --port 9999`` (see docs/a2a.md).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agents.agent import Agent, SkillContext
from agents.jsonrpc_server import JsonRpcEndpoint, render_jsonrpc_error
from agents.serve import default_policy
from agents.task_handle import TaskHandle
from agents.tasks import TaskRuntime
from protocol.a2a import AGENT_CARD_PATH, Artifact, Part
from protocol.boundary import Boundary

__all__ = ["tck_agent", "tck_executor", "create_tck_app", "RESUBSCRIBE_HOLD_S"]

RESUBSCRIBE_HOLD_S = 4.0  # "wait for 2x streaming timeout" in the TCK's streaming.feature


class TckIn(BaseModel):
    text: str = ""


class TckOut(BaseModel):
    text: str


def tck_agent() -> Agent:
    """The agent the TCK's card describes: one skill; the executor below does the work."""
    agent = Agent("tck", "Answers A2A TCK conformance messages", tags=["tck"])

    @agent.skill(tags=["tck"])
    async def tck(ctx: SkillContext, req: TckIn) -> TckOut:
        """Handle a TCK conformance message."""
        return TckOut(text=req.text)

    return agent


def _file_part() -> Part:
    return Part.from_bytes(b"tck", media_type="text/plain").model_copy(update={"filename": "output.txt"})


def _text_artifact(text: str) -> Artifact:
    return Artifact(parts=[Part.from_text(text)])


async def tck_executor(handle: TaskHandle) -> None:
    """Route on the messageId prefix exactly as the TCK scenarios describe."""
    mid = handle.message.message_id
    streamed = {
        "tck-stream-artifact-text": "Streamed text content",
        "tck-stream-ordering-001": "Ordered output",
        "tck-stream-001": "Stream hello from TCK",
        "tck-stream-003": "Stream task lifecycle",
    }
    if mid.startswith("tck-stream-artifact-chunked"):
        handle.working()
        chunk = Artifact(parts=[Part.from_text("chunk-1 ")])
        handle.add_artifact(chunk, last_chunk=False)
        handle.add_artifact(chunk.model_copy(update={"parts": [Part.from_text("chunk-2")]}), append=True)
        handle.complete()
    elif mid.startswith("test-resubscribe-message-id"):
        handle.working()
        await anyio.sleep(RESUBSCRIBE_HOLD_S)
        handle.complete()
    elif mid.startswith("tck-stream-artifact-file"):
        handle.working()
        handle.add_artifact(Artifact(parts=[_file_part()]))
        handle.complete()
    elif any(mid.startswith(prefix) for prefix in streamed):
        text = next(t for p, t in streamed.items() if mid.startswith(p))
        handle.working()
        handle.add_artifact(_text_artifact(text))
        handle.complete()
    elif mid.startswith("tck-stream-002"):
        handle.complete()
    elif mid.startswith("tck-artifact-file-url"):
        url_part = Part(url="https://example.com/output.txt", media_type="text/plain", filename="output.txt")
        handle.add_artifact(Artifact(parts=[url_part]))
        handle.complete()
    elif mid.startswith("tck-artifact-file"):
        handle.add_artifact(Artifact(parts=[_file_part()]))
        handle.complete()
    elif mid.startswith("tck-artifact-text"):
        handle.add_artifact(_text_artifact("Generated text content"))
        handle.complete()
    elif mid.startswith("tck-artifact-data"):
        handle.add_artifact(Artifact(parts=[Part.from_data({"key": "value", "count": 42})]))
        handle.complete()
    elif mid.startswith("tck-message-response"):
        handle.respond("Direct message response")
    elif mid.startswith("tck-input-required"):
        handle.require_input("The TCK agent needs more input")
    elif mid.startswith("tck-complete-task"):
        handle.complete("Hello from TCK")
    elif mid.startswith("tck-reject-task"):
        handle.reject("rejected")
    else:
        handle.complete(f"Unhandled messageId prefix: {mid}")


def create_tck_app(base_url: str) -> Boundary:
    """Card at /.well-known/agent-card.json and JSON-RPC at POST / for the TCK agent, behind the boundary."""
    agent = tck_agent()
    runtime = TaskRuntime(agent, executor=tck_executor, input_modes=["*/*"], task_timeout_s=60.0)
    endpoint = JsonRpcEndpoint(runtime)
    card = agent.card(base_url.rstrip("/") + "/")
    skills = [s.model_copy(update={"input_modes": ["*/*"], "output_modes": ["*/*"]}) for s in card.skills]
    card_json = card.model_copy(update={"default_input_modes": ["*/*"], "skills": skills}).wire()

    async def card_endpoint(_: Request) -> Response:
        return JSONResponse(card_json)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with runtime.running():
            yield

    routes: list[Any] = [
        Route(AGENT_CARD_PATH, card_endpoint, methods=["GET"]),
        Route("/", endpoint.handle, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return Boundary(app, default_policy(base_url), render=render_jsonrpc_error)


def main() -> None:
    """Serve the TCK agent on 127.0.0.1 as ``scaleout agent serve`` serves agents."""
    from protocol.serving import serve

    parser = argparse.ArgumentParser(description="Serve the TCK-mode agent on loopback")
    parser.add_argument("--port", type=int, default=9999)
    args = parser.parse_args()
    serve(create_tck_app(f"http://127.0.0.1:{args.port}"), "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
