"""What one engine step decodes: the pending tokens of every generating job first, then prompt chunks of the
jobs still being prefilled (oldest first) filling the rest of the step's token budget, all in one batch.
A job whose constraint forces its first tokens has them pending before its prompt is done: they follow the
prompt's last chunk in the same step (and the logits come after them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agents.llm.jobs import Job

__all__ = ["Chunk", "plan_step"]


@dataclass(frozen=True)
class Chunk:
    """Consecutive tokens of one job decoded in a step, from position ``pos``; logits on the last one only
    when ``logits`` (the end of its prompt, or of its pending generated tokens)."""

    job: Job
    tokens: list[int]
    pos: int
    logits: bool
    prompt: bool  # prompt tokens (else generated tokens the job has not decoded yet)


def plan_step(active: Sequence[Job], budget: int) -> list[Chunk]:
    """Split at most ``budget`` tokens of one decode call among the running jobs.

    Generating jobs come first: each gets its next pending token (least recently served first, should there
    be more of them than the budget), then the rest of its pending tokens (forced by its constraint) while
    the budget lasts. Prompt chunks fill what is left, oldest job first, so a long prompt is evaluated over
    several steps without stalling anyone, and a job's prompt waits only for older prompts. A prompt's last
    chunk is followed by the job's pending (forced opening) tokens where the budget allows.
    """
    generating = sorted(
        (j for j in active if j.pending and not j.prefilling and j.slot is not None), key=lambda j: j.served
    )
    grant: dict[Job, int] = {}
    for job in generating[: max(0, budget)]:
        grant[job] = 1
    budget -= len(grant)
    for job in grant:
        extra = min(len(job.pending) - 1, budget)
        grant[job] += extra
        budget -= extra
    chunks = []
    for job, n in grant.items():
        assert job.slot is not None
        chunks.append(Chunk(job, job.pending[:n], len(job.slot.tokens), n == len(job.pending), prompt=False))
    prefilling = sorted((j for j in active if j.prefilling and j.slot is not None), key=lambda j: j.submitted)
    for job in prefilling:
        if budget <= 0:
            break
        n = min(len(job.prompt) - job.n_past, budget)
        end = job.n_past + n
        last = end == len(job.prompt)
        chunks.append(Chunk(job, job.prompt[job.n_past : end], job.n_past, last and not job.pending, prompt=True))
        budget -= n
        if last and job.pending and budget > 0:
            k = min(len(job.pending), budget)
            chunks.append(Chunk(job, job.pending[:k], end, k == len(job.pending), prompt=False))
            budget -= k
    return chunks
