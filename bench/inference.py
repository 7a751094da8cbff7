"""Inference figures: llama-cpp-python's own high-level API (raw) beside scaleout's batching engine.

Run: .venv/bin/python bench/inference.py [--tokens 64] [--reps 5] [--llama-bench PATH] [--llama-server PATH]
[--no-flash-attn] [--unified-kv] [--quick]. Prints one table;
figures are noisy on shared machines, so read the ratios (each row measures raw and platform in the same run,
single-stream and constrained rows as medians of repetitions). Raw figures come from a child process, so the
two llama.cpp users never share a process. ``--llama-bench`` also runs llama.cpp's own ``llama-bench`` (built
separately, see docs/inference.md) on the same GGUF, interleaved with the platform's single-stream runs.
``--llama-server`` also compares aggregate tokens/s and time to first token under 1-32 concurrent requests
with llama.cpp's ``llama-server`` (``bench/inference_server.py``). ``--quick`` skips the raw llama-cpp-python
rows, turns, the flood and RSS: single-stream decode, constrained ratios and the comparisons only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import anyio

from agents.llm import ContextConfig, GenerationRequest, LlamaCpp, default_model_path
from agents.llm.pool import ModelPool

try:
    from bench.inference_server import LEVELS, compare
except ModuleNotFoundError:  # run as a script (bench/inference.py): bench/ itself is on sys.path
    from inference_server import LEVELS, compare  # type: ignore[no-redef]

PROMPTS = [f"Supplier {i} writes to the buyer about an order of {10 + i} steel gears:" for i in range(32)]
SCHEMA = {
    "type": "object",
    "properties": {
        "item": {"type": "string"},
        "quantity": {"type": "integer"},
        "price": {"type": "number"},
        "note": {"type": "string"},
    },
    "required": ["item", "quantity", "price", "note"],
}
SKILL_SCHEMA = {  # a typical skill reply: an enum, a bool, an integer, a number and a short string
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["accept", "counter", "reject"]},
        "urgent": {"type": "boolean"},
        "quantity": {"type": "integer"},
        "price": {"type": "number"},
        "note": {"type": "string", "maxLength": 40},
    },
    "required": ["action", "urgent", "quantity", "price", "note"],
}
AGENTS = (1, 4, 8, 16)
SKILL_PROMPT = "A supplier answers a buyer's offer of 100 gears at 9.5 each. Reply as JSON:"


def _raw_llama(pool: ModelPool) -> Any:
    return pool.get(default_model_path(), n_ctx=4096).llama


def raw_decode(llama: Any, prompt: str, n: int, grammar: Any = None) -> tuple[int, float]:
    """Tokens and seconds of decode only (prompt evaluated first, then timed generation)."""
    llama.reset()
    t0 = time.perf_counter()
    out = llama.create_completion(prompt, max_tokens=1, temperature=0.0)
    t_prompt = time.perf_counter() - t0
    llama.reset()
    t0 = time.perf_counter()
    out = llama.create_completion(prompt, max_tokens=n, temperature=0.0, grammar=grammar)
    dt = time.perf_counter() - t0 - t_prompt
    return out["usage"]["completion_tokens"], dt


def raw_concurrent(llama: Any, k: int, n: int) -> float:
    """k threads sharing one Llama (it must be serialised): aggregate completion tokens/s."""
    lock = threading.Lock()
    total = [0]

    def worker(i: int) -> None:
        with lock:
            llama.reset()
            out = llama.create_completion(PROMPTS[i], max_tokens=n, temperature=0.0)
            total[0] += out["usage"]["completion_tokens"]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(k)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total[0] / (time.perf_counter() - t0)


async def platform_concurrent(brain: LlamaCpp, k: int, n: int, schema: dict[str, Any] | None = None) -> float:
    total = [0]

    async def one(i: int) -> None:
        out = await brain.generate(GenerationRequest(prompt=PROMPTS[i], max_tokens=n, json_schema=schema))
        total[0] += out.usage.completion_tokens

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(k):
            tg.start_soon(one, i)
    return total[0] / (time.perf_counter() - t0)


async def platform_decode(brain: LlamaCpp, prompt: str, n: int, schema: dict[str, Any] | None = None) -> float:
    """Decode tokens/s of one stream: the prompt is cached by a first call, so the second is all decode."""
    return (await platform_decode_n(brain, prompt, n, schema))[0]


async def platform_decode_n(
    brain: LlamaCpp, prompt: str, n: int, schema: dict[str, Any] | None = None
) -> tuple[float, int]:
    """Decode tokens/s of one stream and the number of tokens produced."""
    req = GenerationRequest(prompt=prompt, max_tokens=1)
    await brain.generate(req)
    out = await brain.generate(req.model_copy(update={"max_tokens": n, "json_schema": schema}))
    return out.usage.completion_tokens / out.usage.wall_seconds, out.usage.completion_tokens


async def constrained_ratios(brain: LlamaCpp, schema: dict[str, Any], prompt: str, n: int, reps: int) -> list[float]:
    """Per repetition: constrained tokens/s over unconstrained tokens/s for as many tokens, same prompt."""
    ratios = []
    for _ in range(reps):
        ours_json, k = await platform_decode_n(brain, prompt, n, schema)
        ours_free, _ = await platform_decode_n(brain, prompt, k)
        ratios.append(ours_json / ours_free)
    return ratios


def llama_bench(path: str, n: int, threads: int, reps: int = 1) -> float:
    """llama.cpp's ``llama-bench`` decode rate (tokens/s, mean of ``reps``) on the bundled GGUF, defaults otherwise."""
    cmd = [path, "-m", str(default_model_path()), "-p", "0", "-n", str(n), "-t", str(threads), "-r", str(reps)]
    out = subprocess.run([*cmd, "-o", "json"], capture_output=True, text=True, timeout=600, check=True)
    tests = [t for t in json.loads(out.stdout) if t.get("n_prompt") == 0 and t.get("n_gen") == n]
    if not tests:
        raise RuntimeError(f"llama-bench printed no decode test for -n {n}: {out.stdout[:500]!r}")
    return float(tests[0]["avg_ts"])


