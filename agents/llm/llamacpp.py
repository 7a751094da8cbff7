"""The llama.cpp brain: a real GGUF model on the shared batching engine; usage recorded on every call."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import anyio.to_thread

from agents.llm.base import Completion, GenerationRequest
from agents.llm.constraints import ChoiceConstraint, Constraint, GrammarConstraint, shortlist_from_schema
from agents.llm.engine import ContextOverflow, Engine
from agents.llm.jobs import Job
from agents.llm.native import ContextConfig, NativeModel
from agents.llm.pool import POOL, ModelPool, default_model_path
from agents.llm.sampling import TokenSampler
from agents.usage import Usage

__all__ = ["LlamaCpp"]


class LlamaCpp:
    """Runs a GGUF model with llama.cpp. ``LlamaCpp()`` uses the bundled Gemma 3 270M.

    Every ``LlamaCpp`` on the same model shares one loaded copy and one batching engine (from the pool):
    concurrent calls decode together, and a call with ``session_id`` reuses its conversation's KV cache.
    ``n_ctx`` bounds one call (prompt + max_tokens, else ``ContextOverflow``); ``context`` sizes the shared
    engine (a call waits until its KV cells fit); ``max_queue`` bounds the calls waiting beyond the engine's
    ``n_seq`` before ``ModelBusy``.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        pool: ModelPool | None = None,
        context: ContextConfig | None = None,
        max_queue: int = 64,
    ) -> None:
        self._path = Path(model_path) if model_path else None
        self._n_ctx = n_ctx
        self._pool = pool or POOL
        self._context = context or ContextConfig(n_ctx=max(ContextConfig().n_ctx, n_ctx))
        self._max_queue = max_queue

    @property
    def model_name(self) -> str:
        return (self._path or default_model_path()).name

    def engine(self) -> Engine:
        """The shared engine this brain runs on (loads the model on first use)."""
        return self._pool.engine(self._path or default_model_path(), self._context, max_queue=self._max_queue)

    async def generate(self, request: GenerationRequest) -> Completion:
        engine = await anyio.to_thread.run_sync(self.engine)
        job = self._job(engine.model, request)
        engine.submit(job)
        try:
            await anyio.to_thread.run_sync(job.done.wait, abandon_on_cancel=True, limiter=anyio.CapacityLimiter(1))
        finally:
            if not job.done.is_set():
                engine.cancel(job)
        if job.error is not None:
            raise job.error
        result = job.result
        assert result is not None
        name = engine.model.name
        usage = Usage(
            model=name,
            calls=1,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=len(result.tokens),
            wall_seconds=result.wall_seconds,
            cpu_seconds=result.cpu_seconds,
            models={name: 1},
        )
        return Completion(
            text=result.text,
            usage=usage,
            stop_reason=result.stop_reason,
            cached_tokens=result.cached_tokens,
            token_ids=result.tokens,
        )

    def _job(self, model: NativeModel, request: GenerationRequest) -> Job:
        text = f"{request.system}\n\n{request.prompt}" if request.system else request.prompt
        prompt = model.tokenize(text)
        if not prompt:
            raise ValueError("the prompt is empty once tokenized; give some text")
        if len(prompt) + request.max_tokens > self._n_ctx:
            raise ContextOverflow(
                f"prompt ({len(prompt)} tokens) + max_tokens ({request.max_tokens}) exceeds n_ctx ({self._n_ctx});"
                " shorten the prompt, lower max_tokens or construct LlamaCpp(n_ctx=...) larger"
            )
        constraint: Constraint | None = None
        if request.choices is not None:
            constraint = ChoiceConstraint(model, request.choices)
        elif request.json_schema is not None:
            shortlist = shortlist_from_schema(request.json_schema)
            if shortlist:
                constraint = ChoiceConstraint(model, shortlist)
            else:
                constraint = GrammarConstraint.from_schema(model, request.json_schema)
        return Job(
            prompt=prompt,
            max_tokens=request.max_tokens,
            sampler=TokenSampler(request.temperature, request.seed),
            constraint=constraint,
            session_id=request.session_id,
            deadline=time.monotonic() + request.timeout_s if request.timeout_s else None,
            stop=tuple(request.stop or ()),
        )
