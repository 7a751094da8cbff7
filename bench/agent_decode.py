"""Single-agent decode speed: llama-cpp-python called directly vs the same prompt through an agent skill.

Run: ``.venv/bin/python bench/agent_decode.py [--tokens 64] [--repeats 3]``. Prints tokens/s for raw
llama-cpp-python, the agent called in-process, and the agent over A2A HTTP on loopback, each measured in this run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import anyio
from pydantic import BaseModel

from agents import Agent, HttpAgentClient, LlamaCpp, LocalAgentClient, SkillContext, skill_message
from agents.llm.pool import POOL, default_model_path
from agents.serve import create_app
from agents.testing import free_port, serve_in_thread
from agents.usage import Usage

PROMPT = "Write a short story about a factory that builds gearboxes for wind turbines.\n\nOnce upon a time,"


class Prompt(BaseModel):
    text: str
    max_tokens: int


class Text(BaseModel):
    text: str


def writer(brain: LlamaCpp) -> Agent:
    agent = Agent("writer", "Continues a text", brain=brain)

    @agent.skill()
    async def continue_text(ctx: SkillContext, req: Prompt) -> Text:
        """Continue the given text."""
        return Text(text=await ctx.complete(req.text, max_tokens=req.max_tokens))

    return agent


def raw(tokens: int, repeats: int) -> list[tuple[float, int]]:
    """llama-cpp-python called directly, in a child process: two llama.cpp thread teams in one process slow
    each other down, which would understate whichever path runs second."""
    out = subprocess.run(
        [sys.executable, __file__, "--raw-child", "--tokens", str(tokens), "--repeats", str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [tuple(run) for run in json.loads(out.stdout.strip().splitlines()[-1])]  # type: ignore[misc]


def _raw_child(tokens: int, repeats: int) -> None:
    llama = POOL.get(default_model_path()).llama
    llama.create_completion(PROMPT, max_tokens=8, temperature=0.0, seed=0)  # warm up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = llama.create_completion(PROMPT, max_tokens=tokens, temperature=0.0, seed=0)
        runs.append((time.perf_counter() - start, out["usage"]["completion_tokens"]))
    print(json.dumps(runs))


async def through(client: LocalAgentClient | HttpAgentClient, tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    task = await client.send_message(skill_message("continue_text", {"text": PROMPT, "max_tokens": tokens}))
    elapsed = time.perf_counter() - start
    usage = Usage.model_validate(task.metadata["usage"])  # type: ignore[index]
    return elapsed, usage.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        _raw_child(args.tokens, args.repeats)
        return
    agent = writer(LlamaCpp())

    async def local_run() -> list[tuple[float, int]]:
        async with LocalAgentClient(agent) as client:
            return [await through(client, args.tokens) for _ in range(args.repeats)]

    async def http_run(url: str) -> list[tuple[float, int]]:
        async with HttpAgentClient(url) as client:
            return [await through(client, args.tokens) for _ in range(args.repeats)]

    results: dict[str, list[tuple[float, int]]] = {"llama-cpp-python direct": raw(args.tokens, args.repeats)}
    anyio.run(local_run)  # load the model and warm up
    results["agent, in-process"] = anyio.run(local_run)
    port = free_port()
    with serve_in_thread(create_app(agent, base_url=f"http://127.0.0.1:{port}"), port) as url:
        results["agent, A2A over HTTP"] = anyio.run(http_run, url)
    base = statistics.median(n / s for s, n in results["llama-cpp-python direct"])
    print(f"decode, {args.tokens} tokens, median of {args.repeats} (end-to-end tokens/s incl. prompt)")
    for name, runs in results.items():
        rate = statistics.median(n / s for s, n in runs)
        print(f"  {name:28} {rate:7.1f} tok/s   {rate / base:5.2f}x of direct")


if __name__ == "__main__":
    main()
