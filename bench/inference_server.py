"""Many concurrent requests: scaleout's engine beside llama.cpp's own ``llama-server`` on the same GGUF.

Both get the same prompt token ids (30 or 600 tokens, each request's own text so neither reuses a cached
prefix) and generate exactly ``n`` greedy tokens each (end-of-generation ignored), at 1, 4, 8, 16 and 32
concurrent requests, interleaved run by run. Aggregate tokens/s counts generated tokens over the wall time
from the first request to the last reply, prompts included; time to first token is measured by the client
(llama-server's over streaming HTTP on loopback, the engine's from ``submit`` to its first token).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
import anyio.to_thread
import httpx
import numpy as np
import numpy.typing as npt

from agents.llm.constraints import Constraint
from agents.llm.engine import Engine
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.pool import ModelPool, default_model_path
from agents.llm.sampling import TokenSampler

__all__ = ["LEVELS", "PROMPT_SIZES", "Run", "compare", "llama_server"]

LEVELS = (1, 4, 8, 16, 32)
PROMPT_SIZES = (30, 600)
_WORDS = ["gear", "steel", "order", "price", "motor", "ship", "plan", "quote", "batch", "crate"]


@dataclass(frozen=True)
class Run:
    """One batch of concurrent requests: generated tokens per second (all requests) and each one's TTFT."""

    tokens_per_s: float
    ttft_s: list[float]


class _Greedy(TokenSampler):
    """Greedy without end-of-generation tokens, so every request produces exactly ``max_tokens`` tokens."""

    def __init__(self, eog: frozenset[int]) -> None:
        super().__init__()
        self._eog = np.fromiter(eog, dtype=np.int64)

    def pick(self, logits: npt.NDArray[np.float32], constraint: Constraint | None = None) -> int:
        masked = logits.copy()
        masked[self._eog] = -np.inf
        return int(np.argmax(masked))


def prompts(model: NativeModel, size: int, count: int, tag: str) -> list[list[int]]:
    """``count`` prompts of exactly ``size`` tokens, each starting with its own text (no shared prefix)."""
    rng = np.random.default_rng(zlib.crc32(tag.encode()))
    out = []
    for i in range(count):
        text = f"Note {tag}-{i}: " + " ".join(rng.choice(_WORDS, size + 16))
        tokens = model.tokenize(text)[:size]
        assert len(tokens) == size, f"prompt too short: {len(tokens)} < {size}"
        out.append(tokens)
    return out


def engine_run(engine: Engine, batch: list[list[int]], n: int) -> Run:
    """Submit every prompt at once and wait for all; exactly ``n`` tokens each."""
    firsts: dict[int, float] = {}
    lock = threading.Lock()

    def first(i: int) -> Callable[[int], None]:
        def seen(_token: int) -> None:
            with lock:
                firsts.setdefault(i, time.perf_counter())

        return seen

    t0 = time.perf_counter()
    jobs = [
        engine.submit(Job(prompt=p, max_tokens=n, sampler=_Greedy(engine.model.eog), on_token=first(i)))
        for i, p in enumerate(batch)
    ]
    for job in jobs:
        if not job.done.wait(900) or job.error is not None or job.result is None:
            raise RuntimeError(f"engine request failed: {job.error}")
    wall = time.perf_counter() - t0
    total = sum(len(j.result.tokens) for j in jobs if j.result)
    return Run(total / wall, [firsts[i] - j.submitted for i, j in enumerate(jobs)])


async def server_run(url: str, batch: list[list[int]], n: int) -> Run:
    """POST every prompt (as token ids) to ``/completion`` at once, streaming; exactly ``n`` tokens each."""
    ttft: list[float] = [0.0] * len(batch)
    made = [0] * len(batch)

    async def one(client: httpx.AsyncClient, i: int, tokens: list[int]) -> None:
        body = {"prompt": tokens, "n_predict": n, "temperature": 0.0, "ignore_eos": True, "stream": True}
        start = time.perf_counter()
        async with client.stream("POST", f"{url}/completion", json=body) as reply:
            reply.raise_for_status()
            async for line in reply.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if not ttft[i]:
                    ttft[i] = time.perf_counter() - start
                chunk = json.loads(line[6:])
                if chunk.get("stop"):
                    made[i] = int(chunk.get("tokens_predicted", made[i]))
                else:  # one streamed chunk per generated token
                    made[i] += 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=900, limits=httpx.Limits(max_connections=64)) as client:
        async with anyio.create_task_group() as tg:
            for i, tokens in enumerate(batch):
                tg.start_soon(one, client, i, tokens)
    wall = time.perf_counter() - t0
    if min(made) != n:
        raise RuntimeError(f"llama-server generated {made} tokens, expected {n} each")
    return Run(sum(made) / wall, ttft)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(path: str, n_ctx: int, slots: int, threads: int, port: int) -> list[str]:
    """llama-server on loopback: the bundled GGUF, ``slots`` parallel slots with continuous batching."""
    model = str(default_model_path())
    return [path, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-np", str(slots), "-c", str(n_ctx)] + [
        "-t",
        str(threads),
        "-tb",
        str(threads),
        "-cb",
        "--no-repack",  # as the engine; repacked (AMX) weights crash with SIGILL in VMs that do not enable AMX
        "--no-webui",
    ]


