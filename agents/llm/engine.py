"""Continuous batching on one llama.cpp context, driven by a dedicated thread.

Every step decodes one token for each generating job plus chunks of waiting prompts, all in one
``llama_decode`` call with one sequence id per job; a job that arrives mid-generation joins at the next step.
Each slot keeps its KV cells after a job ends, so the next turn of the same session (or any prompt sharing a
prefix with a cached slot) evaluates only the new tokens.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from agents.errors import ModelBusy
from agents.llm.jobs import Job, JobResult, Slot, common_prefix
from agents.llm.native import ContextConfig, DecodeError, KvCacheFull, NativeContext, NativeModel

__all__ = ["Engine", "EngineStats", "EngineClosed"]


class EngineClosed(RuntimeError):
    """The engine was closed while the job waited or ran."""


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of an engine's load: jobs running and queued, slots in use, KV cells held."""

    active: int
    waiting: int
    slots: int
    cached_slots: int
    kv_tokens: int
    steps: int


class Engine:
    """Schedules jobs from any thread onto one model context; ``submit`` raises ``ModelBusy`` when full.

    At most ``config.n_seq`` jobs run at once and at most ``max_queue`` more wait; past that, callers get
    ``ModelBusy`` at once instead of an unbounded wait.
    """

    def __init__(self, model: NativeModel, config: ContextConfig | None = None, *, max_queue: int = 64) -> None:
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        self.model = model
        self.config = config or ContextConfig()
        self.max_queue = max_queue
        self._ctx: NativeContext | None = None
        self._slots = [Slot(seq=i) for i in range(self.config.n_seq)]
        self._waiting: deque[Job] = deque()
        self._active: list[Job] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._steps = 0
        self._cpu0 = 0.0

    # ---- any thread -------------------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        """Queue a job; the engine thread starts on first use. Raises ``ModelBusy`` past the queue bound."""
        limit = self.config.n_ctx
        if len(job.prompt) + job.max_tokens > limit:
            raise ValueError(
                f"prompt ({len(job.prompt)} tokens) + max_tokens ({job.max_tokens}) exceeds the context "
                f"({limit} tokens); shorten the prompt or lower max_tokens"
            )
        with self._cv:
            if self._closed:
                raise EngineClosed(f"engine for {self.model.name} is closed")
            if len(self._waiting) + len(self._active) >= self.config.n_seq + self.max_queue:
                raise ModelBusy(
                    f"model {self.model.name} is busy: {len(self._active)} running and {len(self._waiting)} "
                    f"queued (limit {self.config.n_seq}+{self.max_queue}); retry later or use another agent"
                )
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"engine-{self.model.name}", daemon=True)
                self._thread.start()
            self._cv.notify()
        return job

    def cancel(self, job: Job) -> None:
        """Stop a job at the next step and free its KV cells."""
        job.cancel()
        with self._cv:
            self._cv.notify()

    def stats(self) -> EngineStats:
        with self._cv:
            return EngineStats(
                active=len(self._active),
                waiting=len(self._waiting),
                slots=len(self._slots),
                cached_slots=sum(1 for s in self._slots if s.tokens),
                kv_tokens=sum(len(s.tokens) for s in self._slots),
                steps=self._steps,
            )

    def close(self) -> None:
        """Stop the thread, fail every unfinished job with ``EngineClosed`` and free the context."""
        with self._cv:
            self._closed = True
            self._cv.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        for job in list(self._waiting) + list(self._active):
            self._fail(job, EngineClosed(f"engine for {self.model.name} closed"))
        self._waiting.clear()
        self._active.clear()
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    # ---- engine thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._ctx = NativeContext(self.model, self.config)
        except Exception as exc:
            with self._cv:
                self._closed = True
                for job in list(self._waiting):
                    self._fail(job, exc)
                self._waiting.clear()
            return
        while True:
            with self._cv:
                while not self._closed and not self._waiting and not self._active:
                    self._cv.wait()
                if self._closed:
                    return
                self._admit()
            try:
                self._step()
            except Exception as exc:  # a broken context fails the running jobs, not the process
                for job in list(self._active):
                    self._finish_error(job, exc)

    def _admit(self) -> None:
        """Move waiting jobs into free slots (called with the lock held)."""
        now = time.monotonic()
        keep: deque[Job] = deque()
        while self._waiting:
            job = self._waiting.popleft()
            if job.cancelled:
                self._fail(job, None, reason="cancelled")
            elif job.deadline is not None and now > job.deadline:
                self._fail(job, None, reason="timeout")
            elif not self._assign(job):
                keep.append(job)
            else:
                self._active.append(job)
        self._waiting = keep

    def _assign(self, job: Job) -> bool:
        assert self._ctx is not None
        slot = None
        if job.session_id is not None:
            owned = [s for s in self._slots if s.session == job.session_id]
            if owned and owned[0].job is not None:
                return False  # the session's previous turn is still running
            slot = owned[0] if owned else None
        if slot is None:
            idle = [s for s in self._slots if s.job is None]
            if not idle:
                return False
            # empty slots first, then anonymous caches, then least recently used sessions
            slot = min(idle, key=lambda s: (bool(s.tokens), s.session is not None, s.last_used))
            slot.session = job.session_id
        cap = len(job.prompt) - 1  # the last prompt token is always evaluated, for its logits
        own = min(common_prefix(slot.tokens, job.prompt), cap)
        src, best = None, own
        for other in self._slots:
            if other is not slot and len(other.tokens) > best:
                n = min(common_prefix(other.tokens, job.prompt), cap)
                if n > best:
                    src, best = other, n
        if src is not None:
            self._ctx.seq_rm(slot.seq)
            self._ctx.seq_cp(src.seq, slot.seq, 0, best)
            slot.tokens = job.prompt[:best]
        elif self._ctx.seq_rm(slot.seq, own, -1):
            del slot.tokens[own:]
        else:
            self._ctx.seq_rm(slot.seq)
            slot.tokens = []
        job.slot = slot
        job.n_past = job.cached = len(slot.tokens)
        slot.job = job
        return True

    def _step(self) -> None:
        """One scheduling step: prompt chunks (each in its own decode), then one token for every generator.

        Prompt chunks are never mixed into the shared decode batch, so a prompt's KV cells and first logits
        depend only on the job itself. Later steps are not bit-identical to single-stream decoding (see
        docs/inference.md, "What batching does and does not guarantee").
        """
        ctx = self._ctx
        assert ctx is not None
        now = time.monotonic()
        for job in list(self._active):
            if job.cancelled:
                self._release(job, "cancelled", free=True)
            elif job.deadline is not None and now > job.deadline:
                self._release(job, "timeout")
        budget = self.config.n_batch
        for job in list(self._active):
            if budget <= 0:
                break
            if job.prefilling and job.slot is not None:
                chunk = job.prompt[job.n_past : job.n_past + self.config.n_batch]
                last = job.n_past + len(chunk) == len(job.prompt)
                ctx.clear_batch()
                end = -1
                for i, tok in enumerate(chunk):
                    end = ctx.add(tok, job.n_past + i, job.slot.seq, last and i == len(chunk) - 1)
                if self._decode(ctx, [job]):
                    self._commit(ctx, [(job, end if last else None, chunk)])
                budget -= len(chunk)
        generating = [j for j in self._active if j.pending is not None]
        if generating:
            ctx.clear_batch()
            rows: list[tuple[Job, int | None, list[int]]] = []
            for job in generating:
                assert job.slot is not None and job.pending is not None
                rows.append((job, ctx.add(job.pending, len(job.slot.tokens), job.slot.seq, True), [job.pending]))
            if self._decode(ctx, generating):
                self._commit(ctx, rows)
        self._steps += 1

    def _decode(self, ctx: NativeContext, jobs: list[Job]) -> bool:
        """Decode the batch; when the KV cache is full evict idle caches and retry, else fail the largest job."""
        while True:
            self._cpu0 = time.process_time()
            try:
                ctx.decode()
                return True
            except KvCacheFull as exc:
                if self._evict_one():
                    continue
                victim = max(jobs, key=lambda j: len(j.prompt) + len(j.generated))
                self._release(victim, "error", free=True, error=exc)
                return False

    def _commit(self, ctx: NativeContext, rows: list[tuple[Job, int | None, list[int]]]) -> None:
        """Record the decoded tokens as KV content, share the step's CPU time, sample where logits came out."""
        per_token = (time.process_time() - self._cpu0) / max(1, ctx.n_tokens)
        for job, row, tokens in rows:
            slot = job.slot
            assert slot is not None
            slot.tokens.extend(tokens)
            job.cpu += per_token * len(tokens)
            if job.pending is not None:
                job.pending = None
            else:
                job.n_past += len(tokens)
            if row is not None:
                self._sample(job, ctx, row)

    def _sample(self, job: Job, ctx: NativeContext, row: int) -> None:
        try:
            token = job.sampler.pick(ctx.logits(row), job.constraint)
        except Exception as exc:
            self._release(job, "error", free=True, error=exc)
            return
        if token in self.model.eog:
            self._release(job, "stop")
            return
        job.generated.append(token)
        if job.on_token is not None:
            job.on_token(token)
        if job.constraint is not None:
            job.constraint.accept(token)
            if job.constraint.done:
                self._release(job, "stop")
                return
        if job.stop and self._hit_stop(job):
            self._release(job, "stop")
            return
        if len(job.generated) >= job.max_tokens:
            self._release(job, "length")
            return
        job.pending = token

    def _hit_stop(self, job: Job) -> bool:
        tail = self.model.detokenize(job.generated[-16:])
        return any(s in tail for s in job.stop)

    def _evict_one(self) -> bool:
        idle = [s for s in self._slots if s.job is None and s.tokens]
        if not idle:
            return False
        slot = min(idle, key=lambda s: s.last_used)
        assert self._ctx is not None
        self._ctx.seq_rm(slot.seq)
        slot.tokens, slot.session = [], None
        return True

    def _release(self, job: Job, reason: str, *, free: bool = False, error: BaseException | None = None) -> None:
        """End a running job: free its slot (and its KV cells when ``free``) and wake its caller."""
        slot = job.slot
        if job in self._active:
            self._active.remove(job)
        if slot is not None:
            slot.job = None
            slot.last_used = time.monotonic()
            if free:
                assert self._ctx is not None
                self._ctx.seq_rm(slot.seq)
                slot.tokens, slot.session = [], None
        if error is not None:
            self._fail(job, error)
        else:
            self._complete(job, reason)

    def _finish_error(self, job: Job, exc: BaseException) -> None:
        self._release(job, "error", free=True, error=exc if isinstance(exc, DecodeError) else DecodeError(str(exc)))

    def _complete(self, job: Job, reason: str) -> None:
        text = self.model.detokenize(job.generated)
        if reason == "stop" and job.stop:
            cut = min((i for i in (text.find(s) for s in job.stop) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
        job.result = JobResult(
            tokens=list(job.generated),
            text=text,
            stop_reason=reason,
            prompt_tokens=len(job.prompt),
            cached_tokens=job.cached,
            wall_seconds=time.perf_counter() - job.submitted,
            cpu_seconds=job.cpu,
        )
        self._close_job(job)

    def _fail(self, job: Job, error: BaseException | None, *, reason: str = "error") -> None:
        if error is None:
            self._complete(job, reason)
            return
        job.error = error
        self._close_job(job)

    @staticmethod
    def _close_job(job: Job) -> None:
        if job.constraint is not None:
            job.constraint.close()
        job.done.set()