def negotiation_turns(turns: int) -> list[str]:
    history = "A buyer and a seller negotiate 100 gears. Each reply is one short sentence.\n"
    prompts = []
    for t in range(turns):
        history += f"Buyer: round {t}, I offer {80 + t} per gear and delivery in {10 - t % 5} days.\nSeller:"
        prompts.append(history)
        history += " I can do better on delivery than on price.\n"
    return prompts


def raw_turns(llama: Any, prompts: list[str], n: int) -> list[float]:
    """Each turn from a cold context, as when several agents take turns on one Llama."""
    times = []
    for p in prompts:
        llama.reset()
        t0 = time.perf_counter()
        llama.create_completion(p, max_tokens=n, temperature=0.0)
        times.append(time.perf_counter() - t0)
    return times


async def platform_turns(brain: LlamaCpp, prompts: list[str], n: int) -> list[float]:
    times = []
    for p in prompts:
        t0 = time.perf_counter()
        await brain.generate(GenerationRequest(prompt=p, max_tokens=n, session_id="bench-negotiation"))
        times.append(time.perf_counter() - t0)
    return times


async def platform_flood(pool: ModelPool, agents: int = 8, n: int = 64) -> tuple[int, int, int, float]:
    """``agents`` concurrent long prompts, each (prompt + ``n``) ~40% of a 1024-cell engine: completed,
    failed, most running at once, seconds. Before admission by KV cells most of them failed."""
    brain = LlamaCpp(pool=pool, context=ContextConfig(n_ctx=1024, n_seq=8, n_batch=256))
    engine = await anyio.to_thread.run_sync(brain.engine)
    words = ["gear", "steel", "order", "price", "motor", "ship", "plan"]
    prompts = [f"Report {i}: " + " ".join(words[(i + j) % 7] for j in range(330)) for i in range(agents)]
    done, failed, peak = [0], [0], [0]

    async def one(prompt: str) -> None:
        try:
            await brain.generate(GenerationRequest(prompt=prompt, max_tokens=n))
            done[0] += 1
        except Exception:
            failed[0] += 1

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for prompt in prompts:
            tg.start_soon(one, prompt)
        while done[0] + failed[0] < agents:
            peak[0] = max(peak[0], engine.stats().active)
            await anyio.sleep(0.01)
    return done[0], failed[0], peak[0], time.perf_counter() - t0


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_child(kind: str, agents: int) -> None:
    """(subprocess) Peak-ish RSS after ``agents`` agents each made one call."""
    if kind == "raw":
        from llama_cpp import Llama

        llamas = [Llama(model_path=str(default_model_path()), n_ctx=1024, verbose=False) for _ in range(agents)]
        for i, llama in enumerate(llamas):
            llama.create_completion(PROMPTS[i], max_tokens=8)
    else:
        brain = LlamaCpp(context=ContextConfig(n_ctx=8192, n_seq=32))

        async def run() -> None:
            async with anyio.create_task_group() as tg:
                for i in range(agents):
                    req = GenerationRequest(prompt=PROMPTS[i], max_tokens=8, session_id=f"agent-{i}")
                    tg.start_soon(brain.generate, req)

        anyio.run(run)
    print(json.dumps({"rss_mb": _rss_mb()}))