@contextmanager
def llama_server(path: str, n_ctx: int, slots: int, threads: int) -> Iterator[tuple[str, list[str]]]:
    """Start llama-server, wait (bounded) until ``/health`` answers, yield its URL and command; stop it after."""
    port = _free_port()
    cmd = server_command(path, n_ctx, slots, threads, port)
    # its log goes to a file: a pipe nobody reads fills up under load and the server stalls writing to it
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama-server exited ({proc.returncode}): {log.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama-server did not answer /health within 120 s")
            time.sleep(0.2)
        yield url, cmd
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _quantile(values: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(values), q))


async def compare(
    path: str,
    n: int,
    reps: int,
    levels: tuple[int, ...] = LEVELS,
    *,
    flash_attn: bool = ContextConfig.flash_attn,  # the engine's default
    kv_streams: bool = True,
) -> list[str]:
    """Run both sides, interleaved, at every level and prompt size; the table's lines (``flash_attn`` and
    ``kv_streams``: the engine's ``ContextConfig`` options; llama-server, too, gives each slot its own stream)."""
    threads = max(1, os.cpu_count() or 1)
    slots = max(levels)
    n_ctx = slots * (max(PROMPT_SIZES) + n + 40)
    pool = ModelPool()
    model = pool.weights(default_model_path())
    config = ContextConfig(n_ctx=n_ctx, n_seq=slots, n_batch=512, flash_attn=flash_attn, kv_streams=kv_streams)
    engine = pool.engine(default_model_path(), config)
    lines: list[str] = []
    try:
        with llama_server(path, n_ctx, slots, threads) as (url, cmd):
            warm = prompts(model, 30, 1, "warm")
            await anyio.to_thread.run_sync(engine_run, engine, warm, 4)
            await server_run(url, warm, 4)
            lines.append("llama-server: " + " ".join(cmd))
            lines.append(f"engine: {config}, {threads} threads")
            lines.append(
                f"{'prompt':>6} {'reqs':>4} {'engine tok/s':>12} {'server tok/s':>12} {'e/s':>6}   "
                f"{'engine TTFT p50/p95 s':>21} {'server TTFT p50/p95 s':>21} {'p95 s/e':>9}"
            )
            for size in PROMPT_SIZES:
                for level in levels:
                    ours: list[Run] = []
                    theirs: list[Run] = []
                    for rep in range(reps):
                        batch = prompts(model, size, level, f"{size}-{level}-{rep}")
                        for side in (0, 1) if rep % 2 == 0 else (1, 0):  # alternate who runs first
                            if side == 0:
                                ours.append(await anyio.to_thread.run_sync(engine_run, engine, batch, n))
                            else:
                                theirs.append(await server_run(url, batch, n))
                    lines.append(_row(size, level, ours, theirs))
                    print(lines[-1], flush=True)
    finally:
        pool.clear()
    return lines


def _row(size: int, level: int, ours: list[Run], theirs: list[Run]) -> str:
    o = statistics.median(r.tokens_per_s for r in ours)
    t = statistics.median(r.tokens_per_s for r in theirs)
    ot = [x for r in ours for x in r.ttft_s]
    tt = [x for r in theirs for x in r.ttft_s]
    o50, o95, t50, t95 = _quantile(ot, 0.5), _quantile(ot, 0.95), _quantile(tt, 0.5), _quantile(tt, 0.95)
    return (
        f"{size:>6} {level:>4} {o:>12.1f} {t:>12.1f} {o / t:>5.2f}x   "
        f"{o50:>10.2f}/{o95:<10.2f} {t50:>10.2f}/{t95:<10.2f} {t95 / o95:>8.2f}x"
    )
