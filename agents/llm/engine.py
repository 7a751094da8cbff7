"""Continuous batching on one llama.cpp context, driven by a dedicated thread.

Every step is one ``llama_decode`` call with one sequence id per job: the next token of each generating job
(with the tokens its constraint forces after it, when jump-forward is on) plus chunks of prompts filling the
rest of ``n_batch`` (``batch_plan``); a job that arrives mid-generation joins at the next step.
Each slot keeps its KV cells after a job ends, so the next turn of the same session (or any prompt sharing a
prefix with a cached slot) evaluates only the new tokens.

Admission is by KV cells: a job starts only when every cell it may need (prompt + ``max_tokens``, less the
cached prefix it reuses) fits beside the cells held and promised to running jobs, evicting idle caches (LRU)
if that makes it fit; otherwise it waits. A running job is never evicted or failed to make room.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from enum import Enum

from agents.errors import ModelBusy
from agents.llm.batch_plan import Chunk, plan_step
from agents.llm.engine_types import ContextOverflow, EngineClosed, EngineConfig, EngineStats
from agents.llm.jobs import CellLedger, Job, Slot, cached_prefix, pick_slot
from agents.llm.native import ContextConfig, DecodeError, KvCacheFull, NativeContext, NativeModel

__all__ = ["ContextOverflow", "Engine", "EngineConfig", "EngineStats", "EngineClosed"]

_IDLE_RECHECK_S = 0.05  # a queue that cannot start with nothing running is looked at again this often


class _Start(Enum):
    STARTED = 1
    NO_SLOT = 2  # every slot is busy
    NO_CELLS = 3  # its KV cells do not fit until running jobs end


class Engine:
    """Schedules jobs from any thread onto one model context; ``submit`` raises ``ModelBusy`` when full.

    At most ``config.n_seq`` jobs run at once, fewer when their KV cells would not fit ``config.n_ctx``; the
    rest wait in arrival order. A waiting job is passed by at most ``max_bypass`` later, smaller jobs that
    fit; then nothing more starts until it does. ``submit`` raises ``ModelBusy`` at once when
    ``n_seq + max_queue`` jobs are already running or waiting, instead of an unbounded wait.
    """

    def __init__(
        self,
        model: NativeModel,
        config: ContextConfig | None = None,
        *,
        max_queue: int = 64,
        max_bypass: int = 8,
        options: EngineConfig | None = None,
    ) -> None:
        if max_queue < 0 or max_bypass < 0:
            raise ValueError("max_queue and max_bypass must be >= 0")
        self.model = model
        self.config = config or ContextConfig()
        self.max_queue = max_queue
        self.max_bypass = max_bypass
        self.options = options or EngineConfig()
        self._ctx: NativeContext | None = None
        self._slots = [Slot(seq=i) for i in range(self.config.n_seq)]
        self._cells = CellLedger()
        self._waiting: deque[Job] = deque()
        self._active: list[Job] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._admission_due = False  # something changed that may let a waiting job start
        self._steps = 0
        self._prompt_tokens = 0
        self._cached_tokens = 0
        self._cpu0 = 0.0
        self._rows: list[int] = []  # the batch index of each chunk of the step being decoded

    # ---- any thread -------------------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        """Queue a job; the engine thread starts on first use.

        Raises ``ContextOverflow`` when the job could never fit the context and ``ModelBusy`` past the queue
        bound; both at once, before anything waits.
        """
        limit = self.config.seq_cells
        if job.cells_needed > limit:
            where = (
                f"a sequence's KV stream ({limit} cells: n_ctx / n_seq with kv_streams)"
                if self.config.kv_streams
                else f"the context ({limit} cells, the whole KV cache of {self.model.name})"
            )
            raise ContextOverflow(
                f"prompt ({len(job.prompt)} tokens) + max_tokens ({job.max_tokens}) = {job.cells_needed} KV cells "
                f"exceeds {where}; shorten the prompt, lower max_tokens or give the engine a larger "
                f"ContextConfig(n_ctx=...)"
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
            self._admission_due = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"engine-{self.model.name}", daemon=True)
                self._thread.start()
            self._cv.notify()
        return job

    def cancel(self, job: Job) -> None:
        """Stop a job at the next step (waiting or running) and free its KV cells."""
        job.cancel()
        with self._cv:
            self._admission_due = True
            self._cv.notify()

    def stats(self) -> EngineStats:
        """Jobs, slots and KV cells right now (taken under the engine's lock)."""
        with self._cv:
            return EngineStats(
                active=len(self._active),
                waiting=len(self._waiting),
                slots=len(self._slots),
                cached_slots=sum(1 for s in self._slots if s.tokens),
                kv_tokens=sum(len(s.tokens) for s in self._slots),
                steps=self._steps,
                kv_cells=self._cells.used,
                kv_reserved=self._reserved(),
                n_ctx=self.config.n_ctx,
                prompt_tokens=self._prompt_tokens,
                cached_tokens=self._cached_tokens,
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
            job.fail(EngineClosed(f"engine for {self.model.name} closed"))
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
                    job.fail(exc)
                self._waiting.clear()
            return
        while True:
            with self._cv:
                while not self._closed and not self._waiting and not self._active:
                    self._cv.wait()
                if self._closed:
                    return
                self._admit()
                if not self._active:  # only waiting jobs that cannot start yet: look again shortly
                    self._admission_due = True
                    self._cv.wait(_IDLE_RECHECK_S)
                    continue
            try:
                self._step()
            except Exception as exc:  # a broken context fails the running jobs, not the process
                for job in list(self._active):
                    self._finish_error(job, exc)

    def _admit(self) -> None:
        """Drop cancelled and expired waiting jobs; start those whose KV cells fit, in arrival order.

        Called with the lock held. Starting is tried only after something changed (a job arrived, ended or
        was cancelled): the cells held plus the cells promised to running jobs stay constant while they run.
        """
        now = time.monotonic()
        due, self._admission_due = self._admission_due, False
        keep: deque[Job] = deque()
        blocked: list[Job] = []  # waiting for cells, ahead of the job being looked at
        for job in self._waiting:
            if job.cancelled:
                job.finish("cancelled", "")
                continue
            if job.deadline is not None and now > job.deadline:
                job.finish("timeout", "")
                continue
            if not due or any(b.bypassed >= self.max_bypass for b in blocked):
                keep.append(job)
                continue
            outcome = self._start(job)
            if outcome is _Start.STARTED:
                self._active.append(job)
                for b in blocked:
                    b.bypassed += 1
                self._force_opening(job)
            else:
                keep.append(job)
                if outcome is _Start.NO_CELLS:
                    blocked.append(job)
        self._waiting = keep

    def _reserved(self) -> int:
        """Cells the running jobs may still add (each up to its prompt + max_tokens)."""
        return sum(j.cells_needed - len(j.slot.tokens) for j in self._active if j.slot is not None)

    def _start(self, job: Job) -> _Start:
        """Give the job a slot and its cached prefix if its remaining cells fit (evicting idle caches, LRU)."""
        slot = pick_slot(self._slots, job, lowest=self.config.kv_streams)
        if slot is None:
            return _Start.NO_SLOT
        for copy in (True, False):  # reusing another slot's prefix keeps that slot; if too full, try without
            src, reused = cached_prefix(self._slots, slot, job.prompt, copy=copy)
            if copy and src is None:
                continue
            cuts = {slot: 0 if src is not None else reused}
            others = sorted(
                (s for s in self._slots if s.job is None and s.tokens and s is not slot and s is not src),
                key=lambda s: s.last_used,
            )
            if not self._fits(job, reused, cuts | dict.fromkeys(others, 0)):
                continue
            for victim in others:
                if self._fits(job, reused, cuts):
                    break
                self._clear(victim)
            self._take(job, slot, src, reused)
            return _Start.STARTED
        return _Start.NO_CELLS

    def _fits(self, job: Job, reused: int, cuts: dict[Slot, int]) -> bool:
        if self.config.kv_streams:  # its own stream, which ``submit`` checked it fits
            return True
        free = self.config.n_ctx - self._cells.used - self._reserved() + self._cells.freed_by(cuts)
        return job.cells_needed - reused <= free

    def _take(self, job: Job, slot: Slot, src: Slot | None, reused: int) -> None:
        """Bind the job to ``slot`` holding exactly the prompt's first ``reused`` tokens (copied from ``src``)."""
        assert self._ctx is not None
        if src is not None:
            self._clear(slot)
            self._ctx.share_prefix(src.seq, slot.seq, reused)
            if self.config.kv_streams:  # a copy: cells of its own
                self._cells.append(slot, src.tokens[:reused])
            else:
                self._cells.share(src, slot, reused)
        elif self._ctx.seq_rm(slot.seq, reused, -1):
            self._cells.truncate(slot, reused)
        else:  # partial removal refused: start from nothing (never on a full-size cache, see swa_full)
            self._clear(slot)
        # the session keeps one slot: a second call of it running beside the first leaves no cache of its own
        owned = job.session_id is not None and any(s.session == job.session_id for s in self._slots if s is not slot)
        slot.session = None if owned else job.session_id
        job.slot = slot
        job.n_past = job.cached = len(slot.tokens)
        slot.job = job
        self._prompt_tokens += len(job.prompt)
        self._cached_tokens += job.cached

    def _clear(self, slot: Slot) -> None:
        """Drop every cell of an idle slot (and its session)."""
        assert self._ctx is not None and slot.job is None
        self._ctx.seq_rm(slot.seq)
        self._cells.truncate(slot, 0)
        slot.session = None

    def _step(self) -> None:
        """One scheduling step: one ``llama_decode`` of every generating job's pending tokens plus prompt chunks
        filling the rest of ``n_batch`` (``plan_step``), then sampling where logits came out.

        A prompt chunk shares the batch with other sequences, so greedy output is not bit-identical to
        single-stream decoding (see docs/inference.md, "What batching does and does not guarantee").
        """
        ctx = self._ctx
        assert ctx is not None
        now = time.monotonic()
        for job in list(self._active):
            if job.cancelled:
                self._release(job, "cancelled", free=True)
            elif job.deadline is not None and now > job.deadline:
                self._release(job, "timeout")
        chunks = plan_step(self._active, self.config.n_batch)
        if self.config.kv_streams:  # llama.cpp puts only consecutive sequence ids in one micro-batch
            chunks.sort(key=lambda c: c.job.slot.seq if c.job.slot else -1)
        if chunks and not self._decode(ctx, chunks):
            chunks = self._without_prompts(ctx, chunks)
        if chunks:
            self._commit(ctx, chunks)
        self._steps += 1

    def _without_prompts(self, ctx: NativeContext, chunks: list[Chunk]) -> list[Chunk]:
        """The cache was full for the step: retry it without its prompt chunks (they wait); if that fails too,
        fail the largest generating job (the only case a running job fails for lack of cells). What was decoded."""
        generated = [c for c in chunks if not c.prompt and not c.job.prefilling]  # not tokens after a prompt
        if len(generated) < len(chunks) and generated and self._decode(ctx, generated):
            return generated
        if generated:
            victim = max((c.job for c in generated), key=lambda j: len(j.prompt) + len(j.generated))
            error = KvCacheFull(f"no free KV cells for a step of {sum(len(c.tokens) for c in generated)} tokens")
            self._release(victim, "error", free=True, error=error)
        return []

    def _decode(self, ctx: NativeContext, chunks: list[Chunk]) -> bool:
        """Decode the chunks in one batch. Admission reserved every cell they need, so a full cache means the
        cells were not where the ledger says: evict idle caches and retry; ``False`` when nothing is left."""
        ctx.clear_batch()
        self._rows = [ctx.add_chunk(c.tokens, c.pos, c.job.slot.seq, c.logits) for c in chunks if c.job.slot]
        while True:
            self._cpu0 = time.process_time()
            try:
                ctx.decode()
                return True
            except KvCacheFull:
                if not self._evict_one():
                    return False

    def _commit(self, ctx: NativeContext, chunks: list[Chunk]) -> None:
        """Record the decoded tokens as KV content, share the step's CPU time, sample where logits came out."""
        per_token = (time.process_time() - self._cpu0) / max(1, ctx.n_tokens)
        for chunk, row in zip(chunks, self._rows, strict=True):
            job, slot = chunk.job, chunk.job.slot
            assert slot is not None
            self._cells.append(slot, chunk.tokens)
            job.cpu += per_token * len(chunk.tokens)
            job.served = self._steps
            if chunk.prompt:
                job.n_past += len(chunk.tokens)
            else:
                del job.pending[: len(chunk.tokens)]
            if chunk.logits:
                self._sample(job, ctx, row)

    def _sample(self, job: Job, ctx: NativeContext, row: int) -> None:
        """Pick the next token, then (jump-forward) the tokens the constraint forces after it; all are queued
        as the job's pending tokens, decoded together at the next step."""
        try:
            token = job.sampler.pick(ctx.logits(row), job.constraint)
            if token in self.model.eog:
                self._release(job, "stop")
                return
            if not self._emit(job, token):
                return
            forced = self._emit_forced(job)
            if forced is None:
                return
        except Exception as exc:
            self._release(job, "error", free=True, error=exc)
            return
        job.pending = [token, *forced]

    def _force_opening(self, job: Job) -> None:
        """Jump-forward before the first sample: the text the constraint forces at the start (a schema's
        ``{"key": ``) is output at once and decoded right after the prompt, in the same step as its end."""
        try:
            forced = self._emit_forced(job)
        except Exception as exc:
            self._release(job, "error", free=True, error=exc)
            return
        if forced is not None:
            job.pending.extend(forced)

    def _emit_forced(self, job: Job) -> list[int] | None:
        """Output the tokens the constraint forces next; them, or ``None`` once one of them ended the job."""
        forced = self._forced(job)
        for tok in forced:
            if not self._emit(job, tok):
                return None
        return forced

    def _forced(self, job: Job) -> list[int]:
        """The tokens the job's constraint dictates next (none unless ``EngineConfig.jump_forward``)."""
        if not self.options.jump_forward or job.constraint is None:
            return []
        forced = getattr(job.constraint, "forced", None)
        return list(forced()) if forced is not None else []

    def _emit(self, job: Job, token: int) -> bool:
        """Accept ``token`` as the job's next output; ``False`` once that ended the job (stop, length)."""
        if job.constraint is not None:
            job.constraint.accept(token)
        job.generated.append(token)
        if job.on_token is not None:
            job.on_token(token)
        if job.constraint is not None and job.constraint.done:
            self._release(job, "stop")
        elif job.stop and self._hit_stop(job):
            self._release(job, "stop")
        elif len(job.generated) >= job.max_tokens:
            self._release(job, "length")
        else:
            return True
        return False

    def _hit_stop(self, job: Job) -> bool:
        tail = self.model.detokenize(job.generated[-16:])
        return any(s in tail for s in job.stop)

    def _evict_one(self) -> bool:
        idle = [s for s in self._slots if s.job is None and s.tokens]
        if not idle:
            return False
        self._clear(min(idle, key=lambda s: s.last_used))
        return True

    def _release(self, job: Job, reason: str, *, free: bool = False, error: BaseException | None = None) -> None:
        """End a running job: free its slot (and its KV cells when ``free``) and wake its caller."""
        slot = job.slot
        if job in self._active:
            self._active.remove(job)
        self._admission_due = True
        if slot is not None:
            slot.job = None
            slot.last_used = time.monotonic()
            if free:
                self._clear(slot)
        if error is not None:
            job.fail(error)
        else:
            job.finish(reason, self.model.detokenize(job.generated))

    def _finish_error(self, job: Job, exc: BaseException) -> None:
        self._release(job, "error", free=True, error=exc if isinstance(exc, DecodeError) else DecodeError(str(exc)))