def rss(kind: str, agents: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--rss", kind, str(agents)], capture_output=True, text=True, timeout=600, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rss_mb"])


def raw_child(n: int, reps: int) -> None:
    """(subprocess) Every raw llama-cpp-python figure, as JSON on stdout."""
    pool = ModelPool()
    llama = _raw_llama(pool)
    raw_decode(llama, PROMPTS[0], 4)  # load and warm up
    singles = []
    for _ in range(reps):
        k, dt = raw_decode(llama, PROMPTS[1], n)
        singles.append(k / dt)
    from llama_cpp import LlamaGrammar

    grammar = LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
    k, dt = raw_decode(llama, PROMPTS[2] + " As JSON:", n, grammar)
    turns = raw_turns(llama, negotiation_turns(10), 8)
    figures = {
        "single": statistics.median(singles),
        "aggregate": {str(a): raw_concurrent(llama, a, n) for a in AGENTS},
        "turns": [turns[0], turns[-1]],
        "json": k / dt,
    }
    print(json.dumps(figures))


def raw_figures(n: int, reps: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--raw-child", "--tokens", str(n), "--reps", str(reps)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def main(
    n: int,
    reps: int,
    bench_path: str | None,
    server_path: str | None = None,
    quick: bool = False,
    flash_attn: bool = ContextConfig.flash_attn,  # the engine's default
    kv_streams: bool = True,
) -> None:
    if server_path:  # first, while nothing else of this process holds a model
        server_lines = await compare(server_path, n, reps, LEVELS, flash_attn=flash_attn, kv_streams=kv_streams)
    if quick:
        await quick_figures(n, reps, bench_path)
    else:
        await full_table(n, reps, bench_path)
    if server_path:
        print(f"\nengine beside llama-server, {n} tokens per request, medians of {reps} (e/s: engine/server)")
        print("\n".join(server_lines))


async def quick_figures(n: int, reps: int, bench_path: str | None) -> None:
    """Single-stream decode (beside llama-bench when given) and the constrained/unconstrained ratios."""
    pool = ModelPool()
    brain = LlamaCpp(pool=pool, context=ContextConfig(n_ctx=8192, n_seq=32))
    await platform_decode(brain, PROMPTS[0], 4)
    threads = max(1, os.cpu_count() or 1)
    ourss, lbs = [], []
    for _ in range(reps):
        if bench_path:
            lbs.append(llama_bench(bench_path, n, threads))
        ourss.append(await platform_decode(brain, PROMPTS[1], n))
    ratios = {
        "offer schema": await constrained_ratios(brain, SCHEMA, PROMPTS[2] + " As JSON:", n, reps),
        "skill schema": await constrained_ratios(brain, SKILL_SCHEMA, SKILL_PROMPT, n, reps),
    }
    pool.clear()
    print(f"platform single-stream decode (median of {reps}): {statistics.median(ourss):.1f} tok/s")
    for name, values in ratios.items():
        listed = " ".join(f"{v:.2f}" for v in values)
        print(f"platform constrained / unconstrained, {name}: median {statistics.median(values):.2f} ({listed})")
    if lbs:
        lb = statistics.median(lbs)
        print(f"llama-bench -p 0 -n {n} -t {threads} (median of {reps}): {lb:.1f} tok/s")
        print(f"single-stream decode / llama-bench: platform {statistics.median(ourss) / lb:.2f}")


