"""The llama.cpp brain: a real GGUF model, JSON-schema constrained output, usage on every call."""

from __future__ import annotations

import json
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from agents.llm.base import Completion, GenerationRequest
from agents.llm.pool import POOL, ModelPool, default_model_path
from agents.usage import Usage

__all__ = ["LlamaCpp"]


@lru_cache(maxsize=256)
def _grammar(schema_json: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


class LlamaCpp:
    """Runs a GGUF model with llama-cpp-python. ``LlamaCpp()`` uses the bundled Gemma 3 270M.

    Calls on the same loaded model are serialised (llama.cpp contexts are not thread-safe); the model
    itself is shared through the process-wide pool, so many agents cost one model's memory.
    """

    def __init__(
        self, model_path: str | Path | None = None, *, n_ctx: int = 2048, pool: ModelPool | None = None
    ) -> None:
        self._path = Path(model_path) if model_path else None
        self._n_ctx = n_ctx
        self._pool = pool or POOL

    @property
    def model_name(self) -> str:
        return (self._path or default_model_path()).name

    def _load(self) -> Any:
        return self._pool.get(self._path or default_model_path(), self._n_ctx)

    async def generate(self, request: GenerationRequest) -> Completion:
        stop = threading.Event()
        try:
            return await anyio.to_thread.run_sync(self._generate_sync, request, stop, abandon_on_cancel=False)
        finally:
            stop.set()

    def _generate_sync(self, request: GenerationRequest, stop: threading.Event) -> Completion:
        from llama_cpp import StoppingCriteriaList

        model = self._load()
        prompt = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
        grammar = _grammar(json.dumps(request.json_schema, sort_keys=True)) if request.json_schema else None
        deadline = time.monotonic() + request.timeout_s if request.timeout_s else None

        def should_stop(_tokens: Any, _logits: Any) -> bool:
            return stop.is_set() or (deadline is not None and time.monotonic() > deadline)

        with model.lock:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            out = model.llama.create_completion(
                prompt,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                seed=request.seed,
                grammar=grammar,
                stopping_criteria=StoppingCriteriaList([should_stop]),
            )
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        choice = out["choices"][0]
        usage = Usage(
            model=model.name,
            calls=1,
            prompt_tokens=out["usage"]["prompt_tokens"],
            completion_tokens=out["usage"]["completion_tokens"],
            wall_seconds=wall,
            cpu_seconds=cpu,
            models={model.name: 1},
        )
        reason = "timeout" if deadline and time.monotonic() > deadline else (choice.get("finish_reason") or "stop")
        return Completion(text=choice["text"], usage=usage, stop_reason=reason)
