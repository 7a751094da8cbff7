"""Quick demo: a small-model agent served over A2A on loopback routes customer messages end to end.

Run: ``python -m scenarios.triage_demo``. Uses the bundled Gemma 3 270M through llama.cpp; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import time

import anyio

from agents.client import HttpAgentClient, skill_message
from agents.examples import triage_agent
from agents.llm import LlamaCpp
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from agents.usage import Usage
from protocol.a2a import TaskState

MESSAGES = [
    "Our invoice for October shows the wrong amount",
    "The press line is down and the whole plant has stopped!",
    "We would like a quote for 500 more gearboxes",
    "How do I reset the controller after a firmware update?",
]


async def _run(url: str, messages: list[str]) -> Usage:
    total = Usage()
    async with HttpAgentClient(url) as client:
        card = await client.get_card()
        print(f"agent {card.name!r} at {card.url} — skills: {', '.join(s.id for s in card.skills)}\n")
        print(f"{'message':58} {'department':10} {'urgent':6} {'tokens':>6} {'secs':>5}")
        for text in messages:
            task = await client.send_message(skill_message("classify", {"text": text}))
            usage = Usage.model_validate((task.metadata or {}).get("usage", {}))
            total = total + usage
            if task.status.state != TaskState.COMPLETED or not task.artifacts:
                reason = task.status.message.text() if task.status.message else task.status.state.value
                print(f"{text[:58]:58} FAILED: {reason}")
                continue
            result = task.artifacts[0].parts[0].data
            print(
                f"{text[:58]:58} {result['department']:10} {str(result['urgent']):6} "
                f"{usage.total_tokens:>6} {usage.wall_seconds:>5.2f}"
            )
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("messages", nargs="*", help="customer messages to route (default: four examples)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    app = create_app(triage_agent(LlamaCpp()), base_url=f"http://127.0.0.1:{(port := free_port())}")
    with serve_in_thread(app, port) as url:
        total = anyio.run(_run, url, args.messages or MESSAGES)
    print(
        f"\n{total.calls} model calls, {total.prompt_tokens} prompt + {total.completion_tokens} completion tokens, "
        f"{total.wall_seconds:.2f} s model time, {time.perf_counter() - started:.1f} s in all ({total.model})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