async def full_table(n: int, reps: int, bench_path: str | None) -> None:
    """Every figure: raw llama-cpp-python beside the platform, and llama-bench when given."""
    # Raw llama-cpp-python runs in a child process: a second llama.cpp user in this process (its own OpenMP
    # thread team) slows the engine's decode by ~20-30% on 2 cores, which would understate the platform.
    raw = raw_figures(n, reps)
    pool = ModelPool()
    brain = LlamaCpp(pool=pool, context=ContextConfig(n_ctx=8192, n_seq=32))
    await platform_decode(brain, PROMPTS[0], 4)  # load and warm up
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, raw: float, ours: float, unit: str) -> None:
        rows.append((name, f"{raw:8.1f} {unit}", f"{ours:8.1f} {unit}", f"{ours / raw:5.2f}x" if raw else "-"))

    threads = max(1, os.cpu_count() or 1)
    ourss, lbs = [], []
    for _ in range(reps):  # interleaved, so background load hits both alike
        if bench_path:
            lbs.append(llama_bench(bench_path, n, threads))
        ourss.append(await platform_decode(brain, PROMPTS[1], n))
    raw_single, ours_single = float(raw["single"]), statistics.median(ourss)
    row("single-stream decode", raw_single, ours_single, "tok/s")
    aggregate = {}
    for agents in AGENTS:
        aggregate[agents] = await platform_concurrent(brain, agents, n)
        row(f"aggregate decode, {agents} agents", float(raw["aggregate"][str(agents)]), aggregate[agents], "tok/s")
    ot = await platform_turns(brain, negotiation_turns(10), 8)
    row("turn 1 latency", raw["turns"][0] * 1000, ot[0] * 1000, "ms")
    row("turn 10 latency", raw["turns"][1] * 1000, ot[-1] * 1000, "ms")
    ours_json = await platform_decode(brain, PROMPTS[2] + " As JSON:", n, SCHEMA)
    ours_free = await platform_decode(brain, PROMPTS[2] + " As JSON:", n)
    row("constrained (JSON schema) decode", float(raw["json"]), ours_json, "tok/s")
    row("unconstrained decode, same prompt", raw_single, ours_free, "tok/s")
    ratios = {
        "offer schema": await constrained_ratios(brain, SCHEMA, PROMPTS[2] + " As JSON:", n, reps),
        "skill schema": await constrained_ratios(brain, SKILL_SCHEMA, SKILL_PROMPT, n, reps),
    }
    flood = await platform_flood(pool)
    pool.clear()
    r1, o1, r4, o32 = rss("raw", 1), rss("platform", 1), rss("raw", 4), rss("platform", 32)
    row("RSS, 1 agent", r1, o1, "MB")
    row("RSS, raw 4 agents / platform 32", r4, o32, "MB")

    print(f"model {default_model_path().name}, {n} tokens per stream; raw = llama-cpp-python Llama.create_completion")
    print(f"{'measure':36} {'raw':>14} {'platform':>14} {'platform/raw':>12}")
    for name, r, o, ratio in rows:
        print(f"{name:36} {r:>14} {o:>14} {ratio:>12}")
    print(f"platform 16-agent aggregate / platform single stream: {aggregate[16] / ours_single:.2f}x")
    for name, values in ratios.items():
        listed = " ".join(f"{v:.2f}" for v in values)
        print(f"platform constrained / unconstrained, {name}: median {statistics.median(values):.2f} ({listed})")
    completed, failed, peak, seconds = flood
    print(
        f"platform long-prompt flood (8 agents, each ~40% of a 1024-cell engine): {completed} completed, "
        f"{failed} failed, at most {peak} running, {seconds:.1f} s"
    )
    if lbs:
        lb = statistics.median(lbs)
        print(f"llama-bench -p 0 -n {n} -t {threads} (median of {reps}): {lb:.1f} tok/s")
        print(f"single-stream decode / llama-bench: platform {ours_single / lb:.2f}, raw {raw_single / lb:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5, help="repetitions of the single-stream and constrained rows")
    parser.add_argument("--llama-bench", metavar="PATH", help="llama.cpp's llama-bench binary, run on the same GGUF")
    parser.add_argument(
        "--llama-server", metavar="PATH", help="llama.cpp's llama-server binary: concurrency comparison"
    )
    parser.add_argument("--quick", action="store_true", help="only single-stream, constrained and the comparisons")
    parser.add_argument(
        "--no-flash-attn",
        action="store_true",
        help="the engine of the llama-server comparison without flash attention (outputs vary less with batching)",
    )
    parser.add_argument(
        "--unified-kv",
        action="store_true",
        help="the engine of the llama-server comparison with one KV cache for all sequences (default: one each)",
    )
    parser.add_argument("--rss", nargs=2, metavar=("KIND", "AGENTS"))
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss:
        rss_child(args.rss[0], int(args.rss[1]))
    elif args.raw_child:
        raw_child(args.tokens, max(1, args.reps))
    else:
        anyio.run(
            main,
            args.tokens,
            max(1, args.reps),
            args.llama_bench,
            args.llama_server,
            args.quick,
            not args.no_flash_attn,
            not args.unified_kv,
        )
